"""The input side of one HTTP/1.1 connection: bytes in, requests (``Exchange``) out.

httptools' parser calls back for each part of a request; the reader builds the exchange
from them and hands it to the connection, which answers requests one at a time
(``protocol.py``).  What the reader adds to the parser:

* the limits on the request head: target length (414), head size and header count (431),
  also for one endless line (header, trailer or chunk extension), which the parser never
  hands over while it grows;
* methods httptools does not know (``BREW``), passed on to the handler (``parsing.py``),
  also behind a request that spans reads, whose bytes are kept for that (``_save``);
* the body of an upgrade request, whose upgrade is ignored (``upgradebody.py``);
* once the connection is to read no more requests (after a refusal or an upgrade request),
  reading goes on and the bytes are dropped, so that a FIN or an RST is still noticed; after
  an upgrade request the first of them are kept (``after_upgrade``) for a handler that accepts
  the upgrade (a WebSocket) and takes the connection over.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httptools

from dropins.web.exchange import BodyError, Exchange, RequestBody
from dropins.web.httputil import find_header
from dropins.web.parsing import end_of_requests, new_parser, split_unknown_method
from dropins.web.requesthead import check_request_head
from dropins.web.upgradebody import upgrade_body_parser

if TYPE_CHECKING:
    from dropins.web.protocol import HttpConnection

__all__ = ["RequestReader"]

logger = logging.getLogger("dropins.web")

BODY_HIGH_WATER = 256 * 1024  # body bytes buffered before reading pauses
_STAND_IN_METHOD = b"GET "  # what httptools is given instead of a method it does not know
#: Bytes of a request kept from earlier reads, beyond the head limits, to find an unknown
#: method behind it in a later read; past that a request with an unknown method in the read
#: that ends its body gets 400.
SAVED_BODY = 64 * 1024
#: Bytes kept that a client sent after an upgrade request's head, before it was answered.
AFTER_UPGRADE = 64 * 1024


class RequestReader:
    """Parses what one client sends; ``connection`` is told of each request head."""

    def __init__(self, connection: HttpConnection) -> None:
        self.connection = connection
        self.limits = connection.limits
        self.parser = new_parser(self)
        #: the request being received (head parsed, body not complete), if any
        self.parsing: Exchange | None = None
        self.in_message = False     # between the first byte of a request and its end
        self.ignoring = False       # reading no more requests: bytes are dropped
        self._in_head = False
        self._messages_begun = 0
        self._method_prefix = b""   # the first bytes of a method, kept for the next read
        self._unknown_method: bytes | None = None
        self._url_parts: list[bytes] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self._fields = 0            # header and trailer fields of the request so far
        self._upgrade_body: RequestBody | None = None
        self._progress = False      # whether the read being parsed advanced a request
        self._stalled = 0           # bytes read since an open request last advanced
        self._refused_status = 0    # the status a parser callback refused the request with
        self._ignored = 0           # bytes dropped since input is ignored
        #: bytes after the head of an upgrade request without a body, for a protocol that
        #: takes the connection over; None for other requests, and once more came than are
        #: kept (AFTER_UPGRADE)
        self.after_upgrade: bytearray | None = None
        # What was fed since the start of a request, while reads end inside requests (None
        # once it outgrew its cap); and how many requests had begun before that start.
        self._since_start: list[bytes] | None = []
        self._saved_size = 0
        self._begun_at_start = 0

    def feed(self, data: bytes) -> None:
        """Parse one read."""
        if self.ignoring:
            self._discard(data)
            return
        if self._method_prefix:
            data, self._method_prefix = self._method_prefix + data, b""
        # A loop, not recursion: each request with an unknown method restarts the parser on
        # the rest of the read, and a read may hold thousands of them.
        while data and not self.ignoring:
            data = self._feed(data)

    def stop(self) -> None:
        """Read no more requests: the connection closes after those already read.  Reading
        goes on rather than pausing, so that a FIN or an RST is still noticed (an application
        waiting on its client learns that it left; no socket lingers in CLOSE_WAIT)."""
        self.ignoring = True
        self.connection.update_reading()

    def refuse(self, status: int) -> tuple[bytes, bytes, str]:
        """Stop reading because of a refused request; fail the body being received, and
        return what was read of the request line (``-`` for what is missing) for the access
        log line of the refusal."""
        self.stop()
        parsing, self.parsing = self.parsing, None
        if parsing is not None:
            parsing.end_body_early(BodyError(status, "request body incomplete"))
        if not self._in_head or not self._url_parts:
            return self._unknown_method or b"-", b"-", "1.1"
        method = self._unknown_method or self.parser.get_method()
        version = self.parser.get_http_version() if self._headers else "1.1"
        return method, b"".join(self._url_parts), version

    def _discard(self, data: bytes) -> None:
        """Drop bytes read after the last request; a client that sends more than a request
        body's worth of them is not going to read its answer: abort."""
        self._ignored += len(data)
        after = self.after_upgrade
        if after is not None:
            after += data
            if len(after) > AFTER_UPGRADE:
                self.after_upgrade = None
        if self._ignored > self.limits.max_body_size + self.limits.max_head_size:
            logger.debug("disconnecting %s: it sent %d bytes after its last request",
                         self.connection.client[0], self._ignored)
            self.connection.abort()

    def _feed(self, data: bytes) -> bytes:
        """Parse ``data``; return what is left to parse after the parser was restarted for a
        request with an unknown method (b"" when all of it was taken)."""
        at_start = not self.in_message
        begun = self._messages_begun
        if at_start:
            self._since_start, self._saved_size, self._begun_at_start = [], 0, begun
        self._progress = False
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as error:
            return self._parser_stopped(error, data, at_start, begun)
        if self.in_message:
            self._save(data)
        self._stalled = 0 if self._progress else self._stalled + len(data)
        if self.in_message and self._stalled > self.limits.max_head_size + \
                self.limits.max_target_size:
            # httptools hands over a header (or trailer) only once it is complete, and a chunk
            # extension never, so the limits in on_url/on_header cannot stop one endless
            # line: count the reads in which an open request made no progress.  A read in
            # which a request began does not count, since most of it may be the body of the
            # previous request (which must not make this one a 431).
            self.connection.reject(431, ValueError("request head or trailer too large"))
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
        if self.ignoring:
            return b""  # it stopped after a request that is the last one read
        if isinstance(error, httptools.HttpParserInvalidMethodError):
            if not at_start:
                # The read began inside a request: where the one with the unknown method
                # starts is found in the bytes since that request's start.
                if self._since_start is None:
                    self.connection.reject(400, error)
                    return b""
                data = b"".join(self._since_start) + data
                begun = self._begun_at_start
            before = self._messages_begun - begun - 1  # complete requests before it
            return self._restart_for_unknown_method(
                data[end_of_requests(data, before):] if before else data)
        if isinstance(error, httptools.HttpParserUpgrade):
            # Protocol upgrades (WebSocket, h2c) are not offered: the upgrade request itself
            # was told to close (on_headers_complete); it is answered over HTTP/1.1 and what
            # follows it (after its body, if it has one) is ignored.
            body, exchange = self._upgrade_body, self.parsing
            if body is None or exchange is None:
                self.stop()
                self.after_upgrade = bytearray()
                self._discard(data[error.args[0]:])
                return b""
            self._upgrade_body = None
            self.parser = upgrade_body_parser(self, exchange)
            return data[error.args[0]:]
        status, self._refused_status = self._refused_status or 400, 0
        self.connection.reject(status, error)
        return b""

    def _save(self, data: bytes) -> None:
        """Keep a read that ended inside a request (see ``_parser_stopped``), within a cap:
        the head limits plus SAVED_BODY bytes of body."""
        if self._since_start is None:
            return
        self._saved_size += len(data)
        if self._saved_size > self.limits.max_head_size + self.limits.max_target_size + \
                SAVED_BODY:
            self._since_start = None
        else:
            self._since_start.append(data)

    def _restart_parser(self) -> None:
        self.parser = new_parser(self)
        self.in_message = False
        self._in_head = False

    def _restart_for_unknown_method(self, data: bytes) -> bytes:
        """A request that starts ``data`` has a method httptools does not know (``BREW``):
        parse it with a stand-in method and give handlers the real one, so that applications
        can answer 405 or 501 themselves, as RFC 9110 9.1 leaves to them."""
        method, rest = split_unknown_method(data)
        if method is None:
            self.connection.reject(400, ValueError("invalid request method"))
            return b""
        self._restart_parser()
        if rest is None:
            self._method_prefix = data  # the method's first bytes: wait for the rest
            return b""
        self._unknown_method = method
        return _STAND_IN_METHOD + rest

    # -- httptools callbacks
    def on_message_begin(self) -> None:
        self._messages_begun += 1
        self.in_message = True
        self._in_head = True
        self._progress = True
        self._url_parts = []
        self._headers = []
        self._head_size = 0
        self._fields = 0
        self.connection.request_begun()

    def on_url(self, fragment: bytes) -> None:
        self._head_size += len(fragment)
        if self._head_size > self.limits.max_target_size:
            self._refuse(414)
        self._url_parts.append(fragment)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        self._fields += 1
        if self._head_size > self.limits.max_head_size or \
                self._fields > self.limits.max_headers:
            self._refuse(431)
        if self._in_head:
            self._headers.append((name.lower(), value))
        # Otherwise it is a trailer field of a chunked body: counted against the limits but
        # dropped.  It came after the head any proxy checked, so taking it as a header would
        # let a client smuggle in ``Host`` or an ``Authorization`` the proxy never saw.

    def _refuse(self, status: int) -> None:
        """Stop the parser from a callback; the status is kept here, since the exception
        httptools raises instead of ours carries it only as its ``__context__``."""
        self._refused_status = status
        raise _Refused(status)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._progress = True
        connection = self.connection
        parser = self.parser
        method = self._unknown_method or parser.get_method()
        self._unknown_method = None
        target = b"".join(self._url_parts)
        # The exchange gets the list for its own: the reader never touches it again.
        head_fields, self._headers = self._headers, []
        verdict = check_request_head(method, target, parser.get_http_version(), head_fields)
        headers = verdict.headers
        expect = find_header(headers, b"expect")
        length = find_header(headers, b"content-length")
        chunked = find_header(headers, b"transfer-encoding") is not None
        has_body = chunked or length not in (None, b"0")
        body = RequestBody(connection, expect is not None and expect.lower() == b"100-continue"
                           and has_body) if has_body else None
        exchange = Exchange(connection, method, target, verdict.version, headers,
                            # An upgrade request (WebSocket, h2c) is answered over HTTP/1.1 and
                            # the connection closed: decide that now, because a static answer
                            # is sent before the parser reports the upgrade.
                            parser.should_keep_alive() and not connection.server.closing
                            and not parser.should_upgrade(), body)
        if verdict.status:
            exchange.error_status = verdict.status
        elif expect is not None and expect.lower() != b"100-continue":
            exchange.error_status = 417
        elif length is not None and length.isdigit() and int(length) > self.limits.max_body_size:
            exchange.error_status = 413
        if exchange.error_status >= 400:
            exchange.keep_alive = False
            self.stop()
        elif body is not None and parser.should_upgrade():
            self._upgrade_body = body  # httptools skips it: see _parser_stopped
        self.parsing = exchange
        connection.request_parsed(exchange)

    def on_body(self, data: bytes) -> None:
        self._progress = True
        exchange = self.parsing
        if exchange is None or exchange.body is None:
            return
        exchange.body.feed(data)
        if exchange.body.received > self.limits.max_body_size:
            # Answered by the server itself if no handler has it yet.
            exchange.error_status = 413
            exchange.end_body_early(BodyError(413, "request body too large"))
            self.stop()
        elif exchange.body.buffered > BODY_HIGH_WATER:
            self.connection.update_reading()

    def on_message_complete(self) -> None:
        if self._upgrade_body is not None:
            return  # httptools skipped the body of an upgrade request; it is still to come
        self._progress = True
        self.in_message = False
        exchange, self.parsing = self.parsing, None
        if exchange is not None and exchange.body is not None:
            exchange.body.finish()
        self.connection.update_reading()


class _Refused(Exception):
    """Raised inside a parser callback to refuse a request with an HTTP status."""
