"""Reading a backend's response for ``--proxy``: httptools' response parser, and the rules it
leaves to its caller.

httptools (llhttp, the parser of Node.js) parses the status line, the headers and the body
framing (Content-Length, chunked, none for 1xx, 204 and 304) about twenty times as fast as
h11, which is most of a proxied request's cost.  What it cannot know, this adds:

* the answer to a ``HEAD`` has no body whatever its Content-Length says (the parser never
  saw the request): the response is complete with its head (and its connection closed,
  in case a faulty backend sends a body all the same);
* a body with neither Content-Length nor chunked framing ends when the backend closes, and
  the parser has no call for "the connection ended": ``feed(b"")`` says so;
* interim answers (``100 Continue``, ``103 Early Hints``) are between the proxy and the
  backend and are skipped; a ``101`` ends the parsing, with the bytes after its head kept for
  the tunnel (``after_head``).
"""

from __future__ import annotations

import httptools

__all__ = ["BadResponse", "ResponseReader", "request_head"]


class BadResponse(Exception):
    """The backend's answer is not HTTP, or it broke off."""


def request_head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """An HTTP/1.1 request head.  The header names and values come from a request the server
    parsed (no CR or LF in them) or from this server itself."""
    return b"".join([method, b" ", target, b" HTTP/1.1\r\n",
                     *[b"%b: %b\r\n" % (name, value) for name, value in headers], b"\r\n"])


class ResponseReader:
    """One response, fed with what the backend sends (see the module)."""

    __slots__ = ("_framed", "_interim", "after_head", "body", "complete", "head_done",
                 "head_only", "headers", "keep_alive", "parser", "reason", "status")

    def __init__(self, head_only: bool) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.head_only = head_only
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        #: body data parsed and not yet taken by the caller
        self.body: list[bytes] = []
        #: after a 101: the bytes that followed its head (the upgraded protocol's)
        self.after_head: bytes | None = None
        self._framed = False
        self._interim = False

    def feed(self, data: bytes) -> None:
        """Parse ``data``; ``b""`` when the backend closed the connection."""
        if self.complete:
            return
        if not data:
            if self.head_done and not self._framed and not self.head_only:
                self.complete = True  # a body delimited by the end of the connection
                self.keep_alive = False
                return
            what = "the rest of its answer" if self.head_done else "an answer"
            raise BadResponse(f"the backend closed the connection without {what}")
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.after_head = data[upgrade.args[0]:]
            self.complete = True
        except httptools.HttpParserError as error:
            if not self.complete:  # bytes after a HEAD's head are no concern of this answer
                raise BadResponse(f"bad answer from the backend: {error}") from None

    # -- httptools callbacks
    def on_message_begin(self) -> None:
        self.reason = b""
        self.headers = []

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length" or (lowered == b"transfer-encoding"
                                            and b"chunked" in value.lower()):
            self._framed = True

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._interim = True
            self._framed = False
            return
        self.status = status
        self.head_done = True
        self.keep_alive = self.parser.should_keep_alive()
        if status in (204, 304) or status == 101:
            self._framed = True
        if self.head_only:
            # Stop parsing: a HEAD's answer has no body.  Its connection is not reused: a
            # backend that sends the body anyway would have it read as the next answer.
            self.complete = True
            self.keep_alive = False
            raise _HeadDone

    def on_body(self, data: bytes) -> None:
        self.body.append(data)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True


class _HeadDone(Exception):
    """Raised in a callback to stop the parser after the head of an answer to HEAD."""
