"""Accepting connections: a back-off when the process runs out of descriptors, and a limit.

Why not ``loop.create_server``: when ``accept()`` fails with EMFILE ("too many open files"),
asyncio logs a traceback for every failed attempt (hundreds within seconds, with a few dozen
clients waiting), while uvloop (libuv) silently resets the waiting clients.  Neither can cap
the number of open connections.  So listening sockets are
watched here with ``loop.add_reader``, accepted connections are handed to
``loop.connect_accepted_socket`` (which both loops implement, TLS included), and one
``ConnectionGate`` shared by the listeners of a server decides when to accept:

* at most ``max_connections`` are open at once; beyond that accepting pauses, so new
  connections wait in the listen backlog (the kernel's queue) while the open ones are served
  at full speed, and it resumes as soon as one closes;
* when ``accept()`` fails (EMFILE, ENFILE, ENOBUFS...), accepting pauses for a short back-off
  (50 ms, doubling up to 1 s) and then retries by itself; one warning is logged when this
  starts and one line when accepting works again, never one per attempt (and at most one
  warning a minute, however often a server at the edge of its limit flips in and out).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Acceptor", "ConnectionGate", "default_max_connections", "watches_sockets"]

logger = logging.getLogger("dropins.service")

#: first and longest pause after accept() failed
RETRY_FIRST = 0.05
RETRY_LONGEST = 1.0
#: at most one warning of each kind (limit reached, accept failing) per this many seconds
WARNING_INTERVAL = 60.0
#: descriptors left for everything else (logs, imported modules, upstream connections...)
_RESERVED_DESCRIPTORS = 32


def default_max_connections() -> int:
    """Half the open-file limit, less a reserve.

    Each connection may hold a second descriptor besides its socket (the file being sent, an
    upstream connection), so half the limit keeps a busy server clear of EMFILE.
    """
    try:
        import resource
    except ImportError:  # Windows: no such limit to size from
        return 1024
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        soft = 1 << 20
    return max(1, (soft - _RESERVED_DESCRIPTORS) // 2)


def watches_sockets(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` has ``add_reader`` (not Windows' proactor loop, its default)."""
    proactor = getattr(asyncio, "ProactorEventLoop", None)
    return proactor is None or not isinstance(loop, proactor)


class ConnectionGate:
    """Whether the listeners of one server may accept: the connection limit, and the back-off.

    ``open`` counts connections from ``accept()`` until they close (TLS handshakes included,
    since they hold a descriptor too).
    """

    def __init__(self, max_connections: int | None = None) -> None:
        if max_connections is not None and max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self.max_connections = max_connections or default_max_connections()
        self.open = 0
        self._acceptors: list[Acceptor] = []
        self._failing_since: float | None = None  # when accept() began to fail (monotonic)
        self._failure_warned = False  # whether this episode of failures was logged
        self._retry_delay = 0.0
        self._retry: asyncio.TimerHandle | None = None
        self._full_warning = _Throttle()
        self._failure_warning = _Throttle()

    @property
    def accepting(self) -> bool:
        return self._retry is None and self.open < self.max_connections

    def attach(self, acceptor: Acceptor) -> None:
        self._acceptors.append(acceptor)
        acceptor.set_reading(self.accepting)

    def detach(self, acceptor: Acceptor) -> None:
        if acceptor in self._acceptors:
            self._acceptors.remove(acceptor)
        if not self._acceptors and self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def _update(self) -> None:
        accepting = self.accepting
        for acceptor in self._acceptors:
            acceptor.set_reading(accepting)

    def admit(self, description: str) -> Callable[[], None]:
        """Count one accepted connection; return the function to call once when it closes."""
        self.open += 1
        if self._failing_since is not None:
            if self._failure_warned:
                logger.info("%s: accepting connections again, after %.1f s", description,
                            time.monotonic() - self._failing_since)
            self._failing_since = None
        if self.open >= self.max_connections:
            self._update()
            if self._full_warning.due():
                logger.warning("%s: %d connections open, the limit (max connections): new ones "
                               "wait until one closes", description, self.open)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.open -= 1
                if self.open == self.max_connections - 1:
                    self._update()

        return release

    def accept_failed(self, description: str, error: OSError) -> None:
        """``accept()`` failed: pause every listener, log once per episode, retry later."""
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            self._retry_delay = RETRY_FIRST
            self._failure_warned = self._failure_warning.due()
            log = logger.warning if self._failure_warned else logger.debug
            log("%s: cannot accept connections: %s; pausing and retrying until it works "
                "(logged once)", description, error.strerror or error)
        else:
            self._retry_delay = min(self._retry_delay * 2, RETRY_LONGEST)
        if self._retry is None:
            self._retry = asyncio.get_running_loop().call_later(self._retry_delay,
                                                                self._end_pause)
        self._update()

    def _end_pause(self) -> None:
        self._retry = None
        self._update()


class _Throttle:
    """Says yes at most once per WARNING_INTERVAL."""

    def __init__(self) -> None:
        self._last: float | None = None

    def due(self) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < WARNING_INTERVAL:
            return False
        self._last = now
        return True


class Acceptor:
    """Serves a protocol on listening sockets, as ``loop.create_server`` would, via a gate.

    It has the parts of ``asyncio.AbstractServer`` that services use (``close``,
    ``wait_closed``, ``is_serving``, ``sockets``...), by duck typing.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sockets: Sequence[socket.socket],
                 protocol_factory: Callable[[], asyncio.BaseProtocol], gate: ConnectionGate, *,
                 ssl: Any = None, ssl_handshake_timeout: float | None = None,
                 batch: int = 128, description: str = "") -> None:
        self._loop = loop
        self._sockets = list(sockets)
        self._protocol_factory = protocol_factory
        self._gate = gate
        self._ssl = ssl
        self._ssl_handshake_timeout = ssl_handshake_timeout if ssl is not None else None
        self._batch = max(1, batch)
        from dropins.service.inherited import is_shared

        #: sockets other processes accept on too: one connection per wake-up (see is_shared)
        self._shared = {sock.fileno() for sock in self._sockets if is_shared(sock)}
        self.description = description
        self._reading = False
        self._serving = False
        self._set_ups: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        for sock in self._sockets:
            sock.setblocking(False)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._sockets)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        if self._closed.is_set():
            raise RuntimeError(f"{self.description}: the server is closed")
        if not self._serving:
            self._serving = True
            self._gate.attach(self)

    async def serve_forever(self) -> None:
        await self.start_serving()
        await self._closed.wait()

    def close(self) -> None:
        """Close the listening sockets, as asyncio's servers do, so that new clients are refused
        at once; TLS handshakes still under way are dropped.  A plain connection accepted just
        before is still set up (``finish_set_ups``), to be served and drained like the others:
        dropping it would reset a client whose request another worker sharing the socket could
        have answered."""
        if self._closed.is_set():
            return
        self._closed.set()
        self.set_reading(False)
        self._serving = False
        self._gate.detach(self)
        for sock in self._sockets:
            sock.close()
        if self._ssl is not None:
            for task in self._set_ups:
                task.cancel()

    async def finish_set_ups(self) -> None:
        """Wait until the connections accepted before ``close()`` are set up (or dropped)."""
        if self._set_ups:
            await asyncio.gather(*self._set_ups, return_exceptions=True)

    async def wait_closed(self) -> None:
        await self._closed.wait()
        if self._set_ups:
            await asyncio.gather(*self._set_ups, return_exceptions=True)

    def set_reading(self, accepting: bool) -> None:
        """Watch the listening sockets while accepting, and not otherwise."""
        wanted = accepting and self._serving
        if wanted == self._reading:
            return
        self._reading = wanted
        for sock in self._sockets:
            if wanted:
                self._loop.add_reader(sock.fileno(), self._accept, sock)
            else:
                self._loop.remove_reader(sock.fileno())

    def _accept(self, sock: socket.socket) -> None:
        """Accept what is waiting: a bounded batch, so one busy listener cannot starve the rest,
        and one connection on a socket shared with other workers, so that they get theirs."""
        for _ in range(1 if sock.fileno() in self._shared else self._batch):
            if not self._reading:
                return
            try:
                connection, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while waiting: nothing to do
            except OSError as error:  # EMFILE, ENFILE, ENOBUFS, ENOMEM and the like
                self._gate.accept_failed(self.description, error)
                return
            release = self._gate.admit(self.description)
            connection.setblocking(False)
            task = self._loop.create_task(self._set_up(connection, release))
            self._set_ups.add(task)
            task.add_done_callback(self._set_ups.discard)

    async def _set_up(self, connection: socket.socket, release: Callable[[], None]) -> None:
        counted = False

        def make_protocol() -> asyncio.BaseProtocol:
            nonlocal counted
            protocol = self._protocol_factory()
            counted = _call_on_close(protocol, release)
            return protocol

        try:
            await self._loop.connect_accepted_socket(
                make_protocol, connection, ssl=self._ssl,
                ssl_handshake_timeout=self._ssl_handshake_timeout)
        except asyncio.CancelledError:
            release()
            raise
        except Exception as error:  # a failed TLS handshake, a connection reset early...
            release()
            logger.debug("%s: connection not set up: %s", self.description, error)
            return
        if not counted:  # a protocol whose connection_lost cannot be wrapped: not counted
            release()


def _call_on_close(protocol: Any, callback: Callable[[], None]) -> bool:
    """Make ``protocol.connection_lost`` also call ``callback``; False if it cannot be wrapped."""
    lost = protocol.connection_lost

    def connection_lost(error: Exception | None) -> None:
        try:
            lost(error)
        finally:
            callback()

    try:
        protocol.connection_lost = connection_lost
    except AttributeError:  # a protocol with __slots__
        return False
    return True
