"""httptools' request parser, as the connection uses it.

httptools (llhttp) knows a fixed list of methods and stops at any other (``BREW``), yet
RFC 9110 9.1 leaves unknown methods to the application, which may answer 405 or 501.  The
connection then restarts the parser on the same bytes with a stand-in method
(``split_unknown_method`` finds the real one); when several pipelined requests came in one
read, ``end_of_requests`` finds where the one the parser stopped at begins, since httptools
reports no offsets.
"""

from __future__ import annotations

from typing import Any

import httptools

from dropins.web.httputil import is_header_name

__all__ = ["MAX_METHOD", "end_of_requests", "new_parser", "split_unknown_method"]

MAX_METHOD = 64  # longest method name accepted that httptools does not know


def new_parser(callbacks: Any) -> httptools.HttpRequestParser:
    """A request parser calling ``callbacks``' ``on_*`` methods."""
    parser = httptools.HttpRequestParser(callbacks)
    # Any version parses, so that check_request_head can answer 505 rather than 400, and
    # serve HTTP/1.2 as HTTP/1.1.
    parser.set_dangerous_leniencies(lenient_version=True)
    return parser


class _Counter:
    """Callbacks for a throwaway parser: count the requests it completes."""

    def __init__(self) -> None:
        self.completed = 0

    def on_message_complete(self) -> None:
        self.completed += 1


def _completed_in(data: bytes) -> int:
    counter = _Counter()
    try:
        new_parser(counter).feed_data(data)
    except httptools.HttpParserError:
        pass  # what follows the requests counted does not matter
    return counter.completed


def end_of_requests(data: bytes, count: int) -> int:
    """The offset in ``data`` just after its first ``count`` complete requests.

    ``data`` starts at a request's first byte and holds at least ``count`` complete requests.
    A galloping search over prefixes, each parsed afresh: the prefix doubles until it holds
    them, then a bisection narrows it down.  The cost follows the size of those requests, not
    of the read, so a read of thousands of pipelined unknown-method requests, each found
    this way behind the one before it, is parsed in linear time.
    """
    low, high = 0, 64
    while high < len(data) and _completed_in(data[:high]) < count:
        low, high = high, high * 2
    high = min(high, len(data))
    while low < high:
        middle = (low + high) // 2
        if _completed_in(data[:middle]) >= count:
            high = middle
        else:
            low = middle + 1
    return low


def split_unknown_method(data: bytes) -> tuple[bytes | None, bytes | None]:
    """Split a request that starts ``data`` with a method httptools does not know.

    Returns the method and what follows its space; ``(data, None)`` while the method may be
    incomplete (no space yet); ``(None, None)`` when it is no method: not a token, or longer
    than MAX_METHOD.
    """
    space = data.find(b" ", 0, MAX_METHOD + 1)
    method = data[:space] if space != -1 else data
    if not is_header_name(method) or (space == -1 and len(data) > MAX_METHOD):
        return None, None
    if space == -1:
        return data, None
    return method, data[space + 1:]
