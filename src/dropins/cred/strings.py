"""``--auth TYPE:ARGS`` strings: escaping, finding the checker factory, help text.

The type is the text before the first colon; the rest goes to the factory as typed.  In every
type's arguments ``\\:`` is a literal colon and ``\\\\`` a backslash; any other backslash is kept
as it is, so that a Windows path needs only its drive colon escaped (``file:C\\:\\users.txt``).

Checker factories are plugins (``ICheckerFactory`` in the ``dropins.plugins`` package), found
through the plugin system, so a distribution can add a type that every ``--auth`` accepts.
"""

from __future__ import annotations

import difflib
from typing import Any

from dropins.options import UsageError

__all__ = [
    "argument_error",
    "checker_factories",
    "describe_credentials",
    "find_checker_factory",
    "format_auth_table",
    "format_auth_type_help",
    "parse_auth",
    "split_arguments",
    "unescape",
]

ESCAPE_NOTE = "In arguments, \\: is a literal colon and \\\\ a backslash."


def split_arguments(text: str) -> list[str]:
    """Split ``text`` at unescaped colons and unescape each field (``\\:`` and ``\\\\``)."""
    fields: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in ":\\":
            current.append(text[index + 1])
            index += 2
            continue
        if char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    fields.append("".join(current))
    return fields


def unescape(text: str) -> str:
    """Undo the escapes of a single-field argument; unescaped colons are kept as they are."""
    return ":".join(split_arguments(text))


def argument_error(factory: Any, detail: str) -> UsageError:
    """A one-line usage error naming the type and its expected format, then ``detail``.

    ``detail`` must never contain a password.
    """
    auth_type = factory.auth_type
    usage = f"{auth_type}:{factory.argument_help}" if factory.argument_help else auth_type
    return UsageError(f"auth type '{auth_type}' expects '{usage}': {detail}")


def checker_factories() -> dict[str, Any]:
    """Every ICheckerFactory plugin by auth type, sorted by type (the first of a name wins)."""
    from dropins.cred.interfaces import ICheckerFactory
    from dropins.plugin import get_plugins

    found: dict[str, Any] = {}
    for factory in get_plugins(ICheckerFactory.__identifier__):
        found.setdefault(factory.auth_type, factory)
    return dict(sorted(found.items()))


#: How credential interfaces are named in messages (others by their class name).
_CREDENTIAL_NAMES = {
    "dropins.cred.interfaces.IUsernamePassword": "username and password",
    "dropins.cred.interfaces.IAnonymous": "anonymous access",
}


def describe_credentials(interfaces: Any) -> str:
    """``"username and password, anonymous access"``: credential interfaces in plain words."""
    names = [_CREDENTIAL_NAMES.get(getattr(interface, "__identifier__", ""),
                                   getattr(interface, "__name__", str(interface)))
             for interface in interfaces]
    return ", ".join(names) or "nothing"


def find_checker_factory(auth_type: str, factories: dict[str, Any] | None = None) -> Any:
    """The factory for ``auth_type``; UsageError (with a did-you-mean) if there is none."""
    factories = checker_factories() if factories is None else factories
    factory = factories.get(auth_type)
    if factory is not None:
        return factory
    if not auth_type:
        raise UsageError("empty auth type: expected TYPE:ARGS (see --help-auth for the types)")
    close = difflib.get_close_matches(auth_type, list(factories), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    known = ", ".join(factories) or "none installed"
    raise UsageError(f"unknown auth type '{auth_type}'{hint}; known types: {known}"
                     " (see --help-auth)")


def parse_auth(text: str, factories: dict[str, Any] | None = None) -> Any:
    """Make the checker that ``--auth TYPE:ARGS`` describes.

    Raise UsageError, one line naming the type and the expected format, for a bad string.
    """
    auth_type, _, argument = text.partition(":")
    factory = find_checker_factory(auth_type.strip(), factories)
    try:
        return factory.make_checker(argument)
    except UsageError:
        raise
    except ValueError as error:
        # A third-party factory that raised ValueError: keep it one line, typed as usage.
        raise argument_error(factory, str(error).splitlines()[0] if str(error) else "invalid")


def format_auth_table(factories: dict[str, Any] | None = None) -> str:
    """The text of ``--help-auth``: one line per type with its argument format."""
    factories = checker_factories() if factories is None else factories
    rows = []
    for auth_type, factory in factories.items():
        usage = f"{auth_type}:{factory.argument_help}" if factory.argument_help else auth_type
        rows.append((usage, str(getattr(factory, "description", "")).strip()))
    width = min(max((len(usage) for usage, _ in rows), default=0), 36)
    lines = ["Authentication types for --auth TYPE:ARGS (repeatable; the first that accepts"
             " a login wins):", ""]
    for usage, description in rows:
        if len(usage) > width:
            lines.append(f"  {usage}")
            lines.append(f"  {'':{width}}  {description}")
        else:
            lines.append(f"  {usage:{width}}  {description}")
    if not rows:
        lines.append("  (none installed)")
    lines += ["", f"{ESCAPE_NOTE} Details: --help-auth-type TYPE."]
    return "\n".join(lines) + "\n"


def format_auth_type_help(auth_type: str, factories: dict[str, Any] | None = None) -> str:
    """The text of ``--help-auth-type TYPE``; UsageError for an unknown type."""
    factory = find_checker_factory(auth_type, factories)
    usage = f"{auth_type}:{factory.argument_help}" if factory.argument_help else auth_type
    interfaces = ", ".join(interface.__name__ for interface in factory.credential_interfaces)
    body = str(factory.auth_help).strip("\n")
    return (f"--auth {usage}\n\n{body}\n\nAccepts: {interfaces}\n{ESCAPE_NOTE}\n")
