"""``DatagramServerService``: serve an ``asyncio.DatagramProtocol`` on a datagram endpoint.

It keeps ``StreamServerService``'s lifecycle contract: ``privileged_start()`` binds (or takes
the sockets a supervisor bound, ``dropins.service.inherited``), ``start()`` serves on the
running loop, ``stop()`` releases everything and returns promptly.  A datagram socket has no
connections to wait for, so stopping closes the transports at once; a protocol may define
``graceful_shutdown()``, called first, to finish work it started (a reply being computed).

Each bound socket gets its own protocol instance from ``factory`` (a host name may resolve to
several addresses).  ``datagrams_total`` counts what arrived, for metrics.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

from dropins.service.base import Service
from dropins.service.errors import EndpointError, listen_error
from dropins.service.serving import format_address

__all__ = ["DatagramServerService", "is_datagram_endpoint"]

logger = logging.getLogger("dropins.service")


def is_datagram_endpoint(endpoint: Any) -> bool:
    """Whether ``endpoint`` carries datagrams (``udp:``, ``udp6:``), not connections."""
    return bool(getattr(endpoint, "datagram", False))


class DatagramServerService(Service):
    """Serve ``factory`` (returning an ``asyncio.DatagramProtocol``) on ``endpoint``.

    ``endpoint`` is an endpoint string such as ``udp:5353:interface=127.0.0.1`` or an endpoint
    object with ``datagram = True``; a stream endpoint (``tcp:``) is refused with an
    ``EndpointError`` that says which kinds fit.
    """

    def __init__(self, endpoint: Any, factory: Callable[[], asyncio.DatagramProtocol], *,
                 name: str | None = None) -> None:
        super().__init__(name)
        if isinstance(endpoint, str):
            from dropins.service.endpoints import parse_endpoint

            self.description = endpoint
            endpoint = parse_endpoint(endpoint)
        else:
            self.description = str(endpoint.describe())
        if not is_datagram_endpoint(endpoint):
            raise EndpointError(f"{self.description!r} is a stream endpoint; this server "
                                "needs a datagram one, such as udp:PORT or udp6:PORT")
        self.endpoint = endpoint
        self.factory = factory
        self.transports: list[asyncio.DatagramTransport] = []
        self._protocols: list[Any] = []
        self._sockets: list[socket.socket] | None = None
        self._inherited = False
        #: datagrams received since the start
        self.datagrams_total = 0

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name is not None else ""
        return f"<DatagramServerService{label} on {self.description}>"

    @property
    def addresses(self) -> list[str]:
        """The real bound addresses, e.g. ``['udp:127.0.0.1:5353']``; empty before binding."""
        if not self._sockets:
            return []
        address = getattr(self.endpoint, "address", None)
        return [address(sock) if address else format_address(sock) for sock in self._sockets]

    def listening_sockets(self) -> list[socket.socket]:
        """The bound sockets (empty before binding), to hand to worker processes."""
        return list(self._sockets or ())

    def metrics(self) -> list[dict[str, Any]]:
        labels = {"service": self.name or self.description, "endpoint": self.description}
        return [{"name": "dropins_datagrams_total", "type": "counter", "labels": labels,
                 "help": "Datagrams received since the start, per service and endpoint.",
                 "value": self.datagrams_total}]

    def privileged_start(self) -> None:
        """Bind the socket(s) before privileges are dropped, unless they were inherited."""
        if self._sockets is not None:
            return
        from dropins.service.inherited import take

        inherited = take(self.description)
        if inherited is not None:
            self._sockets, self._inherited = inherited, True
            return
        try:
            self._sockets = list(self.endpoint.bind())
        except Exception as error:
            raise listen_error(self.description, error) from error

    async def start(self) -> None:
        """Serve on the running loop (binding first if that was not done yet)."""
        self.privileged_start()
        assert self._sockets is not None
        loop = asyncio.get_running_loop()
        try:
            self.transports = list(await self.endpoint.serve(loop, self._sockets,
                                                             self._counted_factory))
        except Exception as error:
            self._release()
            raise listen_error(self.description, error) from error
        await super().start()

    async def stop(self) -> None:
        """Tell the protocols, close the transports, release the sockets."""
        await super().stop()
        for protocol in self._protocols:
            hook = getattr(protocol, "graceful_shutdown", None)
            if callable(hook):
                try:
                    result = hook()
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    logger.exception("error in %r.graceful_shutdown()", protocol)
        transports, self.transports = self.transports, []
        for transport in transports:
            transport.close()
        await asyncio.sleep(0)  # let connection_lost run before the sockets go
        self._protocols.clear()
        self._release()

    def _counted_factory(self) -> asyncio.DatagramProtocol:
        protocol = self.factory()
        received = protocol.datagram_received

        def datagram_received(data: bytes, address: Any) -> None:
            self.datagrams_total += 1
            received(data, address)

        try:
            protocol.datagram_received = datagram_received  # type: ignore[method-assign,assignment]
        except AttributeError:  # a protocol with __slots__: served, but not counted
            pass
        self._protocols.append(protocol)
        return protocol

    def _release(self) -> None:
        sockets, self._sockets = self._sockets, None
        if sockets is None:
            return
        inherited, self._inherited = self._inherited, False
        if inherited:
            for sock in sockets:
                sock.close()
            return
        try:
            self.endpoint.close(sockets)
        except Exception:
            logger.exception("%s: error while releasing the sockets", self.description)
