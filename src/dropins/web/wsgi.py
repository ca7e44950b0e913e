"""A PEP 3333 gateway: WSGI applications run in worker threads, never on the event loop.

The request body is read on the loop first (bounded by the server's body limit) and handed
to the application as ``wsgi.input``, in memory up to 1 MiB and in a temporary file above
(``spool.py``); the application then runs in a daemon thread pool.
Its response goes back to the loop in one of two ways:

* a list or tuple (the common case, ``return [body]``) is sent in one write, with a
  Content-Length computed when the application gave none, so the connection stays alive;
* any other iterable is streamed: each block is written and flushed to the client's pace
  before the next one is asked for, as PEP 3333 requires, so a slow client slows the
  application down instead of filling memory.  Once the client has left (FIN or RST),
  the next block is not sent: the iteration stops there, ``close()`` runs and the connection
  is aborted, with no response if none was started (one debug line, never a 500).  (An
  application blocked between two blocks is not interrupted: Python cannot stop a thread.)

``close()`` of the iterable is always called.  An exception before the response started
gives a plain 500; after it started, the connection is closed (the response cannot be
completed honestly).  Either way the traceback goes to the ``dropins.web`` logger and the
server goes on.

A ``wsgi.file_wrapper`` around a regular file is the exception to both: it is sent with
sendfile, on the loop, and closed afterwards (see ``filewrapper.py``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any

from dropins.web.exchange import ClientDisconnected, Exchange
from dropins.web.filewrapper import FileWrapper, file_to_send
from dropins.web.httputil import is_header_name
from dropins.web.paths import percent_decode
from dropins.web.spool import spool_body
from dropins.web.threads import DaemonThreadPool

__all__ = ["WsgiHandler"]

logger = logging.getLogger("dropins.web")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WsgiHandler:
    """Serve ``app`` for every request."""

    def __init__(self, app: WsgiApp, pool: DaemonThreadPool, name: str = "", *,
                 root_path: str = "") -> None:
        self.app = app
        self.pool = pool
        self.name = name or getattr(app, "__name__", repr(app))
        #: where a proxy serves the application (``--root-path``): its SCRIPT_NAME
        self.root_path = root_path

    def __call__(self, exchange: Exchange) -> Any:
        return self._serve(exchange)

    async def _serve(self, exchange: Exchange) -> None:
        body, size = await spool_body(exchange.body)
        loop = asyncio.get_running_loop()
        call = _WsgiCall(self, exchange, loop, _environ(exchange, body, size, self.root_path))
        running = self.pool.submit(call.run)
        # Closed when the application is done with it, even if this task is cancelled first.
        running.add_done_callback(lambda _: body.close())
        outcome = await asyncio.wrap_future(running, loop=loop)
        if outcome is _CLIENT_LEFT:
            logger.debug("WSGI application %s stopped streaming %s %s: its client left",
                         self.name, call.environ["REQUEST_METHOD"], call.environ["RAW_URI"])
            if not exchange.finished:
                exchange.abort()  # nothing more, not even an error, for a client that left
            return
        if outcome is _FAILED:
            if exchange.head_sent:
                exchange.abort()
            elif not exchange.finished:
                exchange.keep_alive = False
                exchange.respond_error(500)
            return
        if isinstance(outcome, _FileBody):
            await call.send_file(outcome)
        elif not exchange.finished:
            call.finish_on_loop(outcome)


_FAILED = object()
_CLIENT_LEFT = object()


class _FileBody:
    """A ``wsgi.file_wrapper`` response to send with sendfile: the file stays open until sent."""

    def __init__(self, wrapper: FileWrapper, file: Any, offset: int, size: int) -> None:
        self.wrapper = wrapper
        self.file = file
        self.offset = offset
        self.size = size


class _WsgiCall:
    """One application call; ``run`` executes in a worker thread."""

    def __init__(self, handler: WsgiHandler, exchange: Exchange, loop: asyncio.AbstractEventLoop,
                 environ: dict[str, Any]) -> None:
        self.handler = handler
        self.exchange = exchange
        self.loop = loop
        self.environ = environ
        self.status: int | None = None
        self.reason: bytes | None = None  # None: the standard phrase for the status
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_sent = False

    # -- in the worker thread
    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise RuntimeError("start_response() called twice without exc_info")
        code, _, reason = status.partition(" ")
        if len(code) != 3 or not code.isdigit() or "\r" in reason or "\n" in reason:
            raise ValueError(f"invalid WSGI status {status!r}: expected e.g. '200 OK'")
        encoded = []
        for name, value in headers:
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(f"WSGI header {name!r}: names and values must be str")
            if "\r" in value or "\n" in value:
                raise ValueError(f"WSGI header {name!r}: control characters are not allowed")
            if not is_header_name(name.encode("latin-1", "replace")):
                raise ValueError(f"WSGI header name {name!r} is not a valid HTTP token")
            lowered = name.lower()
            if lowered in ("connection", "transfer-encoding", "keep-alive"):
                continue  # hop-by-hop: the server decides these
            encoded.append((name.encode("latin-1"), value.encode("latin-1")))
        self.status = int(code)
        self.reason = reason.encode("latin-1", "replace") or None
        self.headers = encoded
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable: sends at once, like a streamed block."""
        self._send_block(data)

    def _send_block(self, data: bytes) -> None:
        if self.status is None:
            raise RuntimeError("the WSGI application sent a body before calling start_response")
        first = not self.head_sent
        self.head_sent = True
        future = asyncio.run_coroutine_threadsafe(self._write_on_loop(data, first), self.loop)
        future.result()

    def run(self) -> Any:
        result: Any = None
        keep_open = False
        try:
            result = self.handler.app(self.environ, self.start_response)
            if isinstance(result, (list, tuple)) and not self.head_sent:
                blocks = [bytes(block) for block in result]
                return blocks
            to_send = file_to_send(result) if self.status is not None else None
            if to_send is not None and not self.head_sent:
                keep_open = True  # closed by send_file() once the file is sent
                return _FileBody(result, *to_send)
            for block in result:
                if block:
                    self._send_block(block)
            return []
        except ClientDisconnected:
            return _CLIENT_LEFT
        except Exception:
            logger.exception("error in WSGI application %s for %s %s", self.handler.name,
                             self.environ["REQUEST_METHOD"], self.environ["RAW_URI"])
            return _FAILED
        finally:
            if not keep_open:
                self._close(result)

    def _close(self, result: Any) -> None:
        close = getattr(result, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                logger.exception("error in close() of WSGI application %s", self.handler.name)

    # -- on the event loop
    async def _write_on_loop(self, data: bytes, first: bool) -> None:
        exchange = self.exchange
        if exchange.finished or exchange.connection.client_left:
            # Also after a FIN: the client will not be there for the rest of the stream, so
            # the application stops at this block (and its close() runs) instead of writing
            # on until the peer's RST is noticed.
            raise ClientDisconnected("client disconnected")
        if first:
            assert self.status is not None
            exchange.send_head(self.status, self.headers, reason=self.reason)
        exchange.write(data)
        await exchange.drain()

    async def send_file(self, body: _FileBody) -> None:
        """Send a wrapped file from its position with sendfile (no more than a Content-Length
        the application gave), then close it in a worker thread, as it is application code."""
        assert self.status is not None
        exchange = self.exchange
        count = body.size
        for name, value in self.headers:
            if name.lower() == b"content-length" and value.isdigit():
                count = min(count, int(value))
        try:
            exchange.send_head(self.status, self.headers, length=count, reason=self.reason)
            await exchange.sendfile(body.file, body.offset, count)
            exchange.end()
        finally:
            await asyncio.wrap_future(self.handler.pool.submit(self._close, body.wrapper))

    def finish_on_loop(self, blocks: list[bytes]) -> None:
        exchange = self.exchange
        if self.status is None:
            logger.error("WSGI application %s returned without calling start_response",
                         self.handler.name)
            exchange.keep_alive = False
            exchange.respond_error(500)
            return
        if not self.head_sent:
            exchange.send_head(self.status, self.headers, length=sum(map(len, blocks)),
                               reason=self.reason)
        for block in blocks:
            exchange.write(block)
        exchange.end()


def _environ(exchange: Exchange, body: IO[bytes], size: int, root_path: str) -> dict[str, Any]:
    connection = exchange.connection
    transport = connection.transport
    server = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(server, tuple) and len(server) >= 2:
        server_name, server_port = str(server[0]), str(server[1])
    else:
        server_name, server_port = "localhost", "0"
    environ: dict[str, Any] = {
        "REQUEST_METHOD": exchange.method.decode("latin-1"),
        "SCRIPT_NAME": root_path,
        "PATH_INFO": percent_decode(exchange.path).decode("latin-1"),
        "QUERY_STRING": exchange.query.decode("latin-1"),
        "RAW_URI": exchange.target.decode("latin-1"),
        "SERVER_NAME": server_name,
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": f"HTTP/{exchange.version}",
        "SERVER_SOFTWARE": "dropins",
        "REMOTE_ADDR": exchange.client[0],
        "REMOTE_PORT": str(exchange.client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": exchange.scheme,
        "wsgi.input": body,
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.file_wrapper": FileWrapper,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if exchange.user is not None:
        environ["REMOTE_USER"] = exchange.user
    for name, value in exchange.headers:
        if b"_" in name:
            continue  # would be indistinguishable from a dash: a known spoofing trick
        text = value.decode("latin-1")
        if name == b"content-type":
            environ["CONTENT_TYPE"] = text
        elif name == b"content-length":
            environ["CONTENT_LENGTH"] = text
        else:
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            if key in environ:  # a repeated header: cookies join with "; ", others with ","
                text = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + text
            environ[key] = text
    if exchange.body is not None and "CONTENT_LENGTH" not in environ:
        environ["CONTENT_LENGTH"] = str(size)
    return environ
