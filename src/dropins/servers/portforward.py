"""``portforward``: relay every TCP connection accepted on ``--listen`` to ``--to HOST:PORT``.

Each accepted connection gets its own upstream connection; bytes flow both ways unchanged.
Flow control is end to end: when one side cannot take more, the other side stops being read,
so a slow reader never makes the relay buffer without bound.  Half-close is passed on (a client
that shuts down its sending side still receives the rest of the reply), and when either side
goes away the other is closed once its pending bytes are flushed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from dropins.options import Options as BaseOptions
from dropins.options import Parameter, UsageError

__all__ = ["DEFAULT_LISTEN", "Options", "make_service", "parse_target"]

log = logging.getLogger("dropins.servers.portforward")

DEFAULT_LISTEN = "tcp:8000:interface=127.0.0.1"


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6addr]:PORT`` for IPv6) as ``(host, port)``."""
    host, colon, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"invalid --to {text!r}: give HOST:PORT, e.g. 127.0.0.1:8080 or "
                         "[::1]:8080")
    return host, int(port_text)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise UsageError(f"invalid --connect-timeout {text!r}: give a positive number of seconds")
    return value


class Options(BaseOptions):
    description = "Relay TCP connections to another address (a port forwarder)."
    listen = Parameter(short="l", multiple=True, metavar="ENDPOINT", default=[DEFAULT_LISTEN],
                       help=f"Where to listen (repeatable; default: {DEFAULT_LISTEN}).")
    to = Parameter(short="t", required=True, type=parse_target, metavar="HOST:PORT",
                   help="Where to relay each connection.")
    connect_timeout = Parameter(type=_positive, default=10.0, metavar="SECONDS",
                                help="How long to wait for the upstream connection.")


class _Side(asyncio.Protocol):
    """One end of a relay: writes what it receives to its peer's transport."""

    def __init__(self, peer: _Side | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer = peer
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is None or peer.transport is None or peer.transport.is_closing():
            return False
        if peer.eof or not peer.transport.can_write_eof():
            peer.transport.close()
            return False
        peer.transport.write_eof()
        return True  # keep receiving what the peer still sends back

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()  # flushes what is buffered first


class _UpstreamSide(_Side):
    """The connection to ``--to``; it knows its client from the start, so that a greeting the
    upstream sends at once is relayed even before the client side is told of the connection."""


class ClientSide(_Side):
    """The accepted connection: connects upstream, holding early bytes until that is done.

    Reading is paused at once, but some loops (uvloop) start reading right after
    ``connection_made`` anyway, so bytes that arrive before the upstream connection are kept,
    and reading is paused again once ``EARLY_LIMIT`` bytes are waiting.
    """

    EARLY_LIMIT = 64 * 1024

    def __init__(self, host: str, port: int, connect_timeout: float) -> None:
        super().__init__(None)
        self.target = (host, port)
        self.connect_timeout = connect_timeout
        self._connecting: asyncio.Task[None] | None = None
        self._early: list[bytes] = []
        self._early_size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.pause_reading()
        self._connecting = asyncio.get_running_loop().create_task(self._connect())

    def data_received(self, data: bytes) -> None:
        if self.peer is not None:
            super().data_received(data)
            return
        self._early.append(data)
        self._early_size += len(data)
        if self._early_size >= self.EARLY_LIMIT and self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        if self.peer is not None:
            return super().eof_received()
        self.eof = True  # passed on once connected
        return True

    async def _connect(self) -> None:
        host, port = self.target
        loop = asyncio.get_running_loop()
        try:
            upstream_transport, upstream = await asyncio.wait_for(
                loop.create_connection(lambda: _UpstreamSide(self), host, port),
                self.connect_timeout)
        except (OSError, TimeoutError) as error:
            reason = "timed out" if isinstance(error, TimeoutError) else (error.strerror or error)
            log.warning("cannot connect to %s:%d: %s", host, port, reason)
            if self.transport is not None:
                self.transport.close()
            return
        if self.transport is None or self.transport.is_closing():
            upstream_transport.close()
            return
        self.peer = upstream
        early, self._early, self._early_size = b"".join(self._early), [], 0
        if early:
            upstream_transport.write(early)
        if self.eof:
            self.eof = False
            if not self.eof_received():
                self.transport.close()
            return
        self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        super().connection_lost(exc)


def make_service(options: Any) -> Any:
    """A service relaying every ``--listen`` endpoint to ``--to``."""
    from dropins.service import MultiService, StreamServerService

    host, port = options["to"]
    timeout = float(options["connect_timeout"])
    service = MultiService("portforward")
    for index, endpoint in enumerate(options["listen"]):
        service.add_service(StreamServerService(
            endpoint, lambda: ClientSide(host, port, timeout), name=f"portforward-{index}"))
    return service
