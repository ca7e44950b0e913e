"""One request and its response: the object that every handler (static, WSGI, ASGI) works with.

A handler is a callable ``handler(exchange)`` that either answers synchronously and returns
None (the fast path used for small static files) or returns an awaitable that answers.  It
answers through the exchange:

* ``respond(status, headers, body)`` - a whole response at once (Content-Length is added);
* ``send_head(status, headers)``, then ``write(data)`` any number of times, then ``end()``;
  without a Content-Length header an HTTP/1.1 response is sent chunked, an HTTP/1.0 one is
  ended by closing the connection;
* ``await drain()`` between writes to respect the client's speed (flow control);
* ``await sendfile(file, offset, count)`` for file bodies (zero-copy where the OS allows).

The exchange takes care of what every response needs: ``Date``, ``Server``, ``Connection``,
framing, no body for HEAD/204/304, and the access log line when it ends.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any, BinaryIO

from dropins.web.httputil import HeaderList, find_header, http_date, status_line

if TYPE_CHECKING:
    from dropins.web.protocol import HttpConnection

__all__ = ["BodyError", "ClientDisconnected", "Exchange", "RequestBody"]

_NO_BODY_STATUSES = frozenset({204, 304}) | frozenset(range(100, 200))
_SERVER_HEADER = b"Server: dropins\r\n"


class ClientDisconnected(ConnectionError):
    """The client went away (or the connection was closed) before the response was complete."""


class BodyError(Exception):
    """The request body cannot be delivered: too large (413), malformed (400) or too slow (408).

    Raised to a handler reading the body; ``status`` is what the client should be told.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RequestBody:
    """The body of one request as it arrives: buffered up to a bound, read chunk by chunk."""

    __slots__ = ("_chunks", "_connection", "_error", "_expect_continue", "_waiter", "buffered",
                 "complete", "discarding", "received")

    def __init__(self, connection: HttpConnection, expect_continue: bool) -> None:
        self._connection = connection
        self._chunks: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._expect_continue = expect_continue
        self.buffered = 0
        self.received = 0
        self.complete = False
        self.discarding = False
        self._error: BodyError | None = None

    # -- called by the connection
    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self.discarding:
            return
        self._chunks.append(data)
        self.buffered += len(data)
        self._wake()

    def finish(self) -> None:
        self.complete = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, error: BodyError) -> None:
        """The rest of the body will never come: readers get ``error``."""
        self._error = error
        self.discarding = True
        self._chunks.clear()
        self.buffered = 0
        self._wake()

    def discard(self) -> None:
        """Drop what is buffered and whatever still arrives (the handler no longer wants it)."""
        self.discarding = True
        self._chunks.clear()
        self.buffered = 0
        self._connection.update_reading()

    # -- called by handlers
    async def read_chunk(self) -> bytes:
        """The next piece of the body, or b"" once it is complete.

        Raises ClientDisconnected when the connection is lost first, and TimeoutError when the
        client sends nothing for the server's read timeout.
        """
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            if self._connection.client_left:
                raise ClientDisconnected("client disconnected while sending the body")
            if self._expect_continue:
                self._expect_continue = False
                self._connection.write_raw(b"HTTP/1.1 100 Continue\r\n\r\n")
            loop = self._connection.loop
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(self._connection.limits.header_timeout, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        chunk = self._chunks.popleft()
        self.buffered -= len(chunk)
        self._connection.update_reading()
        return chunk

    def lost(self) -> None:
        """The client left before the body was complete: wake a reader so it can raise."""
        self._wake()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(BodyError(408, "client sent no body data in time"))


class Exchange:
    """A request (method, target, headers, body) and the state of its response."""

    __slots__ = ("_chunked", "_declared", "_pending_head", "body", "bytes_sent", "client",
                 "connection", "error_status", "finished", "head_only", "head_sent", "headers",
                 "keep_alive", "method", "path", "query", "scheme", "started", "status",
                 "target", "user", "version")

    def __init__(self, connection: HttpConnection, method: bytes, target: bytes, version: str,
                 headers: HeaderList, keep_alive: bool, body: RequestBody | None) -> None:
        self.connection = connection
        self.started = connection.loop.time()  # for the latency histogram
        self.method = method
        self.target = target
        # A #fragment is for the client alone; one sent anyway never reaches a handler.
        path, _, query = target.partition(b"#")[0].partition(b"?")
        if not path.startswith(b"/") and b"://" in path:
            # Absolute form ("GET http://host/x"): what every handler and gateway means by the
            # path is the origin form ("/x"), as RFC 9112 asks servers to accept.
            path = b"/" + path.split(b"://", 1)[1].partition(b"/")[2]
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.body = body
        self.head_only = method == b"HEAD"
        #: the client's address and the scheme it used: the connection's, unless trusted
        #: proxy headers said otherwise (``forwarded.py``)
        self.client = connection.client
        self.scheme = connection.scheme
        self.user: str | None = None
        self.error_status = 0
        self.status = 0
        self.bytes_sent = 0
        self.head_sent = False
        self.finished = False
        self._chunked = False
        self._declared: int | None = None
        self._pending_head = b""

    def header(self, name: bytes) -> bytes | None:
        """The first value of a request header (name in lower case), or None."""
        return find_header(self.headers, name)

    # -- responding
    def send_head(self, status: int, headers: list[tuple[bytes, bytes]], *,
                  length: int | None = None, reason: bytes | None = None) -> None:
        """Start the response; the head is written together with the first body bytes.

        ``length`` is the size of a body known in full: it becomes the Content-Length unless
        ``headers`` has one.  A HEAD answered with no body at all gets none, since only a GET
        would tell its length.  ``reason`` replaces the standard reason phrase (WSGI's
        ``299 Custom Reason``).  Bodiless statuses (1xx, 204, 304) never carry a
        Content-Length, whoever set it: a client could otherwise wait for a body.
        """
        if self.head_sent:
            raise RuntimeError("the response head was already sent")
        self.head_sent = True
        self.status = status
        connection = self.connection
        if connection.server.closing:
            self.keep_alive = False
        line = status_line(status) if reason is None else b"HTTP/1.1 %d %b\r\n" % (status, reason)
        parts = [line, _SERVER_HEADER, b"Date: ", http_date(), b"\r\n"]
        bodiless = status in _NO_BODY_STATUSES
        has_length = False
        for name, value in headers:
            if name.lower() == b"content-length":
                if bodiless:
                    continue
                has_length = True
                self._declared = int(value) if value.isdigit() else None
            parts += [name, b": ", value, b"\r\n"]
        if bodiless:
            pass
        elif not has_length and length is not None and (length or not self.head_only):
            self._declared = length
            parts.append(b"Content-Length: %d\r\n" % length)
        elif not has_length and not self.head_only:
            if self.version == "1.1":
                self._chunked = True
                parts.append(b"Transfer-Encoding: chunked\r\n")
            else:
                self.keep_alive = False
        if not self.keep_alive:
            parts.append(b"Connection: close\r\n")
        elif self.version == "1.0":
            parts.append(b"Connection: keep-alive\r\n")
        parts.append(b"\r\n")
        self._pending_head = b"".join(parts)
        if bodiless:
            self.head_only = True

    def write(self, data: bytes) -> None:
        """Send part of the body (nothing is sent for HEAD requests and bodiless statuses)."""
        if self.finished:
            raise RuntimeError("the response is already complete")
        if not data or self.head_only:
            return
        declared = self._declared
        if declared is not None and self.bytes_sent + len(data) > declared:
            # More than the Content-Length announced: the excess would be read as the next
            # response.  Send what was announced, then close.
            data = data[:declared - self.bytes_sent]
            self.keep_alive = False
            if not data:
                return
        self.bytes_sent += len(data)
        if self._chunked:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        if self._pending_head:
            data = self._pending_head + data
            self._pending_head = b""
        self.connection.write_raw(data)

    def end(self) -> None:
        """Finish the response; the connection then moves on to the next request."""
        if self.finished:
            return
        if self._declared is not None and self.bytes_sent < self._declared and not self.head_only:
            self.keep_alive = False  # shorter than announced: only closing tells the client
        tail = b"0\r\n\r\n" if self._chunked and not self.head_only else b""
        if self._pending_head or tail:
            self.connection.write_raw(self._pending_head + tail)
            self._pending_head = b""
        self.finished = True
        self.connection.exchange_done(self)

    def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
        """Send a complete response with a Content-Length in one write."""
        self.send_head(status, headers, length=len(body))
        self.write(body)
        self.end()

    def respond_head_only(self, status: int, headers: list[tuple[bytes, bytes]],
                          length: int) -> None:
        """Answer a HEAD request: the head a GET would get (with its length), no body."""
        self.send_head(status, [*headers, (b"Content-Length", b"%d" % length)])
        self.end()

    def respond_error(self, status: int, message: str = "", headers: Any = ()) -> None:
        """A short plain-text error response (the reason phrase unless a message is given)."""
        text = message or status_line(status)[13:-2].decode("latin-1")
        render = getattr(getattr(self.connection, "server", None), "render_error", None)
        if render is not None:
            content_type, body = render(status, text)
            self.respond(status, [(b"Content-Type", content_type), *headers], body)
            return
        self.respond(status, [(b"Content-Type", b"text/plain; charset=utf-8"), *headers],
                     (text + "\n").encode("utf-8"))

    async def drain(self) -> None:
        """Wait until the client has taken enough of what was written (flow control)."""
        if self.connection.closed:
            raise ClientDisconnected("client disconnected")
        await self.connection.drain()

    async def sendfile(self, file: BinaryIO, offset: int, count: int) -> None:
        """Send ``count`` bytes of ``file`` from ``offset`` as the body (after send_head)."""
        if self.head_only or count <= 0:
            return
        if self._pending_head:
            self.connection.write_raw(self._pending_head)
            self._pending_head = b""
        await self.connection.sendfile(file, offset, count)
        self.bytes_sent += count

    def end_body_early(self, error: BodyError | None = None) -> None:
        """The request body will not be complete (the client left, or the request was
        refused): its reader gets ``error``, or ClientDisconnected when there is none, and
        the connection closes after this exchange."""
        body = self.body
        if body is not None and not body.complete:
            self.keep_alive = False
            if error is None:
                body.lost()
            else:
                body.fail(error)

    def fail(self) -> None:
        """End an unfinished response after a handler error: a 500 if nothing was sent yet,
        else an abort (half a response cannot be turned into an error)."""
        if self.finished:
            return
        if self.head_sent:
            self.abort()
        else:
            self.keep_alive = False
            self.respond_error(500)

    def abort(self) -> None:
        """Give up on this response: the client cannot get a well-formed one any more."""
        self.keep_alive = False
        self.finished = True
        self.connection.abort_exchange(self)
