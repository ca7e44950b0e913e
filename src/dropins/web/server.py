"""The server side shared by all connections: limits, the live connections, their deadlines.

``WebServer`` is the protocol factory handed to ``StreamServerService`` (one per command,
shared by every ``--listen``).  It knows every open connection, which gives two things:

* one periodic sweep of deadlines for all connections (see ``watch_deadlines``), instead of a
  timer per connection per request;
* a graceful stop: ``shutdown()`` closes idle connections at once and lets busy ones finish
  their current response (sent with ``Connection: close``); ``wait_closed(timeout)`` then
  aborts what is left.  StreamServerService calls each connection's ``graceful_shutdown()``
  when it stops, which does the same.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from dropins.web.protocol import HttpConnection
from dropins.web.requesthead import DEFAULT_ALLOW
from dropins.web.requeststats import RequestStats

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from dropins.web.exchange import Exchange

    Handler = Callable[[Exchange], Awaitable[None] | None]

__all__ = ["Limits", "WebServer"]

logger = logging.getLogger("dropins.web")


class Limits:
    """What a client may send and how long it may take."""

    __slots__ = ("header_timeout", "keepalive_timeout", "max_body_size", "max_head_size",
                 "max_headers", "max_target_size", "send_timeout")

    def __init__(self, *, max_head_size: int = 64 * 1024, max_headers: int = 100,
                 max_target_size: int = 8 * 1024, max_body_size: int = 10 * 1024 * 1024,
                 header_timeout: float = 10.0, keepalive_timeout: float = 15.0,
                 send_timeout: float = 60.0) -> None:
        self.max_head_size = max_head_size
        self.max_headers = max_headers
        self.max_target_size = max_target_size
        self.max_body_size = max_body_size
        self.header_timeout = header_timeout
        self.keepalive_timeout = keepalive_timeout
        self.send_timeout = send_timeout


class WebServer:
    """The protocol factory: holds the handler, the limits and the set of live connections."""

    def __init__(self, handler: Handler, limits: Limits | None = None, *,
                 access_log: bool = True) -> None:
        self.handler = handler
        #: the methods an ``Allow`` header lists in the server's own answers (OPTIONS *, 405)
        self.allow: bytes = getattr(handler, "allow", None) or DEFAULT_ALLOW
        self.access_log = access_log
        #: how the server's own error answers (413, 400, 408...) are written: None for plain
        #: text, else ``(status, message) -> (content type, body)`` (the admin's JSON)
        self.render_error: Callable[[int, str], tuple[bytes, bytes]] | None = None
        self.limits = limits or Limits()
        self.connections: set[HttpConnection] = set()
        #: responses by status and latency, for ``--health``'s /metrics
        self.stats = RequestStats()
        self.closing = False
        self._all_closed: asyncio.Event | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_interval = max(0.05, min(1.0, self.limits.header_timeout / 4,
                                             self.limits.keepalive_timeout / 4,
                                             self.limits.send_timeout / 4))

    def __call__(self) -> HttpConnection:
        return HttpConnection(self)

    def metrics(self) -> list[dict[str, Any]]:
        """The request samples of every connection (see ``dropins.supervisor.metrics``)."""
        return self.stats.metrics()

    def shutdown(self) -> None:
        """Stop taking requests: idle connections close now, busy ones after their response."""
        self.closing = True
        for connection in list(self.connections):
            connection.close_when_idle()

    async def wait_closed(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for connections to finish, then abort the rest."""
        if self.connections:
            self._all_closed = asyncio.Event()
            try:
                await asyncio.wait_for(self._all_closed.wait(), timeout)
            except TimeoutError:
                logger.warning("aborting %d connection(s) still busy after %.1f s",
                               len(self.connections), timeout)
                for connection in list(self.connections):
                    connection.abort()

    def watch_deadlines(self) -> None:
        """Make sure the sweep runs while there are connections.

        One periodic sweep for all connections replaces a timer per connection per request:
        arming a deadline is then a float assignment, and timeouts fire within a quarter of
        their length (at most a second) after they expire.
        """
        if self._sweeper is None:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(self._sweep_interval, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        if not self.connections:
            return
        now = asyncio.get_running_loop().time()
        for connection in list(self.connections):
            connection.check_deadline(now)
        self.watch_deadlines()

    def forget(self, connection: HttpConnection) -> None:
        self.connections.discard(connection)
        if not self.connections and self._all_closed is not None:
            self._all_closed.set()
