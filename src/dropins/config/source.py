"""Reading an application file: TOML or YAML text into plain data, with the line of each key.

Both formats give the same structure (tables of keys).  The file is read with a size cap, so a
huge file is refused before it is parsed; YAML is read with PyYAML's safe loader and aliases
(``*name``) are refused, which rules out "billion laughs" anchor bombs (a few lines that expand
to billions of items) without having to measure the expansion.

Line numbers: PyYAML's nodes carry them.  ``tomllib`` gives none, so ``toml_key_lines`` finds
them in the text: it follows ``[table]`` headers and ``key =`` lines.  That is exact for the
usual layout (one table per service, one key per line) and approximate for keys written inside
inline tables or multi-line values (they get the line of the enclosing key or table).
"""

from __future__ import annotations

import os
import re
import stat
from typing import Any

__all__ = ["MAX_FILE_BYTES", "ConfigFileError", "Source", "pin", "read_source",
           "toml_key_lines"]

#: Larger files are refused unread: an application file is a few kilobytes.
MAX_FILE_BYTES = 1024 * 1024

YAML_SUFFIXES = (".yaml", ".yml")


class ConfigFileError(Exception):
    """The file cannot be read or parsed; the message is one line, starting with ``FILE:``."""


class Source:
    """A parsed file: its data and ``lines[(key, subkey, ...)] = line number``."""

    def __init__(self, path: str, data: dict[str, Any], lines: dict[tuple[str, ...], int],
                 raw: bytes = b""):
        self.path = path
        #: The bytes parsed: what a worker of ``--workers`` is handed (see ``pin``).
        self.raw = raw
        self.data = data
        self.lines = lines
        self.folder = os.path.dirname(os.path.abspath(path))

    def line_of(self, keys: tuple[str, ...]) -> int | None:
        """The line of ``keys``, else of its nearest enclosing key that has one."""
        while keys:
            if keys in self.lines:
                return self.lines[keys]
            keys = keys[:-1]
        return None


#: absolute path -> the bytes ``read_source`` parses instead of reading that file
_PINNED: dict[str, bytes] = {}


def pin(path: str, raw: bytes) -> None:
    """Make ``read_source(path)`` parse ``raw`` instead of the file's current content.

    A worker of ``--workers`` is handed the version of the file its supervisor last checked:
    one started to replace a crashed worker must not read an edit that a reload refused, or
    one not reloaded yet.
    """
    _PINNED[os.path.abspath(path)] = raw


def read_source(path: str) -> Source:
    """Read and parse ``path`` (TOML, or YAML by its suffix); raise ``ConfigFileError``."""
    pinned = _PINNED.get(os.path.abspath(path))
    raw = _read_regular_file(path) if pinned is None else pinned
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigFileError(f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB; an "
                              "application file should be a few kilobytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigFileError(f"{path}: not UTF-8 text (byte {error.start})") from None
    if path.lower().endswith(YAML_SUFFIXES):
        data, lines = _parse_yaml(path, text)
    else:
        data, lines = _parse_toml(path, text)
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: the file must be a table of keys (name, runner, "
                              f"services), not a {type(data).__name__}")
    return Source(path, data, lines, raw)


def _read_regular_file(path: str) -> bytes:
    """The first bytes of ``path``, refusing anything but a regular file.

    Opened non-blocking and checked with ``fstat`` before reading, because a FIFO (or a
    terminal, a socket) would otherwise block the read forever, and a directory reads as an
    error that says nothing useful.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise ConfigFileError(f"{path}: cannot read: {error.strerror or error}") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise ConfigFileError(f"{path}: is {kind}; give the path of a .toml or .yaml file")
    with os.fdopen(descriptor, "rb") as file:
        try:
            return file.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            raise ConfigFileError(f"{path}: cannot read: {error.strerror or error}") from None


#: The message for a value nested past Python's recursion limit (the parsers recurse).
TOO_DEEP = "nested too deeply; an application file needs a few levels at most"


def _parse_toml(path: str, text: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigFileError(_toml_error(path, str(error))) from None
    except RecursionError:
        raise ConfigFileError(f"{path}: {TOO_DEEP}") from None
    return data, toml_key_lines(text)


def _toml_error(path: str, message: str) -> str:
    """``FILE:LINE: TOML syntax error: ...``, like YAML's; tomllib puts the line at the end."""
    where = re.search(r" \(at line (\d+), column (\d+)\)$", message)
    if where is None:
        return f"{path}: TOML syntax error: {message}"
    return (f"{path}:{where.group(1)}: TOML syntax error: {message[:where.start()]} "
            f"(column {where.group(2)})")


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
                  r"""(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _split_dotted(text: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", text)
    return tuple(part.strip("\"'") for part in parts)


def toml_key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The line (from 1) of each table header and ``key =`` line, by its full dotted key."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            table = _split_dotted(header.group(1))
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault(table + _split_dotted(key.group(1)), number)
    return lines


def _parse_yaml(path: str, text: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    try:
        import yaml
    except ImportError:
        raise ConfigFileError(f"{path}: YAML files need the 'yaml' extra: "
                              "pip install 'dropins[yaml]'") from None

    loader = yaml.SafeLoader(text)
    try:
        node = _compose_without_aliases(loader, path)
        data = loader.construct_document(node) if node is not None else {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigFileError(f"{path}{where}: YAML syntax error: {' '.join(problem.split())}")
    except RecursionError:
        raise ConfigFileError(f"{path}: {TOO_DEEP}") from None
    finally:
        loader.dispose()
    lines: dict[tuple[str, ...], int] = {}
    if node is not None:
        _yaml_lines(path, node, (), lines)
    return data, lines


def _compose_without_aliases(loader: Any, path: str) -> Any:
    """The document's node tree, refusing any alias before it is composed."""
    import yaml

    def compose_node(parent: Any, index: Any) -> Any:
        if loader.check_event(yaml.AliasEvent):
            event = loader.peek_event()
            raise ConfigFileError(f"{path}:{event.start_mark.line + 1}: YAML aliases "
                                  "(*name) are not allowed; write the value out")
        return original(parent, index)

    original = loader.compose_node
    loader.compose_node = compose_node
    return loader.get_single_node()


def _yaml_lines(path: str, node: Any, keys: tuple[str, ...],
                lines: dict[tuple[str, ...], int]) -> None:
    """Record each key's line, refusing what TOML cannot write: non-string and repeated keys.

    PyYAML accepts ``1:`` (an int key) and keeps the last of two equal keys silently; both
    would reach the rest of the loader as surprises, so they stop here, with their line.
    """
    import yaml

    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _yaml_lines(path, item, keys, lines)
    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[str] = set()
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if key_node.tag != "tag:yaml.org,2002:str":
            raise ConfigFileError(f"{path}:{line}: keys must be strings; quote "
                                  f"{key_node.value!r} to use it as a name")
        if key_node.value in seen:
            raise ConfigFileError(f"{path}:{line}: {'.'.join((*keys, key_node.value))} is "
                                  "given twice; keep one")
        seen.add(key_node.value)
        key = (*keys, key_node.value)
        lines.setdefault(key, line)
        _yaml_lines(path, value_node, key, lines)
