"""Per-session output: ``sys.stdout``, ``sys.stderr`` and ``sys.displayhook`` routed by context.

A console statement runs in the server's own process, where ``print`` would write to the
process's stdout (a log, a terminal, systemd's journal) and an expression's value would go
through the process-wide ``sys.displayhook``.  While a console runs, those three are replaced
by proxies that look up the current session in a context variable: a statement's task (and
every task it creates, which copies its context) writes to its session; everything else in
the process writes where it always did.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TextIO

__all__ = ["SessionOutput", "current_output", "install", "uninstall"]


class SessionOutput:
    """Where one session's text goes: ``write(text)``, and ``display(value)`` for results."""

    def __init__(self, write: Callable[[str], None], display: Callable[[Any], None]) -> None:
        self.write = write
        self.display = display


#: The session whose statement is running in this context, if any.
current_output: ContextVar[SessionOutput | None] = ContextVar("dropins_console_output",
                                                              default=None)


class _RoutedStream:
    """A text stream that writes to the current session, else to the stream it replaced."""

    def __init__(self, original: TextIO) -> None:
        self.original = original

    def write(self, text: str) -> int:
        output = current_output.get()
        if output is None:
            return self.original.write(text)
        output.write(text)
        return len(text)

    def flush(self) -> None:
        if current_output.get() is None:
            self.original.flush()

    def isatty(self) -> bool:
        return current_output.get() is None and self.original.isatty()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, buffer...: the original's
        return getattr(self.original, name)


def _routed_displayhook(original: Callable[[object], Any]) -> Callable[[object], Any]:
    def displayhook(value: object) -> None:
        output = current_output.get()
        if output is None:
            original(value)
        elif value is not None:
            output.display(value)

    displayhook.original = original  # type: ignore[attr-defined]
    return displayhook


_users = 0


def install() -> None:
    """Route the three hooks (once per process, however many console services start)."""
    global _users
    _users += 1
    if _users > 1:
        return
    sys.stdout = _RoutedStream(sys.stdout)
    sys.stderr = _RoutedStream(sys.stderr)
    sys.displayhook = _routed_displayhook(sys.displayhook)


def uninstall() -> None:
    """Undo ``install`` once the last console service has stopped (if nobody replaced them)."""
    global _users
    _users = max(0, _users - 1)
    if _users:
        return
    if isinstance(sys.stdout, _RoutedStream):
        sys.stdout = sys.stdout.original
    if isinstance(sys.stderr, _RoutedStream):
        sys.stderr = sys.stderr.original
    original = getattr(sys.displayhook, "original", None)
    if original is not None:
        sys.displayhook = original
