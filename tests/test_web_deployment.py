"""`dropins web` as operators deploy it: behind a unix socket, and after a privilege drop."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from _web_helpers import WebProcess


def test_access_log_names_an_unknown_client_with_a_dash(tmp_path: Path) -> None:
    (tmp_path / "hi.txt").write_text("hello")
    sock_path = tmp_path / "web.sock"
    with WebProcess(["--path", str(tmp_path), "--listen", f"unix:{sock_path}"]) as web:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(5)
            client.connect(str(sock_path))
            client.sendall(b"GET /hi.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := client.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"hello")
        line = web.wait_for_log(r'"GET /hi\.txt HTTP/1\.1" 200')
    fields = line.split("dropins.web.access: ", 1)[1].split(" ")
    assert fields[:3] == ["-", "-", "-"], line


@pytest.fixture
def world_readable_site() -> Iterator[Path]:
    """A site folder that an unprivileged user can read (pytest's tmp_path is private)."""
    site = Path(tempfile.mkdtemp(prefix="dropins-web-site-"))
    try:
        site.chmod(0o755)
        (site / "index.html").write_text("<p>home</p>")
        (site / "style.css").write_text("p {}")
        for path in site.iterdir():
            path.chmod(0o644)
        yield site
    finally:
        shutil.rmtree(site)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="dropping privileges needs root")
def test_files_are_served_with_their_types_after_dropping_privileges(
        world_readable_site: Path) -> None:
    # The user switched to may be unable to read the interpreter's files (here /root is
    # private), so what serving files needs must be loaded before the drop.
    with WebProcess(["--path", str(world_readable_site)],
                    runner_args=["--uid", "nobody"]) as web:
        page = web.get("/index.html")
        style = web.get("/style.css")
        assert web.stop() == 0
    assert page.status == 200 and page.body == b"<p>home</p>"
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert style.status == 200 and style.headers["content-type"] == "text/css; charset=utf-8"
