"""Small HTTP helpers shared by the handlers: dates, status lines, header lookups.

Everything here is computed once and cached where a busy server would otherwise redo it for
every response (the ``Date`` header changes once a second; status lines never change).
"""

from __future__ import annotations

import time
from http import HTTPStatus

__all__ = ["HeaderList", "find_header", "http_date", "is_header_name", "parse_http_date",
           "status_line"]

#: Request headers as the parser gives them: (lower-cased name, raw value) pairs, in order.
HeaderList = list[tuple[bytes, bytes]]

_STATUS_LINES: dict[int, bytes] = {}
#: The characters of an HTTP token (RFC 9110, 5.6.2), which is what a header name must be.
_TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789"
                         b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_date_cache: tuple[int, bytes] = (0, b"")


def status_line(status: int) -> bytes:
    """``HTTP/1.1 200 OK\\r\\n`` for a status code (unknown codes get an empty reason)."""
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        line = f"HTTP/1.1 {status} {reason}\r\n".encode("latin-1")
        _STATUS_LINES[status] = line
    return line


_DAYS = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")
_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct",
           b"Nov", b"Dec")


def _format_date(timestamp: float) -> bytes:
    # Formatted by hand: email.utils.formatdate would cost 7 ms of imports at start-up, and
    # strftime follows the locale for day and month names.
    t = time.gmtime(timestamp)
    return b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min,
        t.tm_sec)


def http_date(timestamp: float | None = None) -> bytes:
    """An RFC 9110 date (``Sun, 06 Nov 1994 08:49:37 GMT``); the current one is cached."""
    global _date_cache
    if timestamp is not None:
        return _format_date(timestamp)
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, _format_date(now))
    return _date_cache[1]


def parse_http_date(value: bytes) -> float | None:
    """The POSIX timestamp of an HTTP date, or None when it does not parse (then it is ignored).

    All three formats of RFC 9110 are accepted (IMF-fixdate, RFC 850, asctime).
    """
    from email.utils import parsedate_to_datetime  # only requests with validators need it

    try:
        return parsedate_to_datetime(value.decode("latin-1")).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def find_header(headers: HeaderList, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower-case), or None."""
    for key, value in headers:
        if key == name:
            return value
    return None


def is_header_name(name: bytes) -> bool:
    """Whether ``name`` is a valid header name: a spaced or empty one would corrupt the head."""
    return bool(name) and all(byte in _TOKEN_CHARS for byte in name)
