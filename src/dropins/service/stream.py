"""``StreamServerService``: serve an asyncio protocol or a streams handler on an endpoint.

Stopping is graceful: the listener closes at once, open connections get the shutdown timeout
(the root Application's ``shutdown_timeout``, or the ``shutdown_timeout=`` argument) to finish,
and whatever is left is then aborted, so ``stop()`` always returns within that timeout plus a
small margin.  A protocol may define ``graceful_shutdown()``: it is called once when the
server begins to stop, which lets it close idle connections (an HTTP keep-alive, say) at once
instead of waiting for the timeout.  A protocol may also define ``abort_connection()``, called
instead of ``transport.abort()`` when the timeout is over: a protocol in the middle of an
operation that must not be cut under it (asyncio's ``loop.sendfile``) cancels that first.

Accepting goes through a ``ConnectionGate`` (``dropins.service.accepting``): at most
``max_connections`` open at once (by default half the open-file limit; more wait in the listen
backlog), and a short back-off, logged once, when the process runs out of descriptors.  Pass
one gate to several services to make them share the limit.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from dropins.service.accepting import ConnectionGate
from dropins.service.base import DEFAULT_SHUTDOWN_TIMEOUT, Service, root_setting
from dropins.service.errors import listen_error
from dropins.service.serving import format_address

__all__ = ["StreamServerService"]

logger = logging.getLogger("dropins.service")

#: seconds allowed, after aborting, for handlers and transports to wind down
_ABORT_GRACE = 1.0

StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[Any]]


class StreamServerService(Service):
    """Serve ``factory`` on ``endpoint`` while running.

    ``endpoint`` is an endpoint string (see ``dropins.service.endpoints``) or an endpoint
    object.  ``factory`` is either a protocol factory (a callable returning an
    ``asyncio.Protocol``) or a coroutine function ``async def handle(reader, writer)``; the
    writer of a handler is closed when the handler returns.
    """

    def __init__(self, endpoint: Any, factory: Callable[..., Any], *, name: str | None = None,
                 shutdown_timeout: float | None = None,
                 gate: ConnectionGate | None = None) -> None:
        super().__init__(name)
        if isinstance(endpoint, str):
            from dropins.service.endpoints import parse_endpoint

            self.description = endpoint
            endpoint = parse_endpoint(endpoint)
        else:
            self.description = str(endpoint.describe())
        if getattr(endpoint, "datagram", False):
            from dropins.service.errors import EndpointError

            raise EndpointError(f"{self.description!r} is a datagram endpoint; this server "
                                "needs a stream one, such as tcp:PORT or unix:PATH")
        self.endpoint = endpoint
        self.factory = factory
        self.is_handler = _is_coroutine_function(factory)
        self.shutdown_timeout = shutdown_timeout
        self.gate = gate or ConnectionGate()
        self.server: asyncio.AbstractServer | None = None
        self._sockets: list[socket.socket] | None = None
        #: True when the sockets were inherited (``dropins.service.inherited``): another
        #: process owns the endpoint, so stopping only closes them (a unix socket file stays).
        self._inherited = False
        self._transports: dict[asyncio.Transport, Any] = {}  # open transport -> its protocol
        self._protocols: set[Any] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._idle: asyncio.Event | None = None
        #: connections accepted since the start (open ones are ``len(self._transports)``)
        self.connections_total = 0

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name is not None else ""
        return f"<StreamServerService{label} on {self.description}>"

    @property
    def addresses(self) -> list[str]:
        """The real bound addresses, e.g. ``['tcp:127.0.0.1:43121']``; empty before binding."""
        if not self._sockets:
            return []
        address = getattr(self.endpoint, "address", None)
        return [address(sock) if address else format_address(sock) for sock in self._sockets]

    @property
    def connections_open(self) -> int:
        return len(self._transports)

    def metrics(self) -> list[dict[str, Any]]:
        """Open and total connections, as samples (see ``dropins.supervisor.metrics``)."""
        labels = {"service": _service_name(self), "endpoint": self.description}
        return [
            {"name": "dropins_connections_open", "type": "gauge", "labels": labels,
             "help": "Connections open now, per service and endpoint.",
             "value": self.connections_open},
            {"name": "dropins_connections_total", "type": "counter", "labels": labels,
             "help": "Connections accepted since the start, per service and endpoint.",
             "value": self.connections_total},
        ]

    def listening_sockets(self) -> list[socket.socket]:
        """The bound listening sockets (empty before binding), to hand to another process."""
        return list(self._sockets or ())

    def privileged_start(self) -> None:
        """Bind the listening socket(s), before privileges are dropped, unless this process
        inherited them (``dropins.service.inherited``)."""
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
        """Begin serving on the running loop (binding first if that was not done yet)."""
        self.privileged_start()
        assert self._sockets is not None
        loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()
        try:
            self.server = await _serve(self.endpoint, loop, self._sockets,
                                       self._protocol_factory(), self.gate)
        except Exception as error:
            self._release()
            raise listen_error(self.description, error) from error
        await super().start()

    async def stop(self) -> None:
        """Close the listener, let connections finish within the timeout, abort the rest."""
        await super().stop()
        server, self.server = self.server, None
        if server is None:
            self._release()
            return
        server.close()
        finish_set_ups = getattr(server, "finish_set_ups", None)  # connections just accepted
        if finish_set_ups is not None:
            try:
                await asyncio.wait_for(finish_set_ups(), _ABORT_GRACE)
            except TimeoutError:
                pass
        timeout = self._timeout()
        for protocol in list(self._protocols):
            _call_graceful_shutdown(protocol)
        if not self._is_idle():
            assert self._idle is not None
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except TimeoutError:
                logger.warning("%s: aborting %d connection(s) still open after %.3g s",
                               self.description, len(self._transports) or len(self._handlers),
                               timeout)
                await self._abort_all()
        try:
            await asyncio.wait_for(server.wait_closed(), _ABORT_GRACE)
        except TimeoutError:
            pass
        self._release()

    def _timeout(self) -> float:
        """How long open connections may still take: this service's own timeout if it has one,
        else what is left of the stopping tree's deadline, else the root's timeout."""
        if self.shutdown_timeout is not None:
            return float(self.shutdown_timeout)
        deadline = root_setting(self, "stop_deadline")
        if deadline is not None:
            return max(0.0, deadline - time.monotonic())
        return float(root_setting(self, "shutdown_timeout", DEFAULT_SHUTDOWN_TIMEOUT))

    def _release(self) -> None:
        sockets, self._sockets = self._sockets, None
        if sockets is None:
            return
        inherited, self._inherited = self._inherited, False
        close = None if inherited else getattr(self.endpoint, "close", None)
        try:
            if close is not None:
                close(sockets)
            else:
                for sock in sockets:
                    sock.close()
        except Exception:
            logger.exception("%s: error while releasing the listening sockets", self.description)

    async def _abort_all(self) -> None:
        for transport, protocol in list(self._transports.items()):
            _abort_connection(protocol, transport)
        for task in list(self._handlers):
            task.cancel()
        if not self._is_idle():
            assert self._idle is not None
            try:
                await asyncio.wait_for(self._idle.wait(), _ABORT_GRACE)
            except TimeoutError:
                logger.warning("%s: connections did not close after being aborted",
                               self.description)

    # ---- connection tracking ------------------------------------------------------------

    def _is_idle(self) -> bool:
        return not self._transports and not self._handlers

    def _check_idle(self) -> None:
        if self._idle is not None:
            if self._is_idle():
                self._idle.set()
            else:
                self._idle.clear()

    def _protocol_factory(self) -> Callable[[], asyncio.BaseProtocol]:
        make = self._stream_protocol if self.is_handler else self.factory

        def tracked_protocol() -> asyncio.BaseProtocol:
            protocol = make()
            self._track(protocol)
            return protocol

        return tracked_protocol

    def _stream_protocol(self) -> asyncio.BaseProtocol:
        reader = asyncio.StreamReader()
        return asyncio.StreamReaderProtocol(reader, self._start_handler)

    def _start_handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._run_handler(reader, writer))
        self._handlers.add(task)
        self._check_idle()

        def done(task: asyncio.Task[None]) -> None:
            self._handlers.discard(task)
            self._check_idle()

        task.add_done_callback(done)

    async def _run_handler(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        try:
            await self.factory(reader, writer)
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the peer went away: routine, not worth a traceback
        except Exception:
            logger.exception("%s: error in connection handler", self.description)
        finally:
            if not writer.is_closing():
                writer.close()

    def _track(self, protocol: Any) -> None:
        """Wrap the protocol's connection_made/lost on the instance to know open connections."""
        made, lost = protocol.connection_made, protocol.connection_lost
        holder: dict[str, asyncio.Transport] = {}

        def connection_made(transport: asyncio.Transport) -> None:
            previous = holder.get("transport")
            if previous is not None:  # the same connection, now wrapped (STARTTLS): one entry
                self._transports.pop(previous, None)
            else:
                self.connections_total += 1
            holder["transport"] = transport
            self._transports[transport] = protocol
            self._protocols.add(protocol)
            self._check_idle()
            made(transport)

        def connection_lost(error: Exception | None) -> None:
            try:
                lost(error)
            finally:
                transport = holder.pop("transport", None)
                if transport is not None:
                    self._transports.pop(transport, None)
                self._protocols.discard(protocol)
                self._check_idle()

        try:
            protocol.connection_made = connection_made
            protocol.connection_lost = connection_lost
        except AttributeError:  # a protocol with __slots__: served, but not tracked
            logger.debug("%s: cannot track connections of %r", self.description, protocol)


async def _serve(endpoint: Any, loop: asyncio.AbstractEventLoop, sockets: list[socket.socket],
                 factory: Callable[[], asyncio.BaseProtocol],
                 gate: ConnectionGate) -> asyncio.AbstractServer:
    """``endpoint.serve(...)``, with the gate for endpoints that take one (SocketEndpoint's do;
    a plugin's own ``serve`` written without it still works, without the limit)."""
    serve = endpoint.serve
    if "gate" in inspect.signature(serve).parameters:
        return await serve(loop, sockets, factory, gate=gate)
    return await serve(loop, sockets, factory)


def _service_name(service: Service) -> str:
    """How metrics name the service this server belongs to: the top-level service's name (a
    config file's name for it, ``web`` for ``dropins web``), else the nearest name on the
    way, else the endpoint string."""
    names: list[str] = []
    node: Service | None = service
    while node is not None and node.parent is not None:  # the root Application is left out
        if node.name:
            names.append(node.name)
        node = node.parent
    return names[-1] if names else str(getattr(service, "description", ""))


def _is_coroutine_function(factory: Any) -> bool:
    if inspect.iscoroutinefunction(factory):
        return True
    call = getattr(factory, "__call__", None)  # noqa: B004 - an async __call__ method
    return not inspect.isclass(factory) and inspect.iscoroutinefunction(call)


def _abort_connection(protocol: Any, transport: asyncio.Transport) -> None:
    hook = getattr(protocol, "abort_connection", None)
    if callable(hook):
        try:
            hook()
            return
        except Exception:
            logger.exception("error in %r.abort_connection()", protocol)
    transport.abort()


def _call_graceful_shutdown(protocol: Any) -> None:
    hook = getattr(protocol, "graceful_shutdown", None)
    if callable(hook):
        try:
            hook()
        except Exception:
            logger.exception("error in %r.graceful_shutdown()", protocol)
