"""One HTTP/1.1 connection: an asyncio Protocol driven by httptools' parser callbacks.

Why a Protocol and not streams: callbacks avoid a task and two buffers per request, which is
most of the difference in requests per second for small responses.

What the connection guarantees:

* pipelined requests are answered one at a time, in the order they arrived;
* reading pauses while the client is ahead (too many queued requests, or a request body the
  handler has not consumed yet) and resumes when it catches up;
* limits: request head size and header count (431), target length (414), body size (413),
  a deadline for each request head and for body data (408), an idle keep-alive timeout;
* ``Connection: close``, HTTP/1.0 keep-alive, chunked and Content-Length request bodies;
* the RFC 9112 rules for a request head (``requesthead.py``), and methods httptools does not
  know passed on to the handler (``parsing.py``);
* a bound on how long a client may take to accept its response (the send timeout);
* a graceful stop: ``graceful_shutdown()`` closes an idle connection at once and lets a busy one
  finish its current response (sent with ``Connection: close``).

The limits, the set of connections and the sweep of deadlines live in ``server.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, BinaryIO, cast

import httptools

from dropins.web.accesslog import log_access
from dropins.web.exchange import BodyError, ClientDisconnected, Exchange, RequestBody
from dropins.web.httputil import find_header, is_header_name
from dropins.web.parsing import end_of_requests, new_parser
from dropins.web.requesthead import check_request_head, server_answer_headers

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from dropins.web.server import WebServer

__all__ = ["HttpConnection"]

logger = logging.getLogger("dropins.web")

_MAX_QUEUED = 16          # pipelined requests accepted ahead of the one being answered
_BODY_HIGH_WATER = 256 * 1024
_SENDFILE_SLICE = 512 * 1024
_MAX_METHOD = 64          # longest method name accepted that httptools does not know
_STAND_IN_METHOD = b"GET "  # what httptools is given instead of a method it does not know


class HttpConnection(asyncio.Protocol):
    """The server side of one client connection."""

    def __init__(self, server: WebServer) -> None:
        self.server = server
        self.limits = server.limits
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.client = ("", 0)
        self.closed = False
        self._closing = False
        self._parser = new_parser(self)
        self._messages_begun = 0
        self._method_prefix = b""
        self._unknown_method: bytes | None = None
        self._queue: deque[Exchange] = deque()
        self._active: Exchange | None = None
        self._parsing: Exchange | None = None
        self._dispatching = False
        self._in_message = False
        self._ignore_input = False
        self._reading_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self.deadline = 0.0
        self._on_deadline: Callable[[], None] | None = None
        self._url_parts: list[bytes] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self._in_head = False
        self._progress = False      # whether the read being parsed advanced a request
        self._stalled = 0           # bytes read since an open request last advanced
        self._refused_status = 0    # the status a parser callback refused the request with
        self._ignored = 0           # bytes read and dropped since input is ignored
        self._upgrade_body: RequestBody | None = None
        self._task: asyncio.Task[None] | None = None
        self._input_ended = False
        self._left: asyncio.Future[None] | None = None

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do not derive from asyncio.Transport.
        self.transport = cast("asyncio.Transport", transport)
        peer = self.transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))
        elif peer:
            self.client = (str(peer), 0)
        self.server.connections.add(self)
        if self.server.closing:
            transport.close()
            return
        self._arm_timer(self.limits.header_timeout, self._on_header_timeout)

    def data_received(self, data: bytes) -> None:
        if self._ignore_input:
            self._discard(data)
            return
        if self._method_prefix:
            data, self._method_prefix = self._method_prefix + data, b""
        # A loop, not recursion: each request with an unknown method restarts the parser on
        # the rest of the read, and a read may hold thousands of them.
        while data and not self._ignore_input:
            data = self._feed(data)

    def _feed(self, data: bytes) -> bytes:
        """Parse ``data``; return what is left to parse after the parser was restarted for a
        request with an unknown method (b"" when all of it was taken)."""
        at_start = not self._in_message
        begun = self._messages_begun
        self._progress = False
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as error:
            return self._parser_stopped(error, data, at_start, begun)
        self._stalled = 0 if self._progress else self._stalled + len(data)
        if self._in_message and self._stalled > self.limits.max_head_size + \
                self.limits.max_target_size:
            # httptools hands over a header (or trailer) only once it is complete, and a chunk
            # extension never, so the size limits in on_url/on_header cannot stop one endless
            # line: count the reads in which an open request made no progress.  A read in
            # which a request began does not count, since most of it may be the body of the
            # previous request (which must not make this one a 431).
            self._reject(431, _Rejected(431))
        elif at_start and self._in_head and not self._url_parts:
            # The read ended inside a method name, which may turn out to be one httptools
            # does not know (``PURG`` + ``EX``): keep those bytes and parse them with the rest.
            completed = self._messages_begun - begun - 1
            self._method_prefix = data[end_of_requests(data, completed):] if completed else data
            self._restart_parser()
        return b""

    def _parser_stopped(self, error: Exception, data: bytes, at_start: bool,
                        begun: int) -> bytes:
        """What to do when the parser raised on ``data`` (see ``_feed``)."""
        if self._ignore_input:
            return b""  # it stopped after a request that is the last one read
        if isinstance(error, httptools.HttpParserInvalidMethodError):
            if not at_start:
                # The read began inside a request: where the one with the unknown method
                # starts is known only to the parser, which has given up.
                self._reject(400, error)
                return b""
            before = self._messages_begun - begun - 1  # complete requests before it
            return self._restart_for_unknown_method(
                data[end_of_requests(data, before):] if before else data)
        if isinstance(error, httptools.HttpParserUpgrade):
            # Protocol upgrades (WebSocket, h2c) are not offered: the upgrade request itself
            # was told to close (on_headers_complete); answer it over HTTP/1.1 and ignore
            # the bytes that follow it, after its body if it has one.
            if self._upgrade_body is None:
                self._stop_input()
                return b""
            return self._read_body_of_upgrade(data[error.args[0]:])
        status, self._refused_status = self._refused_status or 400, 0
        self._reject(status, error)
        return b""

    def _restart_parser(self) -> None:
        self._parser = new_parser(self)
        self._in_message = False
        self._in_head = False

    def _restart_for_unknown_method(self, data: bytes) -> bytes:
        """A request that starts ``data`` has a method httptools does not know (``BREW``):
        parse it with a stand-in method and give handlers the real one, so that applications
        can answer 405 or 501 themselves, as RFC 9110 9.1 leaves to them."""
        space = data.find(b" ", 0, _MAX_METHOD + 1)
        method = data[:space] if space != -1 else data
        if not is_header_name(method) or (space == -1 and len(data) > _MAX_METHOD):
            self._reject(400, ValueError("invalid request method"))
            return b""
        self._restart_parser()
        if space == -1:
            self._method_prefix = data  # the method's first bytes: wait for the rest
            return b""
        self._unknown_method = method
        return _STAND_IN_METHOD + data[space + 1:]

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
        parsing = self._parsing
        if parsing is not None and parsing.body is not None and not parsing.body.complete:
            parsing.keep_alive = False
            parsing.body.lost()
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
        for exchange in (self._active, self._parsing, *self._queue):
            if exchange is not None and exchange.body is not None:
                exchange.body.lost()
        self._queue.clear()
        self.server.forget(self)

    def pause_writing(self) -> None:
        # The client is not reading its answers: stop reading its requests, too, so that a
        # pipelining client that never reads cannot make the server buffer without bound.
        self._write_paused = True
        self.update_reading()
        self._arm_timer(self.limits.send_timeout, self._on_send_timeout)

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.update_reading()
        if self._on_deadline == self._on_send_timeout:
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

    # -- httptools callbacks
    def on_message_begin(self) -> None:
        self._messages_begun += 1
        self._in_message = True
        self._in_head = True
        self._progress = True
        self._url_parts = []
        self._headers = []
        self._head_size = 0
        if self._active is None and not self._queue and not self._write_paused:
            self._arm_timer(self.limits.header_timeout, self._on_header_timeout)

    def on_url(self, fragment: bytes) -> None:
        self._head_size += len(fragment)
        if self._head_size > self.limits.max_target_size:
            self._refuse(414)
        self._url_parts.append(fragment)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self.limits.max_head_size or \
                len(self._headers) >= self.limits.max_headers:
            self._refuse(431)
        self._headers.append((name.lower(), value))

    def _refuse(self, status: int) -> None:
        """Stop the parser from a callback; the status is kept here, since the exception
        httptools raises instead of ours carries it only as its ``__context__``."""
        self._refused_status = status
        raise _Rejected(status)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._progress = True
        if self._active is None and not self._queue and not self._write_paused:
            self._cancel_timer()
        parser = self._parser
        method = self._unknown_method or parser.get_method()
        self._unknown_method = None
        target = b"".join(self._url_parts)
        verdict = check_request_head(method, target, parser.get_http_version(), self._headers)
        headers = verdict.headers
        expect = find_header(headers, b"expect")
        length = find_header(headers, b"content-length")
        chunked = find_header(headers, b"transfer-encoding") is not None
        has_body = chunked or length not in (None, b"0")
        body = RequestBody(self, expect is not None and expect.lower() == b"100-continue"
                           and has_body) if has_body else None
        exchange = Exchange(self, method, target, verdict.version, headers,
                            # An upgrade request (WebSocket, h2c) is answered over HTTP/1.1 and
                            # the connection closed: decide that now, because a static answer
                            # is sent before the parser reports the upgrade.
                            parser.should_keep_alive() and not self.server.closing
                            and not parser.should_upgrade(), body)
        if verdict.status:
            exchange.error_status = verdict.status
        elif expect is not None and expect.lower() != b"100-continue":
            exchange.error_status = 417
        elif length is not None and length.isdigit() and int(length) > self.limits.max_body_size:
            exchange.error_status = 413
        if exchange.error_status >= 400:
            exchange.keep_alive = False
            self._stop_input()
        elif body is not None and parser.should_upgrade():
            self._upgrade_body = body  # httptools skips it: see _read_body_of_upgrade
        self._parsing = exchange
        self._queue.append(exchange)
        self._dispatch()

    def on_body(self, data: bytes) -> None:
        self._progress = True
        exchange = self._parsing
        if exchange is None or exchange.body is None:
            return
        exchange.body.feed(data)
        if exchange.body.received > self.limits.max_body_size:
            exchange.keep_alive = False
            exchange.body.fail(BodyError(413, "request body too large"))
            if exchange in self._queue:
                exchange.error_status = 413
            self._stop_input()
            return
        if exchange.body.buffered > _BODY_HIGH_WATER:
            self.update_reading()

    def on_message_complete(self) -> None:
        if self._upgrade_body is not None:
            return  # httptools skipped the body of an upgrade request; it is still to come
        self._progress = True
        self._in_message = False
        exchange = self._parsing
        self._parsing = None
        if exchange is not None and exchange.body is not None:
            exchange.body.finish()
        if len(self._queue) > _MAX_QUEUED:
            self.update_reading()

    def _read_body_of_upgrade(self, rest: bytes) -> bytes:
        """Deliver the body of an upgrade request whose upgrade is ignored (``curl --http2``
        sends ``POST`` with ``Upgrade: h2c``): httptools stops parsing at the end of the head,
        so a fresh parser, told the body's framing by a made-up head, parses the body.  The
        connection closes after the answer, so nothing after that body is read.  Returns
        ``rest``, which the new parser is to be fed."""
        body = self._upgrade_body
        exchange = self._parsing
        assert body is not None and exchange is not None
        framing = (b"Transfer-Encoding: chunked" if exchange.header(b"transfer-encoding")
                   else b"Content-Length: " + (exchange.header(b"content-length") or b"0"))
        self._parser = httptools.HttpRequestParser(_UpgradeBodyReader(self))
        self._parser.feed_data(b"POST / HTTP/1.1\r\n" + framing + b"\r\n\r\n")
        self._upgrade_body = None
        return rest

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
                elif not exchange.finished:
                    logger.error("handler returned without answering %s", exchange.target)
                    self._handler_failed(exchange, log=False)
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
            if not exchange.finished:
                logger.error("handler returned without answering %s", exchange.target)
                self._handler_failed(exchange, log=False)
        finally:
            self._task = None

    def _handler_failed(self, exchange: Exchange, log: bool = True) -> None:
        if log:
            logger.exception("error while answering %s %s", exchange.method.decode("latin-1"),
                             exchange.target.decode("latin-1"))
        exchange.fail()

    def exchange_done(self, exchange: Exchange) -> None:
        """Called by ``Exchange.end()``: log it and move on to the next request (or close)."""
        self._log(exchange)
        if exchange.body is not None and not exchange.body.complete:
            exchange.body.discard()
        if self._active is exchange:
            self._active = None
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
        if self._active is not None or self._queue:
            self._cancel_timer()
        elif self._in_message:
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
        if self.server.access_log:
            log_access(self.client[0], exchange)

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
        """Send part of a file in slices, each of which must go out within the send timeout.

        ``loop.sendfile`` reports no progress while it runs, so a client that stops reading
        is detected per slice (a client slower than _SENDFILE_SLICE per send timeout is
        dropped too).  The slice is cancelled before the connection is aborted: aborting a
        transport in the middle of asyncio's sendfile leaves a writer registered on the
        closed socket, which can then fire for the next connection given the same number.
        """
        if self.closing or self.transport is None:
            raise ClientDisconnected("client disconnected")
        try:
            while count > 0:
                size = min(count, _SENDFILE_SLICE)
                try:
                    sent = await asyncio.wait_for(
                        self.loop.sendfile(self.transport, file, offset, size),
                        self.limits.send_timeout)
                except NotImplementedError:  # e.g. uvloop: no loop.sendfile at all
                    sent = await self._copy_file(file, offset, size)
                except TimeoutError:
                    self._on_send_timeout()
                    raise ClientDisconnected("the client stopped reading") from None
                if sent != size:
                    raise ClientDisconnected("the file shrank while being sent")
                offset += size
                count -= size
        except (OSError, RuntimeError) as error:  # RuntimeError: "transport is closing"
            raise ClientDisconnected(str(error)) from error

    async def _copy_file(self, file: BinaryIO, offset: int, count: int) -> int:
        """sendfile by hand: read and write, waiting for the client between pieces."""
        file.seek(offset)
        sent = 0
        while sent < count:
            chunk = file.read(min(count - sent, 256 * 1024))
            if not chunk:
                break
            sent += len(chunk)
            self.write_raw(chunk)
            await self.drain()
        return sent

    def update_reading(self) -> None:
        """Pause reading while the client is ahead of the handler; resume when it catches up."""
        if self.closed or self.transport is None:
            return
        parsing = self._parsing
        behind = self._write_paused or len(self._queue) > _MAX_QUEUED or (
            parsing is not None and parsing.body is not None
            and parsing.body.buffered > _BODY_HIGH_WATER)
        if behind and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        elif not behind and self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()

    # -- closing and timers
    def close_when_idle(self) -> None:
        if self._active is None and not self._queue:
            self._close()
        else:
            for exchange in (self._active, *self._queue):
                if exchange is not None:
                    exchange.keep_alive = False

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

    def _stop_input(self) -> None:
        """Read nothing more as requests: the connection closes after what is queued.

        Reading goes on (``_discard``) rather than pausing, so that a FIN or an RST is still
        noticed: an application waiting on its client (a long-poll with ``Upgrade:``) then
        learns that it left, and the socket does not linger in CLOSE_WAIT."""
        self._ignore_input = True
        self.update_reading()

    def _discard(self, data: bytes) -> None:
        """Drop bytes read after the last request; a client that sends more than a request
        body's worth of them is not going to read its answer: abort."""
        self._ignored += len(data)
        if self._ignored > self.limits.max_body_size + self.limits.max_head_size:
            logger.debug("disconnecting %s: it sent %d bytes after its last request",
                         self.client[0], self._ignored)
            self.abort()

    def _reject(self, status: int, error: BaseException) -> None:
        """Answer a request the parser refused (after those before it) and close."""
        self._stop_input()
        logger.debug("rejecting request from %s with %d: %s", self.client[0], status, error)
        method, target, version = self._request_line_read()
        exchange = Exchange(self, method, target, version, [], False, None)
        exchange.error_status = status
        parsing = self._parsing
        if parsing is not None and parsing.body is not None and not parsing.body.complete:
            parsing.keep_alive = False
            parsing.body.fail(BodyError(status, "request body incomplete"))
        self._parsing = None
        self._queue.append(exchange)
        self._dispatch()

    def _request_line_read(self) -> tuple[bytes, bytes, str]:
        """Whatever of the request line of the head being parsed was read, for the access log
        line of a refused request (``-`` for what is missing)."""
        if not self._in_head or not self._url_parts:
            return self._unknown_method or b"-", b"-", "1.1"
        method = self._unknown_method or self._parser.get_method()
        version = self._parser.get_http_version() if self._headers else "1.1"
        return method, b"".join(self._url_parts), version

    def _on_header_timeout(self) -> None:
        if not self._in_message and self._active is None and not self._queue:
            self._close()  # nothing asked: just hang up
        else:
            self._reject(408, TimeoutError("request head not received in time"))

    def _on_send_timeout(self) -> None:
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


class _UpgradeBodyReader:
    """The parser callbacks for the body of an ignored upgrade: body data and its end only."""

    def __init__(self, connection: HttpConnection) -> None:
        self.connection = connection
        self.done = False

    def on_body(self, data: bytes) -> None:
        if not self.done:
            self.connection.on_body(data)

    def on_message_complete(self) -> None:
        if not self.done:
            self.done = True
            self.connection.on_message_complete()
            self.connection._stop_input()  # it closes after the answer


class _Rejected(Exception):
    """Raised inside a parser callback to refuse a request with an HTTP status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status
