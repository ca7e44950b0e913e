"""What every server endpoint shares: serving bound sockets on a loop, and naming addresses.

``SocketEndpoint`` is a convenient base class for endpoint implementations (built-in or from
plugins); an endpoint need not inherit from it, only provide the methods described in
``dropins.service.endpoints``.  ``ServerGroup`` presents the servers of several sockets (a host
name may resolve to several addresses) as one ``asyncio.AbstractServer``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # asyncio and ssl are imported only by code that serves
    import asyncio
    import ssl

    from dropins.service.accepting import ConnectionGate

__all__ = ["DEFAULT_BACKLOG", "ServerGroup", "SocketEndpoint", "escape", "format_address"]

#: listen() backlog when the endpoint string gives none
DEFAULT_BACKLOG = 128


def escape(text: str) -> str:
    """Escape ``text`` for use as one field of an endpoint string (``\\`` and ``:``)."""
    return text.replace("\\", "\\\\").replace(":", "\\:")


def format_address(sock: socket.socket, kind: str | None = None) -> str:
    """The bound address of ``sock`` in endpoint-string style.

    ``tcp:127.0.0.1:43121``, ``tcp6:[::1]:43122``, ``unix:/run/app.sock``; ``kind`` replaces the
    ``tcp``/``tcp6`` prefix (``ssl:127.0.0.1:4433``).
    """
    address: Any = sock.getsockname()
    family = sock.family
    if family == socket.AF_INET:
        return f"{kind or 'tcp'}:{address[0]}:{address[1]}"
    if family == socket.AF_INET6:
        return f"{kind or 'tcp6'}:[{address[0]}]:{address[1]}"
    if isinstance(address, bytes):  # an abstract unix socket
        address = address.decode("utf-8", "backslashreplace")
    return f"unix:{escape(str(address))}"


class SocketEndpoint:
    """Base class for endpoints that bind ordinary listening sockets.

    Subclasses set ``description`` (the endpoint string as written) and implement ``bind()``;
    set ``ssl_context`` to serve TLS.  ``serve`` and ``close`` suit most endpoints as they are.
    A server may set ``ssl_handshake_timeout`` (seconds) before serving: asyncio's default
    lets a client that never sends its ClientHello hold a connection for a minute.
    """

    description: str = ""
    backlog: int = DEFAULT_BACKLOG
    ssl_context: ssl.SSLContext | None = None
    ssl_handshake_timeout: float | None = None
    #: replaces tcp/tcp6 in addresses, e.g. "ssl"
    address_kind: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description!r}>"

    def describe(self) -> str:
        """The endpoint string, as the user wrote it."""
        return self.description

    def bind(self) -> list[socket.socket]:
        """Create, bind and listen; raise ``ListenError`` (or ``OSError``) on failure."""
        raise NotImplementedError

    def address(self, sock: socket.socket) -> str:
        """The real address of one bound socket, in endpoint-string style."""
        return format_address(sock, self.address_kind)

    async def serve(self, loop: asyncio.AbstractEventLoop, sockets: Sequence[socket.socket],
                    protocol_factory: Callable[[], asyncio.BaseProtocol],
                    gate: ConnectionGate | None = None) -> asyncio.AbstractServer:
        """Serve ``protocol_factory`` on the bound ``sockets``; returns one server for all.

        ``gate`` limits the connections and paces accepting when descriptors run out (see
        ``dropins.service.accepting``); without one, a gate of its own is used.  Windows'
        proactor loop cannot watch sockets for readiness, so there the loop's own
        ``create_server`` accepts, without those limits.
        """
        from dropins.service.accepting import Acceptor, ConnectionGate, watches_sockets

        if not watches_sockets(loop):
            return await self._serve_natively(loop, sockets, protocol_factory)
        acceptor = Acceptor(loop, sockets, protocol_factory, gate or ConnectionGate(),
                            ssl=self.ssl_context, batch=self.backlog,
                            ssl_handshake_timeout=self.ssl_handshake_timeout,
                            description=self.describe())
        await acceptor.start_serving()
        return cast("asyncio.AbstractServer", acceptor)

    async def _serve_natively(self, loop: asyncio.AbstractEventLoop,
                              sockets: Sequence[socket.socket],
                              protocol_factory: Callable[[], asyncio.BaseProtocol],
                              ) -> asyncio.AbstractServer:
        servers = []
        try:
            for sock in sockets:
                servers.append(await loop.create_server(
                    protocol_factory, sock=sock, backlog=self.backlog, ssl=self.ssl_context,
                    ssl_handshake_timeout=self.ssl_handshake_timeout if self.ssl_context
                    else None))
        except BaseException:
            for server in servers:
                server.close()
            raise
        if len(servers) == 1:
            return servers[0]
        return cast("asyncio.AbstractServer", ServerGroup(servers))

    def close(self, sockets: Sequence[socket.socket]) -> None:
        """Release what ``bind`` acquired, once the server is closed (or was never started)."""
        for sock in sockets:
            sock.close()


class ServerGroup:
    """Several ``asyncio`` servers (one per socket) driven as one ``asyncio.AbstractServer``.

    It implements that interface by duck typing rather than inheritance, so that importing
    this module does not import asyncio.
    """

    def __init__(self, servers: Sequence[asyncio.AbstractServer]) -> None:
        self.servers = list(servers)

    @property
    def sockets(self) -> tuple[Any, ...]:
        found: list[Any] = []
        for server in self.servers:
            found.extend(getattr(server, "sockets", ()) or ())
        return tuple(found)

    def close(self) -> None:
        for server in self.servers:
            server.close()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self.servers[0].get_loop()

    def is_serving(self) -> bool:
        return any(server.is_serving() for server in self.servers)

    async def start_serving(self) -> None:
        for server in self.servers:
            await server.start_serving()

    async def serve_forever(self) -> None:
        import asyncio

        await asyncio.gather(*(server.serve_forever() for server in self.servers))

    async def wait_closed(self) -> None:
        for server in self.servers:
            await server.wait_closed()
