"""The access log: one line per response in the combined log format, on ``dropins.web.access``.

``127.0.0.1 - alice [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 2326 "referer" "agent"``

Client-supplied text (request line, referer, user agent, user name) is escaped the way Apache
does it - quotes and backslashes get a backslash, control and non-ASCII bytes become ``\\xhh`` -
so a request cannot forge extra log lines or break a log parser.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dropins.web.exchange import Exchange

__all__ = ["access_logger", "combined_line", "escape_log_text", "log_access"]

access_logger = logging.getLogger("dropins.web.access")

_UNSAFE = re.compile(rb'[^\x20-\x7e]|["\\]')
_time_cache: tuple[int, str] = (0, "")


def _escape_byte(match: re.Match[bytes]) -> bytes:
    byte = match.group()
    if byte in (b'"', b"\\"):
        return b"\\" + byte
    return b"\\x%02x" % byte[0]


def escape_log_text(value: bytes | str | None) -> str:
    """Client text made safe for one log line; None and empty become ``-``."""
    if not value:
        return "-"
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    if _UNSAFE.search(raw) is None:
        return raw.decode("ascii")
    return _UNSAFE.sub(_escape_byte, raw).decode("ascii")


def _log_time() -> str:
    global _time_cache
    now = int(time.time())
    if _time_cache[0] != now:
        _time_cache = (now, time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)))
    return _time_cache[1]


def combined_line(host: str, user: str | None, method: bytes, target: bytes, version: str,
                  status: int, size: int, referer: bytes | None, agent: bytes | None) -> str:
    """One line of the combined log format (``size`` 0 is written ``-``, as Apache does)."""
    request = escape_log_text(b"%s %s HTTP/%s" % (method, target, version.encode("ascii")))
    return (f'{host or "-"} - {escape_log_text(user)} [{_log_time()}] "{request}" {status} '
            f'{size or "-"} "{escape_log_text(referer)}" "{escape_log_text(agent)}"')


def log_access(client: str, exchange: Exchange) -> None:
    """Log the line for a finished exchange (if ``dropins.web.access`` logs INFO)."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    line = combined_line(client, exchange.user, exchange.method, exchange.target,
                         exchange.version, exchange.status, exchange.bytes_sent,
                         exchange.header(b"referer"), exchange.header(b"user-agent"))
    # makeRecord + handle is what info() does, minus the search of the call stack for the
    # caller's file and line, which an access line does not need: on a busy server that
    # search is a fifth of the cost of logging.
    access_logger.handle(access_logger.makeRecord(
        access_logger.name, logging.INFO, __file__, 0, line, (), None))
