"""The backends of ``--proxy`` and the keep-alive connections kept open to each of them.

A ``Backend`` is where one ``--proxy PREFIX=URL`` sends its requests: ``http://host:port/path``
or ``unix:/path.sock``.  A ``ConnectionPool`` per backend keeps the connections whose last
exchange ended cleanly, so that most requests cost no connect.  Why each rule:

* a connection is kept when its last exchange ended cleanly (the response complete with
  keep-alive, the request sent whole);
* idle connections are kept at most ``IDLE_TIMEOUT`` seconds (4 s), below the keep-alive
  timeouts of common backends (uvicorn 5 s, dropins web 15 s, nginx 75 s), so that the pool
  seldom picks a connection the backend is just closing; one it has closed already (EOF
  seen) is dropped when taken;
* at most ``MAX_IDLE`` (32) are kept per backend: beyond that, a burst's connections are
  closed rather than held;
* the newest idle connection is taken first (LIFO), which lets the oldest ones time out when
  traffic falls, and keeps the warmest one busy;
* a connection that is still taken when the server stops is closed by its request; idle ones
  are closed by ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Backend", "BackendConnection", "ConnectionPool", "parse_backend"]

IDLE_TIMEOUT = 4.0
MAX_IDLE = 32


@dataclass(frozen=True)
class Backend:
    """One backend: a TCP ``host``/``port`` or a unix ``socket_path``, and the ``path``
    prefixed to what is left of a request's path (b"" for none)."""

    text: str
    host: str = ""
    port: int = 0
    socket_path: str = ""
    path: bytes = b""

    @property
    def authority(self) -> bytes:
        """A ``Host`` for requests that came without one (HTTP/1.0)."""
        if self.socket_path:
            return b"localhost"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}".encode("ascii")


def parse_backend(url: str) -> Backend:
    """The backend a URL names; ValueError with a sentence saying what is wrong."""
    if url.startswith("unix:"):
        path = url[len("unix:"):]
        if not path.startswith("/") and not path.startswith("."):
            raise ValueError(f"{url!r}: give the socket's path, e.g. unix:/run/app.sock")
        return Backend(url, socket_path=path)
    parts = urlsplit(url)
    if parts.scheme == "https":
        raise ValueError(f"{url!r}: https backends are not supported; use http:// (on "
                         "loopback or a private network) or unix:")
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{url!r} is not a backend URL such as http://127.0.0.1:8000/path "
                         "or unix:/run/app.sock")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{url!r}: a backend URL has no query, fragment or user name")
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError(f"{url!r} has a port that is not a number from 1 to 65535") from None
    if any(c in parts.path for c in " %"):
        raise ValueError(f"{url!r}: the path must not hold spaces or '%'")
    return Backend(url, host=parts.hostname, port=port,
                   path=parts.path.rstrip("/").encode("ascii"))


class BackendConnection:
    """One connection to a backend."""

    __slots__ = ("idle_since", "reader", "reused", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reused = False
        self.idle_since = 0.0

    @property
    def alive(self) -> bool:
        """Whether the backend has not closed the connection (as far as we have seen)."""
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.transport.abort()


class ConnectionPool:
    """The idle keep-alive connections to one backend (see the module)."""

    def __init__(self, backend: Backend, connect_timeout: float) -> None:
        self.backend = backend
        self.connect_timeout = connect_timeout
        self._idle: list[BackendConnection] = []
        #: connections opened so far (for tests and the log)
        self.opened = 0

    async def acquire(self, fresh: bool = False) -> BackendConnection:
        """An idle connection (unless ``fresh``), or a new one.

        Raises OSError when the backend refuses and TimeoutError when it does not answer.
        """
        now = asyncio.get_running_loop().time()
        while self._idle and not fresh:
            connection = self._idle.pop()
            if now - connection.idle_since < IDLE_TIMEOUT and connection.alive:
                connection.reused = True
                return connection
            connection.close()
        backend = self.backend
        if backend.socket_path:
            opening = asyncio.open_unix_connection(backend.socket_path)
        else:
            opening = asyncio.open_connection(backend.host, backend.port)
        reader, writer = await asyncio.wait_for(opening, self.connect_timeout)
        self.opened += 1
        return BackendConnection(reader, writer)

    def release(self, connection: BackendConnection) -> None:
        """Keep ``connection``, whose last exchange ended so that another may follow, for
        the next request; or close it when the backend did, or enough are kept."""
        if not connection.alive or len(self._idle) >= MAX_IDLE:
            connection.close()
            return
        connection.idle_since = asyncio.get_running_loop().time()
        self._idle.append(connection)

    def close(self) -> None:
        """Close every idle connection (the server stops)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
