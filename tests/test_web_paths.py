"""No path outside the served folder is ever served: a corpus of attacks against a real server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from _web_helpers import WebProcess, status_of
from dropins.web.paths import BadPath, PathNotFound, decode_segments, resolve_request_path

SECRET = b"TOPSECRET-7f3a"

ATTACKS = [
    "/../outside/secret.txt",
    "/../../../../../../etc/passwd",
    "/%2e%2e/outside/secret.txt",
    "/%2E%2E/outside/secret.txt",
    "/.%2e/outside/secret.txt",
    "/%2e./outside/secret.txt",
    "/%2e%2e%2foutside%2fsecret.txt",
    "/..%2foutside%2fsecret.txt",
    "/sub/..%2f..%2foutside/secret.txt",
    "/sub/%2e%2e/%2e%2e/outside/secret.txt",
    "/sub/../../outside/secret.txt",
    "/./../outside/secret.txt",
    "/..%5coutside%5csecret.txt",
    "/..\\outside\\secret.txt",
    "/sub\\..\\..\\outside\\secret.txt",
    "/hello.txt%00.html",
    "/%00../outside/secret.txt",
    "//etc/passwd",
    "/%2fetc%2fpasswd",
    "/%2F..%2F..%2Foutside%2Fsecret.txt",
    "/%252e%252e/outside/secret.txt",
    "/%c0%ae%c0%ae/outside/secret.txt",
    "/..;/outside/secret.txt",
    "/escape/secret.txt",
    "/escape/",
    "/secret-link",
    "/absolute-link",
    "/sub/deep-escape/secret.txt",
    "http://localhost/../outside/secret.txt",
    "/sub/..",
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("traversal")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    root = base / "root"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_text("hello")
    (root / "sub" / "inner.txt").write_text("inner")
    (root / "escape").symlink_to("../outside", target_is_directory=True)
    (root / "secret-link").symlink_to("../outside/secret.txt")
    (root / "absolute-link").symlink_to(outside / "secret.txt")
    (root / "sub" / "deep-escape").symlink_to("../../outside", target_is_directory=True)
    (root / "inside-link").symlink_to("sub/inner.txt")
    return base


@pytest.fixture(scope="module")
def server(tree: Path) -> Iterator[WebProcess]:
    with WebProcess(["--path", str(tree / "root")]) as process:
        yield process


@pytest.mark.parametrize("target", ATTACKS)
def test_attack_is_refused(server: WebProcess, target: str) -> None:
    raw = server.raw(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                     .encode("latin-1"))
    assert SECRET not in raw
    assert b"root:" not in raw
    assert status_of(raw) in (400, 404), raw[:200]


def test_corpus_is_large_enough() -> None:
    assert len(set(ATTACKS)) >= 20


def test_server_survives_the_corpus(server: WebProcess) -> None:
    for target in ATTACKS:
        server.raw(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                   .encode("latin-1"))
    assert server.get("/hello.txt").body == b"hello"
    assert server.process is not None and server.process.poll() is None


def test_symlinks_inside_the_root_work(server: WebProcess) -> None:
    assert server.get("/inside-link").body == b"inner"


def test_listing_hides_escaping_symlinks(server: WebProcess) -> None:
    page = server.get("/").body.decode()
    assert "inside-link" in page and "hello.txt" in page
    assert "secret-link" not in page and "escape" not in page and "absolute-link" not in page


def test_follow_symlinks_serves_links_but_not_dotdot(tree: Path) -> None:
    with WebProcess(["--path", str(tree / "root"), "--follow-symlinks"]) as process:
        assert process.get("/secret-link").body == SECRET
        assert process.get("/escape/secret.txt").body == SECRET
        raw = process.raw(b"GET /../outside/secret.txt HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
        assert status_of(raw) == 400 and SECRET not in raw


@pytest.mark.parametrize(("raw", "segments"), [
    (b"/", []),
    (b"/a/b.txt", ["a", "b.txt"]),
    (b"//a///b/./c", ["a", "b", "c"]),
    (b"/a%20b", ["a b"]),
    (b"/%252e%252e", ["%2e%2e"]),
    (b"/caf%C3%A9", ["café"]),
])
def test_decode_segments(raw: bytes, segments: list[str]) -> None:
    assert decode_segments(raw) == segments


@pytest.mark.parametrize("raw", [b"/..", b"/a/../b", b"/%2e%2e", b"/a%2f..%2fb", b"/a%00b",
                                 b"/a%5cb", b"/a\\b"])
def test_decode_segments_refuses(raw: bytes) -> None:
    with pytest.raises(BadPath):
        decode_segments(raw)


def test_resolve_request_path(tree: Path) -> None:
    root = os.path.realpath(tree / "root")
    path, info = resolve_request_path(root, b"/sub/inner.txt")
    assert path == os.path.join(root, "sub", "inner.txt") and info.st_size == 5
    with pytest.raises(PathNotFound):
        resolve_request_path(root, b"/secret-link")
    with pytest.raises(FileNotFoundError):
        resolve_request_path(root, b"/missing")
    path, _ = resolve_request_path(root, b"/secret-link", follow_symlinks=True)
    assert Path(path).read_bytes() == SECRET
