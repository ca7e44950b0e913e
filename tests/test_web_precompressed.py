"""Precompressed twins (``x.br``, ``x.gz``) chosen by Accept-Encoding, like nginx gzip_static."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from _web_helpers import WebProcess
from dropins.web.precompressed import accepted_encodings

TEXT = b"body { color: red; }\n" * 40
BIG = os.urandom(300 * 1024)  # above the sendfile threshold


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("precompressed")
    (root / "app.css").write_bytes(TEXT)
    (root / "app.css.gz").write_bytes(gzip.compress(TEXT))
    (root / "app.css.br").write_bytes(b"fake brotli bytes")
    (root / "only-gz.js").write_bytes(b"let x = 1;\n")
    (root / "only-gz.js.gz").write_bytes(gzip.compress(b"let x = 1;\n"))
    (root / "plain.txt").write_bytes(b"plain\n")
    for name in ("secret.php.gz", "run.cgi.br", "page.RPY.gz"):
        (root / name).write_bytes(gzip.compress(b"<?php $password = 'x'; ?>"))
    (root / "big.bin").write_bytes(BIG)
    (root / "big.bin.gz").write_bytes(gzip.compress(BIG, 1))
    (root / "lonely.gz").write_bytes(gzip.compress(b"no original"))
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.gz").write_bytes(b"secret")
    (root / "leak.txt").write_bytes(b"harmless\n")
    (root / "leak.txt.gz").symlink_to(outside / "secret.gz")
    return root


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[WebProcess]:
    with WebProcess(["--path", str(site)]) as process:
        yield process


@pytest.mark.parametrize(("accept", "encoding"), [
    (None, None),
    ("gzip", "gzip"),
    ("gzip, deflate, br", "br"),
    ("br;q=0.5, gzip", "gzip"),
    ("br;q=0, gzip;q=0", None),
    ("*", "br"),
    ("*;q=0.1, gzip;q=0", "br"),
    ("identity", None),
    ("x-gzip", "gzip"),
    ("gzip;q=bogus", None),
])
def test_variant_follows_accept_encoding(server: WebProcess, site: Path, accept: str | None,
                                         encoding: str | None) -> None:
    response = server.get("/app.css", {"Accept-Encoding": accept} if accept else None)
    assert response.status == 200
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers.get("content-encoding") == encoding
    suffix = {"gzip": ".gz", "br": ".br", None: ""}[encoding]
    assert response.body == (site / ("app.css" + suffix)).read_bytes()


def test_etags_differ_per_encoding_and_validate_their_own(server: WebProcess) -> None:
    tags = {accept: server.get("/app.css", {"Accept-Encoding": accept}).headers["etag"]
            for accept in ("identity", "gzip", "br")}
    assert len(set(tags.values())) == 3
    not_modified = server.get("/app.css", {"Accept-Encoding": "gzip",
                                           "If-None-Match": tags["gzip"]})
    assert not_modified.status == 304
    assert not_modified.headers["vary"] == "Accept-Encoding"
    # The identity tag does not validate the gzip body.
    assert server.get("/app.css", {"Accept-Encoding": "gzip",
                                   "If-None-Match": tags["identity"]}).status == 200


def test_range_applies_to_the_encoded_file(server: WebProcess, site: Path) -> None:
    encoded = (site / "big.bin.gz").read_bytes()
    response = server.get("/big.bin", {"Accept-Encoding": "gzip", "Range": "bytes=100-199"})
    assert response.status == 206
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-range"] == f"bytes 100-199/{len(encoded)}"
    assert response.body == encoded[100:200]
    whole = server.get("/big.bin", {"Accept-Encoding": "gzip"})
    assert gzip.decompress(whole.body) == BIG
    head = server.request("HEAD", "/app.css", {"Accept-Encoding": "gzip"})
    assert head.headers["content-length"] == str((site / "app.css.gz").stat().st_size)
    assert head.headers["content-encoding"] == "gzip"


def test_files_without_twins_and_twins_by_name(server: WebProcess, site: Path) -> None:
    plain = server.get("/plain.txt", {"Accept-Encoding": "gzip, br"})
    assert "vary" not in plain.headers and "content-encoding" not in plain.headers
    only = server.get("/only-gz.js", {"Accept-Encoding": "br"})
    assert (only.headers["vary"], only.headers.get("content-encoding")) == (
        "Accept-Encoding", None)
    assert only.body == b"let x = 1;\n"
    # A .gz asked for by its own name is a gzip file, not an encoded response.
    by_name = server.get("/app.css.gz", {"Accept-Encoding": "gzip"})
    assert by_name.headers["content-type"] == "application/gzip"
    assert "content-encoding" not in by_name.headers
    assert by_name.body == (site / "app.css.gz").read_bytes()


def test_compressed_scripts_are_403_by_their_own_name(server: WebProcess) -> None:
    # A script's twin is its source, compressed: refused like the script itself.
    for name in ("/secret.php.gz", "/run.cgi.br", "/page.RPY.gz"):
        assert server.get(name, {"Accept-Encoding": "gzip, br"}).status == 403, name


def test_twin_symlinked_out_of_the_folder_is_ignored(server: WebProcess) -> None:
    response = server.get("/leak.txt", {"Accept-Encoding": "gzip"})
    assert response.body == b"harmless\n"
    assert "content-encoding" not in response.headers


def test_listing_shows_each_file_once(server: WebProcess) -> None:
    page = server.get("/").body.decode()
    assert 'href="app.css"' in page and 'href="big.bin"' in page
    assert "app.css.gz" not in page and "app.css.br" not in page
    assert 'href="lonely.gz"' in page  # no original beside it: listed as itself


def test_accepted_encodings_parses_q_values() -> None:
    assert accepted_encodings(b"gzip;q=0.8, br ; q=1.0, *;q=0") == {
        "gzip": 0.8, "br": 1.0, "*": 0.0}
    assert accepted_encodings(b"GZIP;Q=2") == {"gzip": 0.0}
    assert accepted_encodings(None) == {}


def test_twins_added_or_removed_later_are_noticed(server: WebProcess, site: Path) -> None:
    (site / "late.txt").write_bytes(b"late\n")
    first = server.get("/late.txt", {"Accept-Encoding": "gzip"})
    assert "vary" not in first.headers
    (site / "late.txt.gz").write_bytes(gzip.compress(b"late\n"))
    second = server.get("/late.txt", {"Accept-Encoding": "gzip"})
    assert second.headers.get("content-encoding") == "gzip"
    assert gzip.decompress(second.body) == b"late\n"
    (site / "late.txt.gz").unlink()
    third = server.get("/late.txt", {"Accept-Encoding": "gzip"})
    assert (third.body, "vary" in third.headers) == (b"late\n", False)
