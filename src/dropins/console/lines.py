"""``LineProtocol``: a console over a byte stream (the unix socket, and telnet underneath).

It turns bytes into lines (ended by CR LF, CR NUL, LF or a lone CR, as NVT clients send them),
Ctrl-C (``\\x03``) into an interrupt and Ctrl-D (``\\x04``) at the start of a line into the end
of input, and writes the session's text back with ``newline`` line ends.  Lines are read by
``next_line()`` until a session is opened (a login dialogue), then go to the session.
Subclasses decide who the user is in ``welcome()``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from dropins.console.session import ConsoleSession

__all__ = ["MAX_LINE", "LineProtocol"]

log = logging.getLogger("dropins.console")

#: Longest line accepted (bytes); a longer one is dropped with a message, not buffered on.
MAX_LINE = 1 << 20

#: Seconds a client has to close its end after the server sent EOF (then it is cut off).
LINGER = 5.0

_END = object()  # end of input, in the queue of lines
_INTERRUPT = object()


class LineProtocol(asyncio.Protocol):
    """See the module docstring; ``console`` opens sessions (``ConsoleService``)."""

    kind = "unix"
    newline = "\n"

    def __init__(self, console: Any) -> None:
        self.console = console
        self.transport: asyncio.Transport | None = None
        self.session: ConsoleSession | None = None
        self._line = bytearray()
        self._after_cr = False
        self._early: asyncio.Queue[Any] = asyncio.Queue()
        self._welcome: asyncio.Task[None] | None = None
        self._linger: asyncio.TimerHandle | None = None  # set once we sent EOF
        self._eof_received = False

    # ---- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._welcome = asyncio.get_running_loop().create_task(self._run_welcome())

    def data_received(self, data: bytes) -> None:
        self.feed(data)

    def eof_received(self) -> bool:
        """A half-close (``shutdown(SHUT_WR)``, as after piping a script in) ends the input:
        the statements sent run, their output is written, then the connection closes."""
        self._eof_received = True
        self._deliver(_END)
        return True

    def graceful_shutdown(self) -> None:
        """The server is stopping: a console session would never end by itself, so end it."""
        self.send("\nthe server is stopping; the console closes\n")
        if self.transport is not None:
            self.transport.close()  # no lingering: the server has its own shutdown timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._linger is not None:
            self._linger.cancel()
        if self._welcome is not None:
            self._welcome.cancel()
        if self.session is not None:
            self.session.connection_lost()

    # ---- input ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Take decoded stream bytes (telnet commands already removed)."""
        for byte in data:
            if self._after_cr:
                self._after_cr = False
                if byte in (0, 10):  # CR NUL, CR LF: one line end
                    continue
            if byte in (10, 13):
                self._after_cr = byte == 13
                line, self._line = bytes(self._line), bytearray()
                self._deliver(line.decode("utf-8", "replace"))
            elif byte == 3:
                self._line.clear()
                self._deliver(_INTERRUPT)
            elif byte == 4 and not self._line:
                self._deliver(_END)
            elif len(self._line) < MAX_LINE:
                self._line.append(byte)
            else:
                self._line.clear()
                self.send(f"line longer than {MAX_LINE} bytes dropped\n")

    def interrupt(self) -> None:
        self._line.clear()
        self._deliver(_INTERRUPT)

    def end_of_input(self) -> None:
        self._deliver(_END)

    def _deliver(self, item: Any) -> None:
        session = self.session
        if session is None:
            self._early.put_nowait(item)
        elif item is _END:
            session.end_of_input()
        elif item is _INTERRUPT:
            session.interrupt()
        else:
            session.line_received(item)

    async def next_line(self) -> str | None:
        """The next line typed before the session opened; None at the end or on Ctrl-C."""
        item = await self._early.get()
        return item if isinstance(item, str) else None

    # ---- output and sessions -------------------------------------------------------------

    def send(self, text: str) -> None:
        self.write_bytes(text.replace("\n", self.newline).encode("utf-8", "replace"))

    def write_bytes(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing() and self._linger is None:
            transport.write(data)

    def close(self) -> None:
        """End the connection by sending EOF and letting the client close it, so the last
        words reach it (closing at once would reset the connection if the client's last
        bytes are still unread, and a reset may drop what it had not read yet)."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._linger is not None:
            return
        if self._eof_received or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self._linger = asyncio.get_running_loop().call_later(LINGER, transport.abort)

    def peer(self) -> str:
        name = self.transport.get_extra_info("peername") if self.transport else None
        if isinstance(name, tuple):
            return f"{name[0]}:{name[1]}"
        return str(name or "local")

    def open_session(self, user: str) -> None:
        """Start the session for ``user``; lines typed ahead go to it."""
        self.session = self.console.open_session(user, self.kind, self.peer(), self.send,
                                                 self.close)
        self.session.start()
        while not self._early.empty():
            self._deliver(self._early.get_nowait())

    async def _run_welcome(self) -> None:
        try:
            await self.welcome()
        except Exception:
            log.exception("console: error while welcoming %s", self.peer())
            self.close()

    async def welcome(self) -> None:
        """Decide who the peer is and ``open_session`` (or close); subclasses override."""
        raise NotImplementedError
