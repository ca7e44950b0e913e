"""What a viewer sees of the configuration file: the values of secret-looking keys hidden.

A viewer "sees everything, changes nothing", but a configuration file often holds what would
let a viewer become more (a password, an API token, an ``--auth memory:user:password``
string).  Operators, who may apply a configuration, see the file as it is.  The rule is by
line and by key name, so it works for TOML and YAML alike and keeps the line numbers that the
problems of a check name; a secret in a multi-line value is hidden from its first line on
until the value's closing bracket.
"""

from __future__ import annotations

import re

__all__ = ["HIDDEN", "redact_secrets"]

HIDDEN = '"(hidden from viewers)"'
_SECRET_KEY = re.compile(
    r"""^(?P<head>\s*-?\s*["']?[\w.-]*(?:pass|secret|token|auth|key|credential|cookie)"""
    r"""[\w.-]*["']?\s*[=:])(?P<value>.*)$""", re.IGNORECASE)
_OPENERS = {"[": "]", "{": "}", '"""': '"""', "'''": "'''"}


def redact_secrets(text: str) -> str:
    """``text`` with the value of every secret-looking key replaced by ``HIDDEN``."""
    lines = text.splitlines(keepends=True)
    closing: str | None = None
    for number, line in enumerate(lines):
        ending = line[len(line.rstrip("\r\n")):]
        if closing is not None:  # inside a multi-line secret value
            if closing in line:
                closing = None
            lines[number] = ending
            continue
        match = _SECRET_KEY.match(line.rstrip("\r\n"))
        if match is None or not match.group("value").strip():
            continue
        value = match.group("value").strip()
        for opener, closer in _OPENERS.items():
            if value.startswith(opener) and closer not in value[len(opener):]:
                closing = closer
        lines[number] = f"{match.group('head')} {HIDDEN}{ending}"
    return "".join(lines)
