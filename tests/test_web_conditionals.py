"""Static files: the preconditions of RFC 9110 13.1 (412) and file URLs with a trailing slash."""

from __future__ import annotations

import email.utils
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from _web_helpers import WebProcess

BIG = 300 * 1024  # above the sendfile threshold: the path that is not cached


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    (root / "small.txt").write_text("small file\n")
    (root / "big.bin").write_bytes(os.urandom(BIG))
    (root / "folder").mkdir()
    (root / "folder" / "inner.txt").write_text("inner\n")
    for name in ("small.txt", "big.bin"):
        os.utime(root / name, (1_700_000_000, 1_700_000_000))
    return root


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[WebProcess]:
    with WebProcess(["--path", str(site)]) as process:
        yield process


def http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


@pytest.mark.parametrize("name", ["small.txt", "big.bin"])
def test_if_match(server: WebProcess, name: str) -> None:
    etag = server.get("/" + name).headers["etag"]
    for method in ("GET", "HEAD"):
        assert server.request(method, "/" + name, {"If-Match": '"other"'}).status == 412
        assert server.request(method, "/" + name, {"If-Match": f'"other", {etag}'}).status == 200
        assert server.request(method, "/" + name, {"If-Match": "*"}).status == 200
    # If-Match compares strongly: a weak tag never matches.
    assert server.get("/" + name, {"If-Match": "W/" + etag}).status == 412
    failed = server.get("/" + name, {"If-Match": '"other"'})
    assert failed.body == b"Precondition Failed\n"
    # If-Match wins over a Range.
    assert server.get("/" + name, {"If-Match": '"x"', "Range": "bytes=0-1"}).status == 412


@pytest.mark.parametrize("name", ["small.txt", "big.bin"])
def test_if_unmodified_since(server: WebProcess, name: str) -> None:
    mtime = 1_700_000_000
    assert server.get("/" + name, {"If-Unmodified-Since": http_date(mtime - 60)}).status == 412
    assert server.get("/" + name, {"If-Unmodified-Since": http_date(mtime)}).status == 200
    assert server.get("/" + name, {"If-Unmodified-Since": http_date(mtime + 60)}).status == 200
    # A date that does not parse is ignored, and If-Match takes precedence over it.
    assert server.get("/" + name, {"If-Unmodified-Since": "yesterday"}).status == 200
    etag = server.get("/" + name).headers["etag"]
    assert server.get("/" + name, {"If-Match": etag,
                                   "If-Unmodified-Since": http_date(mtime - 60)}).status == 200


def test_a_file_with_a_trailing_slash_is_not_found(server: WebProcess) -> None:
    assert server.get("/small.txt").status == 200
    for path in ("/small.txt/", "/big.bin/", "/folder/inner.txt/", "/small.txt//"):
        response = server.get(path)
        assert response.status == 404, path
        assert response.body == b"Not Found\n"
    assert server.get("/folder/").status == 200  # folders keep their slash
