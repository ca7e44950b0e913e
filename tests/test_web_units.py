"""Unit tests of the web server's small pure parts: ranges, log escaping, sizes, threads."""

from __future__ import annotations

import re
import threading
import time

import pytest

from dropins.options import UsageError
from dropins.web.accesslog import combined_line, escape_log_text
from dropins.web.httputil import http_date, parse_http_date
from dropins.web.maker import byte_size
from dropins.web.static import content_type, parse_range
from dropins.web.threads import DaemonThreadPool


@pytest.mark.parametrize(("header", "size", "expected"), [
    (b"bytes=0-0", 10, (0, 0)),
    (b"bytes=0-", 10, (0, 9)),
    (b"bytes=9-", 10, (9, 9)),
    (b"bytes=-1", 10, (9, 9)),
    (b"bytes=3-1000", 10, (3, 9)),
    (b"BYTES = 2-4", 10, (2, 4)),
    (b"bytes=10-", 10, False),
    (b"bytes=10-20", 10, False),
    (b"bytes=-0", 10, False),
    (b"bytes=0-", 0, False),
    (b"bytes=-5", 0, False),
    (b"bytes=4-2", 10, None),
    (b"bytes=-", 10, None),
    (b"bytes=a-b", 10, None),
    (b"bytes=1-2,4-5", 10, None),
    (b"lines=1-2", 10, None),
    (b"bytes", 10, None),
])
def test_parse_range(header: bytes, size: int, expected: object) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (None, "-"),
    (b"", "-"),
    (b"Mozilla/5.0", "Mozilla/5.0"),
    (b'say "hi"', 'say \\"hi\\"'),
    (b"back\\slash", "back\\\\slash"),
    (b"line\r\nforged 200", "line\\x0d\\x0aforged 200"),
    ("caf\u00e9", "caf\\xc3\\xa9"),
    (b"\x1b[31mred", "\\x1b[31mred"),
])
def test_escape_log_text(value: bytes | str | None, expected: str) -> None:
    assert escape_log_text(value) == expected


def test_combined_line_format() -> None:
    line = combined_line("10.0.0.1", "alice", b"GET", b"/a?b=1", "1.1", 200, 2326,
                         b"http://ref/", b"agent/1.0")
    assert re.fullmatch(r'10\.0\.0\.1 - alice \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} '
                        r'\+0000\] "GET /a\?b=1 HTTP/1\.1" 200 2326 "http://ref/" "agent/1\.0"',
                        line), line
    empty = combined_line("::1", None, b"HEAD", b"/", "1.0", 304, 0, None, None)
    assert empty.endswith('"HEAD / HTTP/1.0" 304 - "-" "-"') and " - - [" in empty


@pytest.mark.parametrize(("text", "expected"), [
    ("1048576", 1048576), ("512K", 512 * 1024), ("10M", 10 * 1024 ** 2), ("1g", 1024 ** 3),
    ("64KiB", 64 * 1024), ("2MB", 2 * 1024 ** 2),
])
def test_byte_size(text: str, expected: int) -> None:
    assert byte_size(text) == expected


@pytest.mark.parametrize("text", ["", "M", "ten", "-5", "1.5M", "5T"])
def test_byte_size_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="expected a size"):
        byte_size(text)


def test_content_types_are_cached_per_suffix() -> None:
    assert content_type("/x/a.HTML") == b"text/html; charset=utf-8"
    assert content_type("/x/b.tar.gz") == b"application/gzip"
    assert content_type("/x/c.unknown-suffix") == b"application/octet-stream"


def test_thread_pool_runs_on_daemon_threads_and_reports_errors() -> None:
    pool = DaemonThreadPool(2, name="unit")
    names = [pool.submit(lambda: threading.current_thread()).result(5) for _ in range(3)]
    assert all(thread.daemon and thread.name.startswith("unit-") for thread in names)
    failing = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(5)
    started = time.monotonic()
    futures = [pool.submit(time.sleep, 0.3) for _ in range(4)]
    for future in futures:
        future.result(5)
    elapsed = time.monotonic() - started
    assert 0.55 < elapsed < 3  # two at a time: at most max_workers threads
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(print)


@pytest.mark.parametrize("timestamp", [0, 784111777, 951782400.5, 1700000000, 4102444799])
def test_http_date_matches_the_standard_library(timestamp: float) -> None:
    import email.utils

    assert http_date(timestamp).decode() == email.utils.formatdate(timestamp, usegmt=True)
    assert parse_http_date(http_date(timestamp)) == int(timestamp)


@pytest.mark.parametrize("text", [b"Sunday, 06-Nov-94 08:49:37 GMT", b"Sun Nov  6 08:49:37 1994"])
def test_parse_http_date_obsolete_formats(text: bytes) -> None:
    assert parse_http_date(text) == 784111777


@pytest.mark.parametrize("text", [b"", b"yesterday", b"\xff\xfe"])
def test_parse_http_date_garbage(text: bytes) -> None:
    assert parse_http_date(text) is None
