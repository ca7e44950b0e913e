"""``--proxy PREFIX=URL`` and ``--static PREFIX=DIR``: the prefix routes of ``dropins web``.

``ReverseProxy`` wraps the handler of the files or the application: a request whose path is
PREFIX or lies below it (``/api`` takes ``/api`` and ``/api/x``, not ``/apix``) goes to the
route of the longest such prefix, anything else to the handler it wraps.  A route is a
backend (``--proxy``) or a mounted handler such as a folder (``--static``), in one table, so
that the longest prefix wins whatever its kind: ``--proxy /api=...`` beside
``--static /api/docs=docs`` serves ``/api/docs/x`` from the folder.  A mounted handler sees the
path below its prefix; ``/docs`` alone is redirected to ``/docs/``, the URL its relative links
need.  The backend sees
the URL's path followed by what comes after the prefix (``--proxy /api=http://h:8000/v1``
sends ``/api/x?q=1`` as ``/v1/x?q=1``), as nginx's ``proxy_pass`` with a URI does.

The backend side is httptools' response parser (``proxyresponse.py``) over pooled keep-alive
connections (``proxypool.py``).  Why each rule:

* a path with ``.`` or ``..`` segments is refused (400), since the prefix it was routed by
  says nothing about where it leads once a backend resolves them;
* hop-by-hop headers (``Connection`` and the fields it names, ``Keep-Alive``, ``TE``,
  ``Transfer-Encoding``, ``Upgrade``, ``Proxy-*``) are dropped both ways: each side frames
  its own connection;
* ``X-Forwarded-For`` and ``Forwarded`` get the peer's address appended (a backend trusting
  this server reads the right-most entry); ``X-Forwarded-Proto``, ``X-Forwarded-Host`` and
  ``X-Forwarded-Prefix`` are replaced by what this server knows, since a client could have
  written its own; ``Host`` is passed on as the client sent it;
* with the front server's ``--auth``, ``Authorization`` (its visitors' passwords) is not sent;
* bodies are streamed both ways at the pace of the slower side;
* an upgrade request (a WebSocket) is passed on with its ``Upgrade``; a 101 from the backend
  turns the client's connection into a tunnel to that backend connection (``proxytunnel.py``);
* the backend refusing, closing, or answering what is not HTTP: 502; no connection, no
  answer, or no progress sending it the request, within ``timeout``: 504 (nginx's
  ``proxy_connect_timeout``, ``proxy_read_timeout`` and ``proxy_send_timeout`` in one);
  a break after the response head aborts the client's connection;
* a pooled connection the backend closed just as it was taken is retried once on a new
  connection, for a request without a body (which was not consumed).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
from typing import Any

from dropins.web.exchange import BodyError, ClientDisconnected, Exchange
from dropins.web.paths import percent_decode
from dropins.web.proxypool import Backend, BackendConnection, ConnectionPool, parse_backend
from dropins.web.proxyresponse import BadResponse, ResponseReader, request_head
from dropins.web.relay import BackendError, end_to_end

__all__ = ["ReverseProxy", "parse_mount", "parse_proxy"]

logger = logging.getLogger("dropins.web")

_PREFIX = re.compile(r"/|(/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+/?")
_BLOCK = 64 * 1024
_OWN_HEADERS = frozenset({b"server", b"date"})
_REPLACED = frozenset({b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-prefix"})


def parse_proxy(text: str) -> tuple[bytes, Backend]:
    """``PREFIX=URL`` as (prefix without trailing slash, backend); ValueError if malformed."""
    prefix, sep, url = text.partition("=")
    if not sep or not url:
        raise ValueError(f"{text!r} is not PREFIX=URL, e.g. /api=http://127.0.0.1:8000")
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"{text!r}: the prefix must be a path such as /api (starting with "
                         "'/', no spaces, '%', '?' or '#')")
    return (prefix.rstrip("/") or "/").encode("ascii"), parse_backend(url)


class _Route:
    __slots__ = ("backend", "pool", "prefix")

    def __init__(self, prefix: bytes, backend: Backend, timeout: float) -> None:
        self.prefix = prefix
        self.backend = backend
        self.pool = ConnectionPool(backend, timeout)

    def target(self, exchange: Exchange) -> bytes:
        rest = exchange.path if self.prefix == b"/" else exchange.path[len(self.prefix):]
        path = self.backend.path + rest or b"/"
        return path + b"?" + exchange.query if exchange.query else path


class _Mount:
    """A handler mounted under a prefix (``--static``): it sees the path below the prefix."""

    __slots__ = ("handler", "prefix")

    def __init__(self, prefix: bytes, handler: Any) -> None:
        self.prefix = prefix
        self.handler = handler

    def __call__(self, exchange: Exchange) -> object:
        rest = exchange.path[len(self.prefix):]
        if not rest:
            location = self.prefix + b"/" + (b"?" + exchange.query if exchange.query else b"")
            exchange.respond(301, [(b"Location", location),
                                   (b"Content-Type", b"text/plain; charset=utf-8")],
                             b"Moved to " + location + b"\n")
            return None
        exchange.path = rest
        return self.handler(exchange)


def parse_mount(text: str) -> tuple[bytes, str]:
    """``PREFIX=DIR`` as (prefix without trailing slash, folder); ValueError if malformed."""
    prefix, sep, folder = text.partition("=")
    if not sep or not folder:
        raise ValueError(f"{text!r} is not PREFIX=DIR, e.g. /assets=site/assets")
    if not _PREFIX.fullmatch(prefix) or prefix.rstrip("/") == "":
        raise ValueError(f"{text!r}: the prefix must be a path below / such as /assets "
                         "(starting with '/', no spaces, '%', '?' or '#'; the folder at / is "
                         "--path)")
    return prefix.rstrip("/").encode("ascii"), folder


class ReverseProxy:
    """The handler wrapper (see the module docstring)."""

    def __init__(self, fallback: Any, proxies: list[str], timeout: float = 60.0, *,
                 keep_credentials: bool = True,
                 mounts: list[tuple[bytes, Any]] | None = None) -> None:
        self.fallback = fallback
        self.allow = getattr(fallback, "allow", None)
        self.timeout = timeout
        self.backends = [_Route(*parse_proxy(text), timeout) for text in proxies]
        routes: list[_Route | _Mount] = [*self.backends]
        routes += [_Mount(prefix, handler) for prefix, handler in mounts or ()]
        self.routes = sorted(routes, key=lambda route: len(route.prefix), reverse=True)
        self._not_sent = frozenset() if keep_credentials else frozenset({b"authorization"})
        import dropins.web.proxytunnel  # noqa: F401 - imported now, before --uid drops privileges

    def route(self, path: bytes) -> _Route | _Mount | None:
        """The route of the longest prefix ``path`` lies under, or None."""
        for route in self.routes:
            prefix = route.prefix
            if prefix == b"/" or path == prefix or path.startswith(prefix + b"/"):
                return route
        return None

    def __call__(self, exchange: Exchange) -> object:
        route = self.route(exchange.path)
        if route is None:
            return self.fallback(exchange)
        if isinstance(route, _Mount):
            return route(exchange)
        if _climbs(exchange.path):
            # /api/../admin would reach the backend's /v1/../admin: out of the URL's path
            # for a backend that resolves it.  Like files, such paths are refused.
            exchange.respond_error(400, "A path with '.' or '..' segments cannot be proxied")
            return None
        return self._forward(exchange, route)

    def close(self) -> None:
        for route in self.backends:
            route.pool.close()

    async def _forward(self, exchange: Exchange, route: _Route) -> None:
        upgrade = _upgrade_requested(exchange)
        request = request_head(exchange.method, route.target(exchange),
                               self._headers(exchange, route, upgrade))
        fresh = False
        while True:
            try:
                connection = await route.pool.acquire(fresh)
            except (OSError, TimeoutError) as error:
                timed_out = isinstance(error, TimeoutError)
                logger.warning("--proxy %s: cannot connect: %s", route.backend.text,
                               "no answer in time" if timed_out else error)
                exchange.respond_error(504 if timed_out else 502,
                                       "The backend does not answer" if timed_out
                                       else "The backend refuses connections")
                return
            call = _BackendCall(exchange, connection, self.timeout)
            try:
                reusable = await call.run(request, upgrade)
            except BackendError as error:
                connection.close()
                if call.client_left:
                    logger.debug("--proxy %s: the client left", route.backend.text)
                    exchange.abort()
                    return
                if (connection.reused and not call.answered and exchange.body is None
                        and error.status == 502):
                    fresh = True  # the backend had closed it: once more, on a new one
                    continue
                logger.warning("--proxy %s: %s", route.backend.text, error)
                if exchange.head_sent:
                    exchange.abort()
                elif not exchange.finished:
                    exchange.respond_error(error.status, "The backend gave no answer"
                                           if error.status == 504 else "Bad answer from the "
                                           "backend")
                return
            except BaseException:
                connection.close()
                raise
            if reusable:
                route.pool.release(connection)
            elif not call.upgraded:
                connection.close()
            return

    def _headers(self, exchange: Exchange, route: _Route,
                 upgrade: bytes | None) -> list[tuple[bytes, bytes]]:
        dropped = self._not_sent | _REPLACED
        headers = [(name, value) for name, value in end_to_end(exchange.headers)
                   if name.lower() not in dropped]
        if exchange.body is not None and exchange.header(b"content-length") is None:
            headers.append((b"transfer-encoding", b"chunked"))
        if upgrade is not None:
            headers += [(b"connection", b"upgrade"), (b"upgrade", upgrade)]
        host = exchange.header(b"host")
        if host is None:
            host = route.backend.authority
            headers.append((b"host", host))
        peer = exchange.connection.client[0]
        scheme = exchange.scheme.encode("ascii")
        _append(headers, b"x-forwarded-for", peer.encode("ascii") if peer else b"unknown")
        _append(headers, b"forwarded", b"for=%b;proto=%b;host=%b" % (
            _forwarded_node(peer), scheme, _quoted(host)))
        headers += [(b"x-forwarded-proto", scheme), (b"x-forwarded-host", host)]
        if route.prefix != b"/":
            headers.append((b"x-forwarded-prefix", route.prefix))
        return headers


def _climbs(path: bytes) -> bool:
    """Whether ``path`` has a ``.`` or ``..`` segment, escaped (``%2e%2e``) or not, or one
    that decodes to such segments (``..%2f``)."""
    if b"." not in path and b"%" not in path:
        return False
    return any(segment in (b".", b"..") for segment in percent_decode(path).split(b"/"))


def _upgrade_requested(exchange: Exchange) -> bytes | None:
    """The ``Upgrade`` of a request that asks for one (``Connection: upgrade``), or None."""
    upgrade = exchange.header(b"upgrade")
    if upgrade is None:
        return None
    tokens = {token.strip().lower() for name, value in exchange.headers
              if name.lower() == b"connection" for token in bytes(value).split(b",")}
    return upgrade if b"upgrade" in tokens else None


def _append(headers: list[tuple[bytes, bytes]], name: bytes, value: bytes) -> None:
    """Append ``value`` to the (first) header ``name``, or add the header."""
    for index, (present, old) in enumerate(headers):
        if present.lower() == name:
            headers[index] = (present, old + b", " + value)
            return
    headers.append((name, value))


def _forwarded_node(peer: str) -> bytes:
    """The ``for=`` of RFC 7239: an IPv4 address as it is, an IPv6 one quoted in brackets."""
    if not peer:
        return b"unknown"
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return _quoted(peer.encode("ascii", "replace"))
    if address.version == 6:
        return b'"[%b]"' % peer.encode("ascii")
    return peer.encode("ascii")


def _quoted(value: bytes) -> bytes:
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


class _BackendCall:
    """One request sent on ``connection`` and its answer relayed to ``exchange``."""

    def __init__(self, exchange: Exchange, connection: BackendConnection,
                 timeout: float) -> None:
        self.exchange = exchange
        self.connection = connection
        self.timeout = timeout
        self.answered = False   # some of the backend's answer arrived
        self.upgraded = False   # the connection became a tunnel
        self.client_left = False
        self._progress = 0.0    # when the request body last moved

    async def run(self, request: bytes, upgrade: bytes | None) -> bool:
        """Relay the exchange; return whether the connection may carry another request.

        A client that leaves meanwhile (its connection lost or half-closed, as nginx sees
        it) ends the backend connection at once, so that the backend is told too instead
        of working on for nobody until its answer or the timeout.
        """
        left = self.exchange.connection.left_future()
        left.add_done_callback(self._client_left)
        try:
            return await self._relay(request, upgrade)
        finally:
            left.remove_done_callback(self._client_left)

    def _client_left(self, _: object) -> None:
        self.client_left = True
        self.connection.close()

    async def _relay(self, request: bytes, upgrade: bytes | None) -> bool:
        writer = self.connection.writer
        reader = ResponseReader(head_only=self.exchange.head_only)
        if self.exchange.body is None:
            # No body to stream: the request leaves in one write, and no task is needed.
            writer.write(request)
            sender: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            sender.set_result(None)
            return await self._receive(reader, sender, upgrade)
        writer.write(request)
        sender = asyncio.ensure_future(self._send_body())
        try:
            return await self._receive(reader, sender, upgrade)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    async def _send_body(self) -> None:
        exchange, writer = self.exchange, self.connection.writer
        body = exchange.body
        assert body is not None
        chunked = exchange.header(b"content-length") is None  # sent chunked (_headers)
        loop = asyncio.get_running_loop()
        self._progress = loop.time()
        try:
            while chunk := await body.read_chunk():
                writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                async with asyncio.timeout(self.timeout):
                    await writer.drain()
                self._progress = loop.time()
            if chunked:
                writer.write(b"0\r\n\r\n")
            async with asyncio.timeout(self.timeout):
                await writer.drain()
        except TimeoutError:
            self.connection.close()
            raise BackendError(504, "the backend took none of the request body in time")
        except (ClientDisconnected, BodyError):
            # The body will not be complete: end the backend connection, so that the reading
            # side stops waiting for an answer and raises this (see _sender_failure).
            self.connection.close()
            raise
        except OSError:
            pass  # the backend stopped reading: its answer (or its absence) tells the rest

    async def _read(self, reader: ResponseReader, sender: asyncio.Future[None]) -> None:
        """Feed ``reader`` the backend's next bytes."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with asyncio.timeout(self.timeout):  # no task per read, as wait_for makes
                    data = await self.connection.reader.read(_BLOCK)
            except TimeoutError:
                if not sender.done() and loop.time() - self._progress < self.timeout:
                    continue  # still sending the request: the wait for its answer has not begun
                _sender_failure(sender)
                raise BackendError(504, "the backend sent no answer in time")
            except OSError as error:
                _sender_failure(sender)
                raise BackendError(502, f"connection to the backend lost: {error}")
            if data:
                self.answered = True
            else:
                _sender_failure(sender)
            try:
                reader.feed(data)
            except BadResponse as error:
                _sender_failure(sender)
                raise BackendError(502, str(error))
            return

    async def _receive(self, reader: ResponseReader, sender: asyncio.Future[None],
                       upgrade: bytes | None) -> bool:
        exchange = self.exchange
        while not reader.head_done:
            await self._read(reader, sender)
        if reader.status == 101:
            if upgrade is None:
                raise BackendError(502, "the backend switched protocols unasked")
            self._switch(reader)
            return False
        headers = [(name, value) for name, value in end_to_end(reader.headers)
                   if name.lower() not in _OWN_HEADERS]
        exchange.send_head(reader.status, headers, reason=reader.reason or None)
        try:
            while True:
                for data in reader.body:
                    exchange.write(data)
                reader.body.clear()
                if reader.complete:
                    break
                await exchange.drain()
                await self._read(reader, sender)
        except ClientDisconnected:
            exchange.abort()
            return False
        exchange.end()
        # Answered before the whole request was sent (an early 413, say), that connection is
        # in the middle of a request and cannot carry another.
        sent = sender.done() and not sender.cancelled() and sender.exception() is None
        return reader.keep_alive and sent

    def _switch(self, reader: ResponseReader) -> None:
        """The backend accepted the upgrade: tunnel the client's connection to it."""
        from dropins.web.proxytunnel import Tunnel

        upgrade = next((value for name, value in reader.headers
                        if name.lower() == b"upgrade"), b"websocket")
        headers = [(name, value) for name, value in end_to_end(reader.headers)
                   if name.lower() not in _OWN_HEADERS]
        headers += [(b"Upgrade", upgrade), (b"Connection", b"Upgrade")]
        http = self.exchange.connection
        self.upgraded = True
        http.switch_protocol(self.exchange, headers,
                             Tunnel(http, self.connection, reader.after_head or b""))


def _sender_failure(sender: asyncio.Future[None]) -> None:
    """Raise what ended the request body (BodyError: answered 413/408 by the connection)."""
    if sender.done() and not sender.cancelled() and sender.exception() is not None:
        raise sender.exception()  # type: ignore[misc]
