"""Values in an application file: ``--set`` overrides and ``${NAME}`` from the environment.

``--set KEY=VALUE`` takes a dotted key (``services.site.listen``) and a value written as in
TOML (``5``, ``true``, ``["a", "b"]``); anything that is not a TOML value is a string, so
``--set services.site.listen=tcp:9000`` needs no quotes.  ``${NAME}`` in a string is the
environment variable NAME (an error if unset), ``${NAME:-default}`` falls back to ``default``,
and ``$$`` is a literal ``$`` (in a default too); any other ``$`` is kept as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["ValueProblem", "apply_sets", "parse_set", "substitute"]


class ValueProblem(Exception):
    """A bad ``--set`` or substitution; ``keys`` is where, the message what."""

    def __init__(self, keys: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.keys = keys


def parse_set(text: str) -> tuple[tuple[str, ...], Any]:
    """``"a.b=VALUE"`` -> ``(("a", "b"), value)``; raise ``ValueError`` with a hint."""
    import tomllib

    key, equals, value = _split_key(text)
    keys = _dotted_key(key)
    if not equals or not keys:
        raise ValueError(f"--set {text!r}: give KEY=VALUE with a dotted key, e.g. "
                         "--set services.site.listen=tcp:9000 (quote a part that holds a dot: "
                         "services.\"a.b\".command=echo)")
    try:
        return keys, tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        return keys, value
    except RecursionError:
        raise ValueError(f"--set {key}: the value is nested too deeply; a value needs a few "
                         "levels at most") from None


def _split_key(text: str) -> tuple[str, str, str]:
    """``KEY``, ``=``, ``VALUE`` at the first ``=`` outside a quoted key part."""
    quote = ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "=":
            return text[:index], "=", text[index + 1:]
    return text, "", ""


def _dotted_key(key: str) -> tuple[str, ...]:
    """The parts of a dotted key read with TOML's key rules (``a."b.c"`` is two parts), so
    ``--set`` names a key exactly as the file would; ``()`` when it is not a TOML key."""
    import tomllib

    try:
        table: Any = tomllib.loads(f"{key} = 0")
    except tomllib.TOMLDecodeError:
        return ()
    parts: list[str] = []
    while isinstance(table, dict) and len(table) == 1:
        (part, table), = table.items()
        parts.append(part)
    return tuple(parts)


def apply_sets(data: dict[str, Any], sets: Sequence[str]) -> None:
    """Apply each ``--set`` to ``data`` in place; raise ``ValueProblem`` for a bad one."""
    seen: set[tuple[str, ...]] = set()
    for text in sets:
        try:
            keys, value = parse_set(text)
        except ValueError as error:
            raise ValueProblem(("--set",), str(error)) from None
        normal = tuple(key.replace("_", "-") for key in keys)
        if normal in seen:
            raise ValueProblem(keys, f"--set gives {'.'.join(keys)} twice; keep one")
        seen.add(normal)
        table = data
        for depth, key in enumerate(keys[:-1]):
            table = table.setdefault(key, {})
            if not isinstance(table, dict):
                where = ".".join(keys[:depth + 1])
                raise ValueProblem(keys, f"--set {text!r}: {where} is not a table")
        table[keys[-1]] = value


#: ``$$``, ``${NAME}``, ``${NAME:-default}``; last, any other ``${`` (group 3), a mistake.
_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|(\$\{)")


def substitute(value: Any, environ: Mapping[str, str], keys: tuple[str, ...] = (),
               report: Callable[[ValueProblem], None] | None = None) -> Any:
    """``value`` with ``${NAME}`` references replaced in every string, recursively.

    An unset variable without default is reported (or raised without ``report``) and left
    as written.
    """
    if isinstance(value, dict):
        return {key: substitute(item, environ, (*keys, str(key)), report)
                for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, environ, keys, report) for item in value]
    if not isinstance(value, str) or "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if match.group(3):
            # The value is not quoted: it may hold a secret (an --auth string).
            problem = ValueProblem(keys, f"'${{' at character {match.start() + 1} starts no "
                                         "${NAME} or ${NAME:-default} (unclosed or not a "
                                         "name); write $${ for a literal ${")
        elif name in environ:
            return environ[name]
        elif default is not None:
            return default.replace("$$", "$")
        else:
            problem = ValueProblem(keys, f"environment variable {name} is not set (write "
                                         f"${{{name}:-default}} to give a default)")
        if report is None:
            raise problem
        report(problem)
        return match.group(0)

    return _REFERENCE.sub(replace, value)
