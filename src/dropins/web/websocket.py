"""The ASGI ``websocket`` scope: the opening handshake, the messages, denial responses.

An upgrade request (``GET``, HTTP/1.1, ``Upgrade: websocket``, ``Connection: upgrade``, no
body) to an ASGI application runs the application with a ``websocket`` scope:

* ``receive()`` says ``websocket.connect`` first; the application answers with
  ``websocket.accept`` (a subprotocol among the client's, extra headers), which sends the 101
  response and hands the connection to a ``WebSocketConnection`` (``wsconnection.py``); or
  with ``websocket.close``, which refuses it with a 403; or with a response of its own,
  ``websocket.http.response.start`` and ``.body`` (the spec's extension, advertised in
  ``scope["extensions"]``), sent as an ordinary HTTP response;
* then ``websocket.receive`` (``text`` or ``bytes``) and ``websocket.send``, and
  ``websocket.disconnect`` with the close code once the WebSocket is over (1006 for a
  client that vanished); ``send()`` on a closed WebSocket raises ``ClientDisconnected`` (an
  ``OSError``), as the spec asks;
* an application that fails before accepting gets a 500; after, the WebSocket is closed
  with 1011; one that returns without closing it gets it closed with 1000; an accept that
  comes while the server is stopping is answered 503.

A handshake the server cannot accept (a malformed ``Sec-WebSocket-Key``, a version other
than 13) is answered 400 or 426 without the application; a request without any key is no
WebSocket request, and gets the ``http`` scope.  WSGI applications and static
files never see any of this: their upgrade requests are answered as plain HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import TYPE_CHECKING, Any

from dropins.web.asgi import Message, common_scope, response_headers
from dropins.web.exchange import ClientDisconnected, Exchange

if TYPE_CHECKING:
    from dropins.web.asgi import AsgiHandler
    from dropins.web.wsconnection import WebSocketConnection

__all__ = ["WebSocketCall", "is_websocket_request"]

logger = logging.getLogger("dropins.web")

_EXTENSIONS: dict[str, dict[str, Any]] = {"websocket.http.response": {}}


def header_tokens(exchange: Exchange, name: bytes) -> list[bytes]:
    """The comma-separated tokens of every ``name`` header, stripped and in lower case."""
    return [token.strip().lower() for field, value in exchange.headers if field == name
            for token in value.split(b",") if token.strip()]


def is_websocket_request(exchange: Exchange) -> bool:
    """Whether ``exchange`` asks to open a WebSocket (RFC 6455 4.1).  Without a
    ``Sec-WebSocket-Key`` it does not: such a request is served as plain HTTP, its upgrade
    ignored, as before WebSockets were offered."""
    return (exchange.method == b"GET" and exchange.version == "1.1" and exchange.body is None
            and exchange.header(b"sec-websocket-key") is not None
            and b"websocket" in header_tokens(exchange, b"upgrade")
            and b"upgrade" in header_tokens(exchange, b"connection"))


def _handshake_refusal(exchange: Exchange) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
    """Status, message and headers for a handshake that cannot be accepted, else None."""
    version = exchange.header(b"sec-websocket-version")
    if version != b"13":
        return (426 if version else 400, "WebSocket version 13 is required",
                [(b"Sec-WebSocket-Version", b"13")])
    key = exchange.header(b"sec-websocket-key") or b""
    try:
        if len(base64.b64decode(key, validate=True)) == 16:
            return None
    except binascii.Error:
        pass
    return 400, "Sec-WebSocket-Key must be 16 bytes in base64", []


class WebSocketCall:
    """One run of the application for a WebSocket request."""

    def __init__(self, handler: AsgiHandler, exchange: Exchange) -> None:
        self.handler = handler
        self.exchange = exchange
        self.socket: WebSocketConnection | None = None   # once accepted
        self.connect_sent = False
        self.told_disconnect = False
        self.refused_code = 1000      # the code of a websocket.close before accepting
        self.denial_status = 0        # a websocket.http.response.start seen
        self.denial_headers: list[tuple[bytes, bytes]] = []
        self.answered = asyncio.get_running_loop().create_future()  # refused or denied

    async def run(self) -> None:
        exchange = self.exchange
        refusal = _handshake_refusal(exchange)
        if refusal is not None:
            status, message, headers = refusal
            exchange.respond_error(status, message, headers)
            return
        try:
            await self.handler.app(self._scope(), self.receive, self.send)
        except Exception as error:
            self._failed(error)
            return
        socket = self.socket
        if socket is not None:
            socket.close(1000)
        elif not exchange.finished:
            if exchange.head_sent or exchange.connection.client_left:
                exchange.abort()  # a denial response left unfinished, or nobody to tell
            else:
                exchange.respond_error(403)  # returned without accepting: refused

    def _failed(self, error: Exception) -> None:
        exchange = self.exchange
        if isinstance(error, ClientDisconnected) or self.told_disconnect:
            logger.debug("ASGI application %s stopped after its WebSocket %s closed: %r",
                         self.handler.name, exchange.target.decode("latin-1"), error)
        else:
            logger.exception("error in ASGI application %s for WebSocket %s",
                             self.handler.name, exchange.target.decode("latin-1"))
        if self.socket is not None:
            self.socket.close(1011)
        elif not exchange.finished:
            exchange.fail()

    def _scope(self) -> dict[str, Any]:
        exchange = self.exchange
        scope = common_scope(self.handler, exchange, "websocket")
        scope["scheme"] = "wss" if exchange.scheme == "https" else "ws"
        scope["subprotocols"] = [token.decode("latin-1") for token in
                                 header_tokens(exchange, b"sec-websocket-protocol")]
        scope["extensions"] = _EXTENSIONS
        return scope

    # -- receive
    async def receive(self) -> Message:
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        socket = self.socket
        if socket is None:
            return await self._receive_unaccepted()
        data = await socket.receive()
        if data is None:
            self.told_disconnect = True
            return {"type": "websocket.disconnect", "code": socket.close_code,
                    "reason": socket.close_reason}
        if isinstance(data, str):
            return {"type": "websocket.receive", "text": data}
        return {"type": "websocket.receive", "bytes": data}

    async def _receive_unaccepted(self) -> Message:
        """Before an accept there is nothing to receive: wait until the client leaves or the
        application refused the WebSocket."""
        connection = self.exchange.connection
        if not self.answered.done() and not connection.client_left:
            await asyncio.wait([self.answered, connection.left_future()],
                               return_when=asyncio.FIRST_COMPLETED)
        self.told_disconnect = True
        code = 1006 if connection.client_left and not self.answered.done() else self.refused_code
        return {"type": "websocket.disconnect", "code": code, "reason": ""}

    # -- send
    async def send(self, message: Message) -> None:
        kind = message.get("type")
        socket = self.socket
        if kind == "websocket.send":
            if socket is None:
                raise RuntimeError("ASGI: websocket.send before websocket.accept")
            text, data = message.get("text"), message.get("bytes")
            if text is not None and data is None:
                await socket.send(str(text))
            elif data is not None and text is None:
                await socket.send(bytes(data))
            else:
                raise ValueError("ASGI: websocket.send needs exactly one of 'text' and 'bytes'")
        elif kind == "websocket.close":
            code, reason = int(message.get("code", 1000)), str(message.get("reason") or "")
            if socket is not None:
                socket.close(code, reason)
            else:
                self._before_accept(kind)
                self.refused_code = code
                self.exchange.respond_error(403)
                self._answered()
        elif kind == "websocket.accept":
            self._before_accept(kind)
            self._accept(message)
        elif kind == "websocket.http.response.start":
            self._before_accept(kind)
            if self.denial_status:
                raise RuntimeError("ASGI: websocket.http.response.start sent twice")
            self.denial_status = int(message["status"])
            self.denial_headers = response_headers(message.get("headers", ()))
        elif kind == "websocket.http.response.body":
            await self._send_denial_body(message)
        else:
            raise RuntimeError(f"ASGI: unexpected message type {kind!r} for a WebSocket")

    def _before_accept(self, kind: str) -> None:
        """Check that ``kind`` may be sent now: before the WebSocket is accepted or refused."""
        if self.socket is not None or self.exchange.finished:
            raise RuntimeError(f"ASGI: {kind} after the WebSocket was accepted or refused")
        if self.exchange.connection.closing or self.exchange.connection.client_left:
            raise ClientDisconnected("client disconnected before the WebSocket was accepted")
        if kind != "websocket.http.response.start" and self.denial_status:
            raise RuntimeError(f"ASGI: {kind} after websocket.http.response.start")

    def _answered(self) -> None:
        if not self.answered.done():
            self.answered.set_result(None)

    def _accept(self, message: Message) -> None:
        from wsproto.extensions import PerMessageDeflate
        from wsproto.handshake import server_extensions_handshake
        from wsproto.utilities import generate_accept_token

        from dropins.web.wsconnection import WebSocketConnection, WebSocketSettings

        exchange = self.exchange
        connection = exchange.connection
        if connection.server.closing:
            # Service unavailable, not an application error: the client may retry elsewhere.
            exchange.respond_error(503, "the server is stopping")
            self._answered()
            raise ClientDisconnected("the server is stopping")
        settings = self.handler.websocket or WebSocketSettings()
        key = exchange.header(b"sec-websocket-key") or b""
        headers = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
                   (b"Sec-WebSocket-Accept", generate_accept_token(key))]
        subprotocol = message.get("subprotocol")
        if subprotocol is not None:
            offered = header_tokens(exchange, b"sec-websocket-protocol")
            if subprotocol.lower().encode("latin-1") not in offered:
                raise ValueError(f"ASGI: websocket.accept chose the subprotocol {subprotocol!r}"
                                 " that the client did not offer")
            headers.append((b"Sec-WebSocket-Protocol", subprotocol.encode("latin-1")))
        extensions = []
        offers = [token.decode("latin-1") for field, value in exchange.headers
                  if field == b"sec-websocket-extensions" for token in value.split(b",")]
        if settings.deflate and offers:
            deflate = PerMessageDeflate()
            agreed = server_extensions_handshake(offers, [deflate])
            if agreed is not None:
                headers.append((b"Sec-WebSocket-Extensions", agreed))
                extensions.append(deflate)
        taken = {name.lower() for name, _ in headers}
        headers += [(name, value) for name, value in response_headers(message.get("headers", ()))
                    if name.lower() not in taken]
        self.socket = WebSocketConnection(connection, settings, extensions)
        connection.switch_protocol(exchange, headers, self.socket)

    async def _send_denial_body(self, message: Message) -> None:
        exchange = self.exchange
        if not self.denial_status:
            raise RuntimeError("ASGI: websocket.http.response.body before its .start")
        if exchange.finished or self.socket is not None:
            raise RuntimeError("ASGI: websocket.http.response.body after the response")
        if exchange.connection.closing:
            raise ClientDisconnected("client disconnected")
        data = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        if not exchange.head_sent:
            exchange.send_head(self.denial_status, self.denial_headers,
                               length=None if more else len(data))
        exchange.write(data)
        if more:
            await exchange.drain()
        else:
            exchange.end()
            self._answered()
