"""Relaying one request to an HTTP server on a unix socket, streaming both bodies.

The client side is h11 (a real HTTP/1.1 implementation, so the backend's framing, chunked or
not, is parsed by a library and not by hand).  Why each rule:

* hop-by-hop headers (RFC 9110 7.6.1: ``Connection`` and the fields it names, ``Keep-Alive``,
  ``TE``, ``Transfer-Encoding``, ``Upgrade``...) are dropped both ways: they describe one
  connection, and each side frames its own;
* the request body is sent as it arrives and the response body as the backend writes it,
  each at the pace of the slower side, so a large upload or download costs a few buffers;
* ``X-Forwarded-For`` and ``X-Forwarded-Prefix`` tell the backend who asked and where it is
  mounted (it sees the path below the prefix);
* one connection per request (``Connection: close``): a personal server is small, and no
  pool means no stale connection to retry;
* the backend must be the process the caller expects: ``expected_uid`` is checked against
  the socket's peer credentials after connecting, which also closes the window between the
  caller's checks of the socket file and the connection (a socket swapped for a symlink to
  someone else's in between is refused);
* a backend that refuses, is not there, or breaks its answer before the head is 502; one
  that sends no head within ``timeout`` is 504; a break after the head aborts the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import Any

from dropins.web.exchange import BodyError, ClientDisconnected, Exchange

__all__ = ["relay_to_unix_socket"]

logger = logging.getLogger("dropins.web")

_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                         b"transfer-encoding", b"upgrade", b"proxy-authenticate",
                         b"proxy-authorization", b"http2-settings"})
_BLOCK = 64 * 1024
#: response headers every answer of this server carries already (sent once, not twice)
_OWN_HEADERS = frozenset({b"server", b"date"})


class BackendError(Exception):
    """The backend cannot be reached or gave no usable answer: ``status`` says which."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def end_to_end(headers: Any) -> list[tuple[bytes, bytes]]:
    """``headers`` without the hop-by-hop ones, including those ``Connection`` names."""
    named = {token.strip().lower() for name, value in headers if name.lower() == b"connection"
             for token in bytes(value).split(b",")}
    return [(bytes(name), bytes(value)) for name, value in headers
            if name.lower() not in _HOP_BY_HOP and name.lower() not in named]


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", raw)[1])


async def relay_to_unix_socket(exchange: Exchange, socket_path: str, target: bytes,
                               prefix: bytes, expected_uid: int, timeout: float,
                               drop: frozenset[bytes] = frozenset()) -> None:
    """Answer ``exchange`` with what the server on ``socket_path`` answers for ``target``.

    Request headers named in ``drop`` (lower case) are not relayed.
    """
    import h11

    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(socket_path),
                                                timeout)
    except (OSError, TimeoutError) as error:
        logger.warning("%s: no personal server answers: %s", socket_path, error)
        exchange.respond_error(502, "The personal server does not answer")
        return
    try:
        uid = _peer_uid(writer)
        if uid is not None and uid != expected_uid:
            logger.warning("%s: refused: the server on it runs as uid %d, not %d", socket_path,
                           uid, expected_uid)
            exchange.respond_error(404)
            return
        client = h11.Connection(h11.CLIENT)
        await _relay(exchange, client, reader, writer, target, prefix, timeout, drop)
    except BackendError as error:
        logger.warning("%s: %s", socket_path, error)
        if exchange.head_sent:
            exchange.abort()
        elif not exchange.finished:
            exchange.respond_error(error.status, "The personal server gave no answer")
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _relay(exchange: Exchange, client: Any, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, target: bytes, prefix: bytes,
                 timeout: float, drop: frozenset[bytes]) -> None:
    import h11

    replaced = drop | {b"x-forwarded-for", b"x-forwarded-prefix"}
    headers = [(name, value) for name, value in end_to_end(exchange.headers)
               if name not in replaced]
    if exchange.body is not None and exchange.header(b"content-length") is None:
        headers.append((b"transfer-encoding", b"chunked"))
    forwarded_for = exchange.header(b"x-forwarded-for")
    client_address = exchange.connection.client[0].encode()
    headers += [(b"x-forwarded-for", forwarded_for + b", " + client_address
                 if forwarded_for else client_address),
                (b"x-forwarded-prefix", prefix), (b"connection", b"close")]
    if exchange.header(b"host") is None:
        headers.append((b"host", b"localhost"))
    writer.write(client.send(h11.Request(method=exchange.method, target=target,
                                         headers=headers)))
    sender = asyncio.ensure_future(_send_body(exchange, client, writer))
    try:
        await _receive(exchange, client, reader, timeout, sender)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


async def _send_body(exchange: Exchange, client: Any, writer: asyncio.StreamWriter) -> None:
    import h11

    body = exchange.body
    try:
        if body is not None:
            while chunk := await body.read_chunk():
                writer.write(client.send(h11.Data(data=chunk)))
                await writer.drain()
        writer.write(client.send(h11.EndOfMessage()))
        await writer.drain()
    except (ClientDisconnected, BodyError):
        # The body will not be complete: end the backend connection, so that the reading
        # side stops waiting for an answer and raises this (see _sender_failure).
        writer.transport.abort()
        raise
    except OSError:
        pass  # the backend stopped reading: its answer (or its absence) tells the rest


def _sender_failure(sender: asyncio.Future[None]) -> None:
    """Raise what ended the request body (BodyError: answered 413/408 by the connection)."""
    if sender.done() and not sender.cancelled() and sender.exception() is not None:
        raise sender.exception()  # type: ignore[misc]


async def _next_event(client: Any, reader: asyncio.StreamReader, timeout: float | None,
                      sender: asyncio.Future[None]) -> Any:
    import h11

    while True:
        try:
            event = client.next_event()
        except h11.RemoteProtocolError as error:
            _sender_failure(sender)
            raise BackendError(502, f"bad answer from the personal server: {error}")
        if event is not h11.NEED_DATA:
            return event
        try:
            data = await asyncio.wait_for(reader.read(_BLOCK), timeout)
        except TimeoutError:
            raise BackendError(504, "the personal server sent no answer in time")
        except OSError as error:
            _sender_failure(sender)
            raise BackendError(502, f"connection to the personal server lost: {error}")
        client.receive_data(data)


async def _receive(exchange: Exchange, client: Any, reader: asyncio.StreamReader,
                   timeout: float, sender: asyncio.Future[None]) -> None:
    import h11

    while True:
        event = await _next_event(client, reader, timeout, sender)
        if isinstance(event, h11.InformationalResponse):
            continue  # 100 Continue is between us and the backend
        if isinstance(event, h11.Response):
            break
        raise BackendError(502, "the personal server closed without an answer")
    headers = [(name, value) for name, value in end_to_end(event.headers)
               if name.lower() not in _OWN_HEADERS]
    exchange.send_head(event.status_code, headers, reason=event.reason or None)
    try:
        while True:
            event = await _next_event(client, reader, timeout, sender)
            if isinstance(event, h11.Data):
                exchange.write(bytes(event.data))
                await exchange.drain()
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise BackendError(502, "the personal server's answer broke off")
    except ClientDisconnected:
        exchange.abort()
        return
    exchange.end()
