"""Static files served by a real ``dropins web`` process, checked with a real HTTP client."""

from __future__ import annotations

import email.utils
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from _web_helpers import WebProcess

BIG_SIZE = 3 * 1024 * 1024 + 17  # above the sendfile threshold, not a round number


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    (root / "hello.txt").write_text("hello, world\n")
    (root / "page.html").write_text("<h1>page</h1>")
    (root / "style.css").write_text("body{}")
    (root / "data.json").write_text("{}")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (root / "archive.tar.gz").write_bytes(b"\x1f\x8b" + bytes(50))
    (root / "no_extension").write_bytes(b"\x00\x01")
    (root / "with space é.txt").write_text("spaced\n")
    (root / "digits.txt").write_bytes(b"0123456789")
    (root / "big.bin").write_bytes(os.urandom(BIG_SIZE))
    (root / "empty.txt").write_bytes(b"")
    docs = root / "docs"
    docs.mkdir()
    (docs / "index.html").write_text("<p>docs index</p>")
    listed = root / "listed"
    listed.mkdir()
    (listed / "a.txt").write_text("a")
    (listed / "sub").mkdir()
    (listed / '<em class="x">hi.txt').write_text("x")
    (listed / "50% & more.txt").write_text("y")
    return root


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[WebProcess]:
    with WebProcess(["--path", str(site)]) as process:
        yield process


@pytest.mark.parametrize(("name", "expected"), [
    ("hello.txt", "text/plain; charset=utf-8"),
    ("page.html", "text/html; charset=utf-8"),
    ("style.css", "text/css; charset=utf-8"),
    ("data.json", "application/json; charset=utf-8"),
    ("image.png", "image/png"),
    ("archive.tar.gz", "application/gzip"),
    ("no_extension", "application/octet-stream"),
])
def test_content_type(server: WebProcess, site: Path, name: str, expected: str) -> None:
    response = server.get("/" + name)
    assert response.status == 200
    assert response.headers["content-type"] == expected
    assert response.body == (site / name).read_bytes()
    assert int(response.headers["content-length"]) == len(response.body)
    assert "content-encoding" not in response.headers  # a .gz is sent as what it is


def test_validators_and_304(server: WebProcess, site: Path) -> None:
    response = server.get("/hello.txt")
    etag = response.headers["etag"]
    modified = response.headers["last-modified"]
    assert etag.startswith('"') and etag.endswith('"')
    assert email.utils.parsedate_to_datetime(modified).timestamp() == int(
        (site / "hello.txt").stat().st_mtime)
    assert server.get("/hello.txt", {"If-None-Match": etag}).status == 304
    assert server.get("/hello.txt", {"If-None-Match": f'"other", W/{etag}'}).status == 304
    assert server.get("/hello.txt", {"If-None-Match": "*"}).status == 304
    not_modified = server.get("/hello.txt", {"If-Modified-Since": modified})
    assert (not_modified.status, not_modified.body) == (304, b"")
    assert not_modified.headers["etag"] == etag
    assert server.get("/hello.txt", {"If-None-Match": '"other"'}).status == 200
    older = email.utils.formatdate((site / "hello.txt").stat().st_mtime - 3600, usegmt=True)
    assert server.get("/hello.txt", {"If-Modified-Since": older}).status == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
    assert server.get("/hello.txt", {"If-None-Match": '"other"',
                                     "If-Modified-Since": modified}).status == 200
    assert server.get("/hello.txt", {"If-Modified-Since": "garbage"}).status == 200


def test_changed_file_gets_new_etag_and_content(server: WebProcess, site: Path) -> None:
    target = site / "changing.txt"
    target.write_text("first")
    first = server.get("/changing.txt")
    stat = target.stat()
    target.write_text("other")  # same size
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old mtime
    second = server.get("/changing.txt")
    assert first.body == b"first" and second.body == b"other"


@pytest.mark.parametrize(("range_header", "status", "body", "content_range"), [
    ("bytes=0-3", 206, b"0123", "bytes 0-3/10"),
    ("bytes=4-", 206, b"456789", "bytes 4-9/10"),
    ("bytes=-3", 206, b"789", "bytes 7-9/10"),
    ("bytes=8-100", 206, b"89", "bytes 8-9/10"),
    ("bytes=-100", 206, b"0123456789", "bytes 0-9/10"),
    ("bytes=10-", 416, None, "bytes */10"),
    ("bytes=-0", 416, None, "bytes */10"),
    ("bytes=0-1,4-5", 200, b"0123456789", None),  # several ranges: the whole file
    ("bytes=5-2", 200, b"0123456789", None),      # invalid: ignored
    ("items=0-3", 200, b"0123456789", None),      # unknown unit: ignored
])
def test_ranges(server: WebProcess, range_header: str, status: int, body: bytes | None,
                content_range: str | None) -> None:
    response = server.get("/digits.txt", {"Range": range_header})
    assert response.status == status
    if body is not None:
        assert response.body == body
    assert response.headers.get("content-range") == content_range
    assert response.headers.get("accept-ranges", "bytes") == "bytes"


def test_if_range(server: WebProcess) -> None:
    etag = server.get("/digits.txt").headers["etag"]
    assert server.get("/digits.txt", {"Range": "bytes=0-1", "If-Range": etag}).status == 206
    stale = server.get("/digits.txt", {"Range": "bytes=0-1", "If-Range": '"stale"'})
    assert (stale.status, stale.body) == (200, b"0123456789")


def test_big_file_is_sent_whole_and_in_ranges(server: WebProcess, site: Path) -> None:
    data = (site / "big.bin").read_bytes()
    response = server.get("/big.bin")
    assert response.status == 200 and response.body == data
    middle = server.get("/big.bin", {"Range": "bytes=1000000-2000000"})
    assert middle.status == 206 and middle.body == data[1000000:2000001]


def test_head(server: WebProcess, site: Path) -> None:
    for name in ("hello.txt", "big.bin"):
        response = server.request("HEAD", "/" + name)
        assert response.status == 200
        assert response.body == b""
        assert int(response.headers["content-length"]) == (site / name).stat().st_size
    assert server.request("HEAD", "/missing").status == 404


def test_empty_file(server: WebProcess) -> None:
    response = server.get("/empty.txt")
    assert (response.status, response.body, response.headers["content-length"]) == (200, b"", "0")


def test_percent_decoding(server: WebProcess) -> None:
    response = server.get("/with%20space%20%C3%A9.txt")
    assert (response.status, response.body) == (200, b"spaced\n")
    assert server.get("/%68ello.txt").body == b"hello, world\n"  # any byte may be encoded
    assert server.get("/hello.txt?query=ignored&x=%2F").status == 200


def test_index_and_redirect(server: WebProcess) -> None:
    redirect = server.get("/docs?a=1")
    assert redirect.status == 301
    assert redirect.headers["location"] == "/docs/?a=1"
    response = server.get("/docs/")
    assert (response.status, response.body) == (200, b"<p>docs index</p>")


def test_listing_escapes_names(server: WebProcess) -> None:
    response = server.get("/listed/")
    assert response.status == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.body.decode()
    assert "<em" not in page
    assert "&lt;em class=&quot;x&quot;&gt;hi.txt" in page
    assert 'href="%3Cem%20class%3D%22x%22%3Ehi.txt"' in page
    assert 'href="50%25%20%26%20more.txt"' in page and "50% &amp; more.txt" in page
    assert 'href="sub/"' in page and 'href="a.txt"' in page
    # the links work
    assert server.get("/listed/50%25%20%26%20more.txt").body == b"y"
    assert server.get("/listed/%3Cem%20class%3D%22x%22%3Ehi.txt").body == b"x"


def test_missing_and_methods(server: WebProcess) -> None:
    assert server.get("/nope.txt").status == 404
    assert server.get("/hello.txt/more").status == 404  # a file used as a folder
    post = server.request("POST", "/hello.txt", body=b"x=1")
    assert post.status == 405 and post.headers["allow"] == "GET, HEAD"


def test_no_listing_and_custom_index(site: Path) -> None:
    with WebProcess(["--path", str(site), "--no-listing", "--index", "a.txt"]) as process:
        assert process.get("/listed/").body == b"a"           # the custom index
        assert process.get("/docs/").status == 403            # no a.txt there, no listing
        assert b"docs index" not in process.get("/docs/").body


def test_access_log_combined_format(server: WebProcess) -> None:
    server.get("/hello.txt?x=1", {"Referer": "http://example/ref", "User-Agent": 'agent "7"'})
    line = server.wait_for_log(r'GET /hello\.txt\?x=1 HTTP/1\.1')
    assert "dropins.web.access" in line
    assert ('127.0.0.1 - - [' in line and
            '] "GET /hello.txt?x=1 HTTP/1.1" 200 13 "http://example/ref" "agent \\"7\\""' in line)
