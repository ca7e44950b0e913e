"""``ConsoleSession``: one user's read-eval-print loop, whatever the transport.

A transport (telnet, SSH, unix socket) feeds the session the lines the user typed
(``line_received``), an interrupt when the user pressed Ctrl-C (``interrupt``), and tells it
when input ended (``end_of_input``, which lets queued statements finish) or the connection
went (``connection_lost``, which cancels the running statement).  The session writes through
the ``write`` callable it was given and calls ``close`` when it is done.

Lines are queued and run one statement at a time, so a line typed while a statement runs
waits its turn, as in a terminal.  A statement runs as its own task (``evaluate``): Ctrl-C
cancels that task alone; the session and the services carry on.  A statement that blocks the
loop without awaiting (``time.sleep(60)``, a busy loop) cannot be interrupted: nothing else
runs until it returns, the transports included.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import sys
from collections.abc import Callable
from typing import Any

from dropins.console.evaluate import (
    StatementCompiler,
    format_compile_error,
    format_error,
    run_statement,
)
from dropins.console.routing import SessionOutput, current_output

__all__ = ["ConsoleSession", "next_label"]

log = logging.getLogger("dropins.console")

PROMPT, CONTINUATION = ">>> ", "... "
_numbers = itertools.count(1)


def next_label(transport: str) -> str:
    """A name for a new session that log lines can be matched by: ``telnet#3``."""
    return f"{transport}#{next(_numbers)}"


def banner(namespace: dict[str, Any]) -> str:
    app = namespace.get("app")
    name = getattr(app, "name", None)
    where = f" in {name!r}" if name else ""
    return (f"dropins console{where}, Python {sys.version.split()[0]}; top-level await works.\n"
            "Names: app, services, loop, tasks(), tree(). Ctrl-C interrupts, Ctrl-D leaves.\n")


class ConsoleSession:
    """Runs the statements of one connection in ``namespace``; see the module docstring."""

    def __init__(self, namespace: dict[str, Any], *, user: str, label: str,
                 write: Callable[[str], None], close: Callable[[], None]) -> None:
        self.namespace = namespace
        self.user = user
        self.label = label
        self._write = write
        self._close = close
        self._compile = StatementCompiler()
        self._buffer: list[str] = []
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._statement: asyncio.Task[BaseException | None] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._gone = False
        self.output = SessionOutput(self.write, self._display)

    def write(self, text: str) -> None:
        if not self._gone:
            self._write(text)

    def start(self) -> None:
        """Greet the user and start reading statements."""
        self.write(banner(self.namespace) + PROMPT)
        self._runner = asyncio.get_running_loop().create_task(
            self._serve(), name=f"console {self.label}")

    # ---- what the transport calls --------------------------------------------------------

    def line_received(self, line: str) -> None:
        self._lines.put_nowait(line)

    def interrupt(self) -> None:
        """Ctrl-C: cancel the running statement, or else drop the lines typed so far."""
        if self._statement is not None and not self._statement.done():
            self._statement.cancel()
            return
        self._buffer.clear()
        while not self._lines.empty():
            self._lines.get_nowait()
        self.write("\nKeyboardInterrupt\n" + PROMPT)

    def end_of_input(self) -> None:
        """The user is done (Ctrl-D, EOF): finish what was typed, then close."""
        self._lines.put_nowait(None)

    def connection_lost(self) -> None:
        """The client went away: stop the running statement; write nothing more."""
        self._gone = True
        if self._runner is not None:
            self._runner.cancel()

    # ---- the loop ------------------------------------------------------------------------

    async def _serve(self) -> None:
        try:
            while (line := await self._lines.get()) is not None:
                if await self._push(line):
                    break
                self.write(CONTINUATION if self._buffer else PROMPT)
        finally:
            log.info("console %s: %s left", self.label, self.user)
            self._close()

    async def _push(self, line: str) -> bool:
        """Add a line; run the statement once complete.  True when the session should end."""
        self._buffer.append(line)
        source = "\n".join(self._buffer)
        try:
            code = self._compile(source)
        except (SyntaxError, OverflowError, ValueError) as error:
            self._buffer.clear()
            self.write(format_compile_error(error))
            return False
        if code is None:
            return False
        self._buffer.clear()
        log.info("console %s: %s ran %r", self.label, self.user, source)
        return await self._run(code)

    async def _run(self, code: Any) -> bool:
        context = contextvars.copy_context()
        context.run(current_output.set, self.output)
        statement = asyncio.get_running_loop().create_task(
            run_statement(code, self.namespace), name=f"console {self.label} statement",
            context=context)
        self._statement = statement
        try:
            await asyncio.wait([statement])
        finally:
            self._statement = None
            if not statement.done():  # the session itself was cancelled
                statement.cancel()
        if statement.cancelled():
            self.write("KeyboardInterrupt\n")
            return False
        error = statement.result()
        if isinstance(error, SystemExit):
            return True
        if error is not None:
            self.write(format_error(error))
        return False

    def _display(self, value: Any) -> None:
        """What ``sys.displayhook`` does, for this session: show the value, keep it as ``_``."""
        self.namespace["_"] = None
        self.write(repr(value) + "\n")
        self.namespace["_"] = value
