"""One accepted WebSocket: frames in and out with wsproto, messages for ``websocket.py``.

The HTTP connection hands itself over to this after the 101 response (``switch_protocol``).
What it adds to wsproto's frame protocol:

* messages put together from their frames, and refused above ``max_size`` with close 1009.
  With permessage-deflate, what a read brings is inflated a slice at a time and checked
  after each one, so that a few compressed kilobytes cannot make the server inflate
  gigabytes before the size is seen;
* pings answered; a keep-alive ping every ``ping_interval`` seconds, and the connection
  dropped (close 1011) when its pong has not come ``ping_timeout`` seconds later;
* the closing handshake both ways: a close from the client is answered and the connection
  closed (the server closes first, as RFC 6455 7.1.1 asks); after a close from the server,
  what the client still sends is read and dropped until its answer, for at most
  ``ping_timeout`` seconds, since closing a socket with unread data would reset it and the
  client could lose the close frame (and its code) in flight;
* a client that vanishes (FIN or RST without a close frame) ends the WebSocket at once, with
  code 1006, instead of when a ping goes unanswered;
* flow control: ``send`` waits for the client to take the data (the connection's drain), and
  reading pauses while more than ``max_size`` bytes of messages wait for the application;
* small frames written in one turn of the event loop (the echoes of a read's messages, a
  broadcast) leave in one write, instead of a system call each.

The application learns that the WebSocket is over (``receive`` returns None, ``send`` raises
``ClientDisconnected``) as soon as a close frame was sent or received, or the connection lost;
``close_code`` then says why.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from dropins.web.exchange import ClientDisconnected

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from wsproto.extensions import Extension

    from dropins.web.protocol import HttpConnection

__all__ = ["WebSocketConnection", "WebSocketSettings"]

#: Bytes of a read given to wsproto at a time when messages are compressed (see the module):
#: deflate inflates at most about 1032 times, so one slice makes at most ~4 MiB.
INFLATE_SLICE = 4096
#: Frames are gathered for one write at the end of the loop's turn up to this many bytes.
GATHER = 64 * 1024
ABNORMAL_CLOSURE = 1006
_MAX_PARTS = 512  # frames of one message kept apart before they are joined


def _joined(parts: list[str | bytes]) -> str | bytes:
    if isinstance(parts[0], str):
        return "".join(parts)  # type: ignore[arg-type]
    return b"".join(parts)  # type: ignore[arg-type]


@dataclass(frozen=True)
class WebSocketSettings:
    """The options of ``dropins web`` for WebSockets (``--ws-*``)."""

    max_size: int = 1024 * 1024
    ping_interval: float = 20.0   # 0: no keep-alive pings
    ping_timeout: float = 20.0
    deflate: bool = True


class WebSocketConnection:
    """The server side of one WebSocket, on the transport of ``http``."""

    def __init__(self, http: HttpConnection, settings: WebSocketSettings,
                 extensions: Sequence[Extension]) -> None:
        self.http = http
        self.settings = settings
        self._ws = Connection(ConnectionType.SERVER, list(extensions))
        self._slice = INFLATE_SLICE if extensions else 0
        self._inbox: deque[tuple[str | bytes, int]] = deque()
        self._inbox_size = 0
        self._parts: list[str | bytes] = []
        self._parts_size = 0
        self._waiter: asyncio.Future[None] | None = None
        self._out: list[bytes] = []
        self._out_size = 0
        #: why the WebSocket is over for the application (None while it is open)
        self.close_code: int | None = None
        self.close_reason = ""
        self._timer: asyncio.TimerHandle | None = None
        self._awaiting_pong = False
        if settings.ping_interval > 0:
            self._timer = http.loop.call_later(settings.ping_interval, self._ping)

    @property
    def open(self) -> bool:
        """Whether messages may still be sent: no close frame was sent or received."""
        return self._ws.state is ConnectionState.OPEN and self.close_code is None

    # -- the application's side
    async def receive(self) -> str | bytes | None:
        """The next message, or None once the WebSocket is over (see ``close_code``)."""
        while not self._inbox:
            if self.close_code is not None:
                return None
            if self._waiter is None or self._waiter.done():
                self._waiter = self.http.loop.create_future()
            await self._waiter
        was_backlogged = self.backlogged
        data, size = self._inbox.popleft()
        self._inbox_size -= size
        if was_backlogged and not self.backlogged:
            self.http.update_reading()
        return data

    async def send(self, data: str | bytes) -> None:
        """Send one message, at the client's pace."""
        if not self.open or self.http.closing:
            raise ClientDisconnected("the WebSocket is closed")
        event = TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
        self._write(self._ws.send(event))
        if self._out_size > GATHER:
            self._flush()
            await self.http.drain()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (nothing happens if it has begun)."""
        if self._ws.state is not ConnectionState.OPEN:
            return
        self._write(self._ws.send(CloseConnection(code=code, reason=reason or None)))
        self._over(code, reason)
        self._set_timer(self.settings.ping_timeout, self._hang_up)

    # -- the transport's side (UpgradedProtocol)
    @property
    def backlogged(self) -> bool:
        return self._inbox_size > self.settings.max_size

    def data_received(self, data: bytes) -> None:
        step = self._slice or len(data)
        for start in range(0, len(data), step):
            if self._ws.state not in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING):
                return  # the closing handshake is over: what follows is dropped
            self._ws.receive_data(data[start:start + step])
            self._handle_events()

    def eof_received(self) -> bool | None:
        self._over(ABNORMAL_CLOSURE, "")
        self._hang_up()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._over(ABNORMAL_CLOSURE, "")

    def graceful_shutdown(self) -> None:
        self.close(1001, "server shutting down")

    # -- internals
    def _handle_events(self) -> None:
        for event in self._ws.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                if self._ws.state is ConnectionState.OPEN:
                    self._add_part(event)
            elif isinstance(event, Ping):
                if self._ws.state is ConnectionState.OPEN:
                    self._write(self._ws.send(event.response()))
            elif isinstance(event, Pong):
                self._pong_received()
            elif isinstance(event, CloseConnection):
                self._close_received(event)
                return

    def _add_part(self, event: TextMessage | BytesMessage) -> None:
        data = event.data
        if isinstance(data, bytearray):
            data = bytes(data)
        size = len(data) if not isinstance(data, str) or data.isascii() else len(data.encode())
        self._parts_size += size
        if self._parts_size > self.settings.max_size:
            self._parts, self._parts_size = [], 0
            self.close(1009, f"message larger than {self.settings.max_size} bytes")
            return
        if not event.message_finished:
            self._parts.append(data)
            if len(self._parts) >= _MAX_PARTS:  # many tiny frames: keep few objects
                self._parts = [_joined(self._parts)]
            return
        if self._parts:
            data, self._parts = _joined([*self._parts, data]), []
        self._inbox.append((data, self._parts_size))
        self._inbox_size += self._parts_size
        self._parts_size = 0
        self._wake()
        if self.backlogged:
            self.http.update_reading()

    def _close_received(self, event: CloseConnection) -> None:
        state = self._ws.state
        if state is ConnectionState.REMOTE_CLOSING:  # the client closes: answer, then hang up
            self._write(self._ws.send(event.response()))
            self._over(int(event.code), event.reason or "")
            self._hang_up()
        elif state is ConnectionState.CLOSED:  # the client answered the server's close
            self._hang_up()
        else:  # what came could not be parsed (a protocol error, text that is not UTF-8)
            self.close(int(event.code), event.reason or "")
            self._hang_up()  # nothing sensible can follow: no waiting for an answer

    def _write(self, frame: bytes) -> None:
        if not self._out:
            self.http.loop.call_soon(self._flush)
        self._out.append(frame)
        self._out_size += len(frame)

    def _flush(self) -> None:
        if self._out:
            data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
            self._out.clear()
            self._out_size = 0
            self.http.write_raw(data)

    def _hang_up(self) -> None:
        """Close the connection once what was written is sent."""
        self._flush()
        self.http.close()

    def _over(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._cancel_timer()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _ping(self) -> None:
        self._timer = None
        if self.open:
            self._write(self._ws.send(Ping(payload=b"dropins")))
            self._awaiting_pong = True
            self._set_timer(self.settings.ping_timeout, self._pong_missing)

    def _pong_received(self) -> None:
        if self._awaiting_pong and self.open:
            self._awaiting_pong = False
            self._set_timer(self.settings.ping_interval, self._ping)

    def _pong_missing(self) -> None:
        """The client answered no ping in time: it is gone, or too slow to talk to.  Not while
        reading is paused for the application, though: the pong may be among what is unread."""
        self._timer = None
        if self.backlogged:
            self._set_timer(self.settings.ping_timeout, self._pong_missing)
            return
        self.close(1011, "keepalive ping timeout")
        self._flush()  # it leaves at once if the socket can take it; nothing waits for more
        self.http.abort()

    def _set_timer(self, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer()
        self._timer = self.http.loop.call_later(delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
