"""The ``udp`` and ``udp6`` endpoint kinds: bound datagram sockets.

They share the tcp kinds' fields and checks (``dropins.service.endpoint_inet``), less the
backlog, since a datagram socket does not listen.  ``udp6`` sets ``IPV6_V6ONLY`` so that
``udp:53`` and ``udp6:53`` can be combined.  A datagram endpoint says so with ``datagram =
True``: ``DatagramServerService`` (``dropins.service.datagram``) serves it, and
``StreamServerService`` refuses it with a message saying which kind it expects.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from dropins.service.endpoint_inet import _interface, _port, _reject_unescaped_ipv6, _unique
from dropins.service.endpoints import bind_fields
from dropins.service.errors import listen_error
from dropins.service.serving import format_address

if TYPE_CHECKING:
    import asyncio

__all__ = ["UDPServerEndpoint", "parse_udp", "parse_udp6"]


class UDPServerEndpoint:
    """Bind datagram sockets on ``port`` at ``interface`` (an address or host name)."""

    #: tells services that this endpoint carries datagrams, not connections
    datagram = True

    def __init__(self, port: int, interface: str, family: socket.AddressFamily, *,
                 description: str | None = None) -> None:
        self.port = port
        self.interface = interface
        self.family = family
        self.kind = "udp6" if family == socket.AF_INET6 else "udp"
        self.description = description or f"{self.kind}:{port}"

    def __repr__(self) -> str:
        return f"<UDPServerEndpoint {self.description!r}>"

    def describe(self) -> str:
        return self.description

    def address(self, sock: socket.socket) -> str:
        """``udp:127.0.0.1:5353`` or ``udp6:[::1]:5353``."""
        return format_address(sock, self.kind)

    def bind(self) -> list[socket.socket]:
        """One bound socket per address the interface resolves to, all on the same port."""
        try:
            infos = socket.getaddrinfo(self.interface, self.port, self.family,
                                       socket.SOCK_DGRAM, 0, socket.AI_PASSIVE)
        except OSError as error:
            raise listen_error(self.description, error) from error
        sockets: list[socket.socket] = []
        port = self.port
        try:
            for family, kind, proto, _, address in _unique(infos):
                sock = socket.socket(family, kind, proto)
                sockets.append(sock)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((address[0], port, *address[2:]))
                port = sock.getsockname()[1]
                sock.setblocking(False)
        except OSError as error:
            for sock in sockets:
                sock.close()
            raise listen_error(self.description, error) from error
        return sockets

    async def serve(self, loop: asyncio.AbstractEventLoop, sockets: Sequence[socket.socket],
                    protocol_factory: Callable[[], asyncio.DatagramProtocol],
                    ) -> list[asyncio.DatagramTransport]:
        """One transport (and one protocol) per bound socket."""
        transports: list[asyncio.DatagramTransport] = []
        try:
            for sock in sockets:
                transport, _ = await loop.create_datagram_endpoint(protocol_factory, sock=sock)
                transports.append(transport)
        except BaseException:
            for transport in transports:
                transport.abort()
            raise
        return transports

    def close(self, sockets: Sequence[socket.socket]) -> None:
        for sock in sockets:
            sock.close()


def parse_udp(args: Sequence[str], kwargs: Mapping[str, str], *,
              description: str | None = None) -> UDPServerEndpoint:
    """``udp:PORT[:interface=ADDR]``: IPv4; ADDR defaults to every interface."""
    _reject_unescaped_ipv6(args, kwargs)
    fields = bind_fields("udp", args, kwargs, ["port"], ["interface"])
    interface = _interface(fields, socket.AF_INET, "udp")
    return UDPServerEndpoint(_port(fields), interface or "0.0.0.0", socket.AF_INET,
                             description=description)


def parse_udp6(args: Sequence[str], kwargs: Mapping[str, str], *,
               description: str | None = None) -> UDPServerEndpoint:
    """``udp6:PORT[:interface=ADDR]``: IPv6 only; ADDR defaults to every interface."""
    _reject_unescaped_ipv6(args, kwargs)
    fields = bind_fields("udp6", args, kwargs, ["port"], ["interface"])
    interface = _interface(fields, socket.AF_INET6, "udp6")
    return UDPServerEndpoint(_port(fields), interface or "::", socket.AF_INET6,
                             description=description)
