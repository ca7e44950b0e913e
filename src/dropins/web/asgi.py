"""An ASGI 3 gateway for HTTP requests (lifespan is ``lifespan.py``, WebSockets ``websocket.py``).

Each request runs ``await app(scope, receive, send)`` as a task on the event loop.

* ``receive()`` gives the body as it arrives (``http.request`` with ``more_body``), bounded
  by the body limit and paced by the connection's flow control; a request without a body
  gets one empty ``http.request`` at once.  Once the body is consumed it waits until the
  response is complete or the client leaves (FIN or RST), then says ``http.disconnect``, so
  long-polls and ``is_disconnected()`` loops end when their client goes.
* ``send()`` takes ``http.response.start`` and ``http.response.body``; it waits for the
  client to take the data (flow control) and raises ``ClientDisconnected`` (an ``OSError``)
  once the connection is gone, as the ASGI 2.4 spec asks, so streaming applications stop.
  After a FIN the rule is the WSGI gateway's: a response given whole (one body message) is
  still sent, a streamed one (``more_body``) stops at its first part, and the connection is
  aborted without a response.
* A failing application gets a plain 500 if it had not started its response, or its
  connection closed if it had; the traceback goes to the ``dropins.web`` logger.  An
  exception (or a return without a response) after the application was told that its client
  left is how applications stop, not an error: one debug line, no traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from dropins.web.exchange import BodyError, ClientDisconnected, Exchange
from dropins.web.httputil import is_header_name
from dropins.web.paths import percent_decode

if TYPE_CHECKING:
    from dropins.web.wsconnection import WebSocketSettings

__all__ = ["AsgiHandler", "common_scope", "response_headers"]

logger = logging.getLogger("dropins.web")

Message = MutableMapping[str, Any]
AsgiApp = Callable[[Message, Callable[[], Awaitable[Message]],
                    Callable[[Message], Awaitable[None]]], Awaitable[None]]

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}


class AsgiHandler:
    """Serve ``app`` for every request; ``state`` is the lifespan state copied into scopes,
    ``root_path`` the path the application is mounted at behind a proxy (``--root-path``),
    ``websocket`` the settings of WebSockets (None: the defaults)."""

    def __init__(self, app: AsgiApp, name: str = "", state: dict[str, Any] | None = None, *,
                 root_path: str = "", websocket: WebSocketSettings | None = None) -> None:
        self.app = app
        self.name = name or getattr(app, "__name__", repr(app))
        self.state = state if state is not None else {}
        self.root_path = root_path
        self.websocket = websocket

    def __call__(self, exchange: Exchange) -> Any:
        if exchange.header(b"upgrade") is not None:
            from dropins.web.websocket import WebSocketCall, is_websocket_request

            if is_websocket_request(exchange):
                return WebSocketCall(self, exchange).run()
        return _AsgiCall(self, exchange).run()


def common_scope(handler: AsgiHandler, exchange: Exchange, kind: str) -> dict[str, Any]:
    """The scope of a request: what ``http`` and ``websocket`` scopes share.

    Behind a proxy that strips the prefix the application is mounted at (``--root-path``),
    ``path`` and ``raw_path`` get it back, as the ASGI spec wants them whole; frameworks take
    ``root_path`` off again for routing.
    """
    connection = exchange.connection
    transport = connection.transport
    server = transport.get_extra_info("sockname") if transport is not None else None
    root = handler.root_path
    scope: dict[str, Any] = {
        "type": kind,
        "asgi": ASGI_VERSION,
        "http_version": exchange.version,
        "scheme": exchange.scheme,
        "path": root + percent_decode(exchange.path).decode("utf-8", "replace"),
        "raw_path": root.encode("ascii") + exchange.path if root else exchange.path,
        "query_string": exchange.query,
        "root_path": root,
        "headers": exchange.headers,
        "client": exchange.client,
        "server": tuple(server[:2]) if isinstance(server, tuple) else None,
        "state": dict(handler.state),
    }
    if exchange.user is not None:
        scope["user"] = exchange.user
    return scope


def response_headers(pairs: Any) -> list[tuple[bytes, bytes]]:
    """An application's response headers, checked; the hop-by-hop ones the server decides
    (``Connection``, ``Transfer-Encoding``, ``Keep-Alive``) are dropped."""
    headers = []
    for name, value in pairs:
        lowered = bytes(name).lower()
        if lowered in (b"connection", b"transfer-encoding", b"keep-alive"):
            continue
        if b"\r" in value or b"\n" in value:
            raise ValueError(f"ASGI header {name!r}: control characters not allowed")
        if not is_header_name(bytes(name)):
            raise ValueError(f"ASGI header name {name!r} is not a valid HTTP token")
        headers.append((bytes(name), bytes(value)))
    return headers


class _AsgiCall:
    def __init__(self, handler: AsgiHandler, exchange: Exchange) -> None:
        self.handler = handler
        self.exchange = exchange
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.started = False
        self.body_done = False
        self.told_client_left = False
        self.stream_dropped = False
        self.response_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def run(self) -> None:
        exchange = self.exchange
        scope = common_scope(self.handler, exchange, "http")
        scope["method"] = exchange.method.decode("latin-1")
        try:
            await self.handler.app(scope, self.receive, self.send)
        except Exception as error:
            if isinstance(error, ClientDisconnected) or self.told_client_left:
                self._client_left(repr(error))
                return
            logger.exception("error in ASGI application %s for %s %s", self.handler.name,
                             exchange.method.decode("latin-1"), exchange.target.decode("latin-1"))
            self._fail()
            return
        finally:
            if not self.response_done.done():
                self.response_done.set_result(None)
        if not exchange.finished and exchange.connection.client_left:
            self._client_left("returned without a response")
        elif not exchange.finished:
            logger.error("ASGI application %s returned without completing the response to %s",
                         self.handler.name, exchange.target.decode("latin-1"))
            self._fail()

    def _fail(self) -> None:
        self.exchange.fail()

    def _client_left(self, outcome: str) -> None:
        exchange = self.exchange
        logger.debug("ASGI application %s stopped after its client left (%s %s): %s",
                     self.handler.name, exchange.method.decode("latin-1"),
                     exchange.target.decode("latin-1"), outcome)
        if not exchange.finished:
            exchange.abort()

    async def receive(self) -> Message:
        exchange = self.exchange
        body = exchange.body
        if not self.body_done:
            if body is None:
                self.body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            try:
                chunk = await body.read_chunk()
            except BodyError as error:
                self.body_done = True
                if not exchange.head_sent and not exchange.finished:
                    exchange.keep_alive = False
                    exchange.respond_error(error.status)
                return {"type": "http.disconnect"}
            except ClientDisconnected:
                self.body_done = True
                self.told_client_left = True
                return {"type": "http.disconnect"}
            if not chunk:
                self.body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            self.body_done = body.complete and body.buffered == 0
            return {"type": "http.request", "body": chunk, "more_body": not self.body_done}
        # Nothing more to read: wait for the end of the response or for the client to leave.
        connection = exchange.connection
        if not self.response_done.done() and not connection.client_left:
            await asyncio.wait([self.response_done, connection.left_future()],
                               return_when=asyncio.FIRST_COMPLETED)
        if not exchange.finished:
            self.told_client_left = True
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        try:
            await self._send(message)
        except ClientDisconnected:
            self.told_client_left = True
            raise

    async def _send(self, message: Message) -> None:
        exchange = self.exchange
        kind = message.get("type")
        connection = exchange.connection
        if kind == "http.response.body" and message.get("more_body", False) \
                and connection.client_left:
            self.stream_dropped = True  # half-closed under a stream: as for WSGI, it stops
        if self.stream_dropped or connection.closing or (exchange.finished and not self.started):
            # Gone, a dropped stream (whose later parts must not make a truncated response),
            # or already answered by the server itself (a 413 for a body too large).
            raise ClientDisconnected("client disconnected")
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("ASGI: http.response.start sent twice")
            self.started = True
            self.status = int(message["status"])
            self.headers = response_headers(message.get("headers", ()))
        elif kind == "http.response.body":
            if not self.started:
                raise RuntimeError("ASGI: http.response.body sent before http.response.start")
            if exchange.finished:
                raise RuntimeError("ASGI: body sent after the response was complete")
            data = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if not exchange.head_sent:
                # ASGI has no reason phrase: the standard one for the status is sent.
                exchange.send_head(self.status, self.headers, length=None if more else len(data))
            exchange.write(data)
            if more:
                await exchange.drain()
            else:
                exchange.end()
                if not self.response_done.done():
                    self.response_done.set_result(None)
        else:
            raise RuntimeError(f"ASGI: unexpected message type {kind!r} for an HTTP request")
