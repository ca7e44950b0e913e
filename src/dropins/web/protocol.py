"""One HTTP/1.1 connection: an asyncio Protocol that answers what its reader parses.

Why a Protocol and not streams: callbacks avoid a task and two buffers per request, which is
most of the difference in requests per second for small responses.

What the connection guarantees:

* pipelined requests are answered one at a time, in the order they arrived;
* reading pauses while the client is ahead (too many queued requests, or a request body the
  handler has not consumed yet) and resumes when it catches up;
* limits: request head size and header count (431), target length (414), body size (413),
  a deadline for each request head and for body data (408), an idle keep-alive timeout;
* ``Connection: close``, HTTP/1.0 keep-alive, chunked and Content-Length request bodies;
* the RFC 9112 rules for a request head (``requesthead.py``); turning bytes into requests,
  with the limits on heads and methods httptools does not know, is ``reading.py``'s part;
* a bound on how long a client may take to accept its response (the send timeout);
* a graceful stop: ``graceful_shutdown()`` closes an idle connection at once and lets a busy one
  finish its current response (sent with ``Connection: close``);
* a switch of protocol after a 101 response (``switch_protocol``): an accepted WebSocket, or any
  other ``UpgradedProtocol``, gets the connection's bytes, its end and its graceful stop.

The limits, the set of connections and the sweep of deadlines live in ``server.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, BinaryIO, cast

from dropins.web.accesslog import log_access
from dropins.web.exchange import BodyError, ClientDisconnected, Exchange
from dropins.web.reading import BODY_HIGH_WATER, RequestReader
from dropins.web.requesthead import server_answer_headers
from dropins.web.sendfile import send_file

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from dropins.web.server import WebServer
    from dropins.web.upgraded import UpgradedProtocol

__all__ = ["HttpConnection"]

logger = logging.getLogger("dropins.web")

_MAX_QUEUED = 16          # pipelined requests accepted ahead of the one being answered


class HttpConnection(asyncio.Protocol):
    """The server side of one client connection."""

    def __init__(self, server: WebServer) -> None:
        self.server = server
        self.limits = server.limits
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.client = ("", 0)
        self.scheme = "http"
        self.closed = False
        self._closing = False
        self.reader = RequestReader(self)
        self._queue: deque[Exchange] = deque()
        self._active: Exchange | None = None
        self._dispatching = False
        self._reading_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self.deadline = 0.0
        self._on_deadline: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._input_ended = False
        self._left: asyncio.Future[None] | None = None
        #: the protocol the connection was switched to by a 101 response, if any
        self.upgraded: UpgradedProtocol | None = None

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do not derive from asyncio.Transport.
        self.transport = cast("asyncio.Transport", transport)
        peer = self.transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))
        elif peer:
            self.client = (str(peer), 0)
        if self.transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"
        self.server.connections.add(self)
        if self.server.closing:
            transport.close()
            return
        self._arm_timer(self.limits.header_timeout, self._on_header_timeout)

    def data_received(self, data: bytes) -> None:
        if self.upgraded is not None:
            self.upgraded.data_received(data)
        else:
            self.reader.feed(data)

    def eof_received(self) -> bool | None:
        """The client half-closed (FIN): it will send nothing more.

        On plain TCP the connection stays open for what the client already asked: requests
        it sent completely are answered, then the connection is closed (a half-close is legal
        HTTP).  Everything else ends now: a connection with nothing to answer (idle, or in
        the middle of a request head) is closed at once instead of holding its descriptor
        until a timeout; an unfinished request body fails; the client counts as gone
        (``client_left``), so an application waiting on it is told (ASGI ``http.disconnect``)
        and a response still being streamed is dropped (see docs/web.md, *Clients that
        leave*).  On TLS asyncio always closes the connection after a close_notify, so True is
        returned only on plain transports (asyncio warns about it on TLS).
        """
        self._input_ended = True
        if self.upgraded is not None:
            self._signal_left()
            return self.upgraded.eof_received()
        if self.reader.parsing is not None:
            self.reader.parsing.end_body_early()
        self._signal_left()
        if self._active is None and not self._queue:
            self._close()
        transport = self.transport
        return transport is None or transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        self._signal_left()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ClientDisconnected("client disconnected"))
        for exchange in (self._active, self.reader.parsing, *self._queue):
            if exchange is not None:
                exchange.end_body_early()
        self._queue.clear()
        self.server.forget(self)
        if self.upgraded is not None:
            self.upgraded.connection_lost(exc)

    def pause_writing(self) -> None:
        # The client is not reading its answers: stop reading its requests, too, so that a
        # pipelining client that never reads cannot make the server buffer without bound.
        self._write_paused = True
        self.update_reading()
        self._arm_timer(self.limits.send_timeout, self.on_send_timeout)

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.update_reading()
        if self._on_deadline == self.on_send_timeout:
            self._arm_waiting_timer()
        self._dispatch()

    @property
    def closing(self) -> bool:
        """Whether the connection is closed or closing: nothing more can be sent on it."""
        return self._closing or self.closed

    @property
    def client_left(self) -> bool:
        """Whether the client has half-closed or the connection is lost: work done only for
        this client (a long-poll, a stream) may stop."""
        return self._input_ended or self.closed

    def left_future(self) -> asyncio.Future[None]:
        """A future that completes once ``client_left`` is true."""
        if self._left is None:
            self._left = self.loop.create_future()
            if self.client_left:
                self._left.set_result(None)
        return self._left

    def _signal_left(self) -> None:
        if self._left is not None and not self._left.done():
            self._left.set_result(None)

    def graceful_shutdown(self) -> None:
        """Called by StreamServerService when the server stops: finish, then close."""
        self.server.closing = True
        self.close_when_idle()

    def switch_protocol(self, exchange: Exchange, headers: list[tuple[bytes, bytes]],
                        protocol: UpgradedProtocol) -> None:
        """Answer ``exchange`` with ``101 Switching Protocols`` and ``headers``, then hand the
        connection to ``protocol``, with the bytes the client sent after the request head."""
        self.upgraded = protocol
        exchange.keep_alive = True  # no "Connection: close" on a 101
        exchange.send_head(101, headers)
        exchange.end()  # writes the head; exchange_done() logs it and keeps the connection
        after = self.reader.after_upgrade
        if after is None:  # more bytes came before the 101 than are kept: the stream is broken
            self.abort()
            return
        self.reader.after_upgrade = None
        if after:
            protocol.data_received(bytes(after))
        if self._input_ended and not self.closing:
            protocol.eof_received()

    # -- called by the reader
    def request_begun(self) -> None:
        """The first bytes of a request arrived: bound the wait for its head, unless the
        connection is busy answering (then the client may rightly wait to send the rest)."""
        if self._active is None and not self._queue and not self._write_paused:
            self._arm_timer(self.limits.header_timeout, self._on_header_timeout)

    def request_parsed(self, exchange: Exchange) -> None:
        """A request head was read: queue the request and answer it when its turn comes."""
        if self._active is None and not self._queue and not self._write_paused:
            self._cancel_timer()
        self._queue.append(exchange)
        self._dispatch()

    def reject(self, status: int, error: BaseException) -> None:
        """Answer a request the reader refused (after those before it) and close."""
        logger.debug("rejecting request from %s with %d: %s", self.client[0], status, error)
        method, target, version = self.reader.refuse(status)
        exchange = Exchange(self, method, target, version, [], False, None)
        exchange.error_status = status
        self._queue.append(exchange)
        self._dispatch()

    # -- dispatching requests to the handler, one at a time
    def _dispatch(self) -> None:
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while (self._active is None and self._queue and not self._closing
                   and not self._write_paused):
                exchange = self._active = self._queue.popleft()
                self.update_reading()
                if exchange.error_status:
                    self._answer_itself(exchange)
                    continue
                try:
                    pending = self.server.handler(exchange)
                except Exception:
                    self._handler_failed(exchange)
                    continue
                if pending is not None:
                    self._task = self.loop.create_task(self._complete(exchange, pending))
                else:
                    self._check_answered(exchange)
        finally:
            self._dispatching = False

    def _answer_itself(self, exchange: Exchange) -> None:
        """Answer a request the server decided on without the handler (an error, or
        ``OPTIONS *``, which is about the server)."""
        status = exchange.error_status
        headers = server_answer_headers(status, self.server.allow)
        if status < 400:
            exchange.respond(status, headers)
        else:
            exchange.respond_error(status, headers=headers)

    async def _complete(self, exchange: Exchange, pending: Awaitable[None]) -> None:
        try:
            await pending
        except ClientDisconnected:
            exchange.abort()
        except BodyError as error:
            exchange.keep_alive = False
            if exchange.head_sent:
                exchange.abort()
            elif not exchange.finished:
                exchange.respond_error(error.status)
        except Exception:
            self._handler_failed(exchange)
        else:
            self._check_answered(exchange)
        finally:
            self._task = None

    def _handler_failed(self, exchange: Exchange) -> None:
        logger.exception("error while answering %s %s", exchange.method.decode("latin-1"),
                         exchange.target.decode("latin-1"))
        exchange.fail()

    @staticmethod
    def _check_answered(exchange: Exchange) -> None:
        """A handler that returned must have answered: else the client gets a 500 rather
        than waiting for a response that will never come."""
        if not exchange.finished:
            logger.error("handler returned without answering %s", exchange.target)
            exchange.fail()

    def exchange_done(self, exchange: Exchange) -> None:
        """Called by ``Exchange.end()``: log it and move on to the next request (or close)."""
        self._log(exchange)
        if exchange.body is not None and not exchange.body.complete:
            exchange.body.discard()
        if self._active is exchange:
            self._active = None
        if self.upgraded is not None:
            self._cancel_timer()  # the new protocol keeps its own time
            return
        if not exchange.keep_alive or ((self.server.closing or self._input_ended)
                                       and not self._queue):
            self._close()
            return
        if self._write_paused:
            return  # the send timeout runs; resume_writing() dispatches what is queued
        if self._queue:
            self._dispatch()
        else:
            self._arm_waiting_timer()

    def _arm_waiting_timer(self) -> None:
        """Nothing to answer: bound the wait for the rest of a request, or for a new one."""
        if self._active is not None or self._queue or self.upgraded is not None:
            self._cancel_timer()
        elif self.reader.in_message:
            self._arm_timer(self.limits.header_timeout, self._on_header_timeout)
        else:
            self._arm_timer(self.limits.keepalive_timeout, self._close)

    def abort_exchange(self, exchange: Exchange) -> None:
        """Called by ``Exchange.abort()``: the response is broken, so is the connection."""
        self._log(exchange)
        if self._active is exchange:
            self._active = None
        self.abort()

    def _log(self, exchange: Exchange) -> None:
        if exchange.status:
            self.server.stats.record(exchange.status, self.loop.time() - exchange.started)
        if self.server.access_log:
            log_access(exchange.client[0], exchange)

    # -- output and flow control, used by Exchange
    def write_raw(self, data: bytes) -> None:
        if not self._closing and self.transport is not None:
            self.transport.write(data)

    async def drain(self) -> None:
        if self.closed:
            raise ClientDisconnected("client disconnected")
        if self._write_paused:
            if self._drain_waiter is None or self._drain_waiter.done():
                self._drain_waiter = self.loop.create_future()
            await self._drain_waiter

    async def sendfile(self, file: BinaryIO, offset: int, count: int) -> None:
        """Send part of a file as the body (``sendfile.py``)."""
        await send_file(self, file, offset, count)

    def update_reading(self) -> None:
        """Pause reading while the client is ahead of the handler; resume when it catches up."""
        if self.closed or self.transport is None:
            return
        parsing = self.reader.parsing
        upgraded = self.upgraded
        behind = self._write_paused or len(self._queue) > _MAX_QUEUED or (
            parsing is not None and parsing.body is not None
            and parsing.body.buffered > BODY_HIGH_WATER) or (
            upgraded is not None and upgraded.backlogged)
        if behind and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        elif not behind and self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()

    # -- closing and timers
    def close_when_idle(self) -> None:
        if self.upgraded is not None:
            self.upgraded.graceful_shutdown()
        elif self._active is None and not self._queue:
            self._close()
        else:
            for exchange in (self._active, *self._queue):
                if exchange is not None:
                    exchange.keep_alive = False

    def close(self) -> None:
        """Close after what was written is sent (used by an upgraded protocol)."""
        self._close()

    def _close(self) -> None:
        self._cancel_timer()
        if self.transport is not None and not self._closing:
            self._closing = True
            self.transport.close()

    def abort_connection(self) -> None:
        """Called by StreamServerService when the shutdown timeout is over: abort, but cancel a
        response in progress first, since aborting under asyncio's sendfile corrupts the loop's
        state for the socket (see ``sendfile``)."""
        task = self._task
        if task is not None and not task.done():
            task.add_done_callback(lambda _: self.abort())
            task.cancel()
        else:
            self.abort()

    def abort(self) -> None:
        self._cancel_timer()
        if self.transport is not None and not self.closed:
            self._closing = True
            self.transport.abort()

    def _on_header_timeout(self) -> None:
        if not self.reader.in_message and self._active is None and not self._queue:
            self._close()  # nothing asked: just hang up
        else:
            self.reject(408, TimeoutError("request head not received in time"))

    def on_send_timeout(self) -> None:
        logger.debug("disconnecting %s: it took nothing of its response for %.3g s",
                     self.client[0], self.limits.send_timeout)
        self.abort()

    def _arm_timer(self, delay: float, callback: Callable[[], None]) -> None:
        self.deadline = self.loop.time() + delay
        self._on_deadline = callback
        self.server.watch_deadlines()

    def _cancel_timer(self) -> None:
        self._on_deadline = None

    def check_deadline(self, now: float) -> None:
        """Called by the server's sweep: run the armed timeout if its deadline has passed."""
        callback = self._on_deadline
        if callback is not None and now >= self.deadline:
            self._on_deadline = None
            callback()
