"""Where the option values being parsed come from: the command line, or an application file.

An option's type sees only the text, yet a few judge it by its origin: ``--auth memory:``
warns that passwords on the command line show in the process list, which is untrue (and
noise, once per reload) when ``dropins -c FILE`` parses the same text from a private file.
The config loader sets ``parsing_file`` around its parsing; a type reads it.  A context
variable rather than a parameter, so no type signature has to change for the few that care.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["parsing_file"]

#: The application file whose values are being parsed, or None for the command line.
parsing_file: ContextVar[str | None] = ContextVar("dropins_parsing_file", default=None)
