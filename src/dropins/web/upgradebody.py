"""The body of an upgrade request whose upgrade is ignored.

``curl --http2`` sends ``POST`` with ``Upgrade: h2c``; upgrades are not offered, so the
request is answered over HTTP/1.1 and its body must reach the handler.  httptools stops
parsing at the end of such a head, so a fresh parser, told the body's framing by a made-up
head, parses the body.  The connection closes after the answer, so nothing after that body
is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httptools

if TYPE_CHECKING:
    from dropins.web.exchange import Exchange
    from dropins.web.reading import RequestReader

__all__ = ["upgrade_body_parser"]


def upgrade_body_parser(reader: RequestReader, exchange: Exchange) -> httptools.HttpRequestParser:
    """A parser to feed the bytes after ``exchange``'s head: it gives ``reader`` the body."""
    framing = (b"Transfer-Encoding: chunked" if exchange.header(b"transfer-encoding")
               else b"Content-Length: " + (exchange.header(b"content-length") or b"0"))
    parser = httptools.HttpRequestParser(_UpgradeBodyCallbacks(reader))
    parser.feed_data(b"POST / HTTP/1.1\r\n" + framing + b"\r\n\r\n")
    return parser


class _UpgradeBodyCallbacks:
    """The parser callbacks for the body of an ignored upgrade: body data and its end only."""

    def __init__(self, reader: RequestReader) -> None:
        self.reader = reader
        self.done = False

    def on_body(self, data: bytes) -> None:
        if not self.done:
            self.reader.on_body(data)

    def on_message_complete(self) -> None:
        if not self.done:
            self.done = True
            self.reader.on_message_complete()
            self.reader.stop()  # the connection closes after the answer
