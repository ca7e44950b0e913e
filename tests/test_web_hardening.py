"""Hostile or unusual clients: endless header lines, protocol upgrades, odd redirects."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import pytest

from _web_helpers import WebProcess, read_until_closed, status_of


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    root = tmp_path_factory.mktemp("hardening")
    (root / "a.txt").write_text("alpha")
    (root / "sub").mkdir()
    (root / "sub" / "b.txt").write_text("beta")
    # Timeouts long enough that only the behaviour under test can end the connections early.
    with WebProcess(["--path", str(root), "--header-timeout", "20",
                     "--keepalive-timeout", "20"]) as web:
        yield web


def timed_read_until_closed(sock: socket.socket, within: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    start = time.monotonic()
    data = read_until_closed(sock, within)
    return data, time.monotonic() - start


def test_an_endless_header_line_is_refused_before_it_fills_memory(server: WebProcess) -> None:
    chunk = b"v" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Big: ")
        answer = b""
        try:
            while sent < 64 * 1024 * 1024:  # the server must stop us long before this
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer, _ = timed_read_until_closed(sock, 5)
    assert status_of(answer) == 431, answer[:200]
    assert sent < 4 * 1024 * 1024, f"the server read {sent} bytes of one header line"
    assert server.get("/a.txt").body == b"alpha"  # and it still serves others


def test_an_upgrade_request_is_answered_and_the_connection_closed(server: WebProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                     b"Upgrade: websocket\r\n\r\n")
        answer, elapsed = timed_read_until_closed(sock, 10)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert status_of(answer) == 200 and body == b"alpha"
    assert b"connection: close" in head.lower()
    assert elapsed < 5  # closed at once, not after the 20 s keep-alive timeout


def test_a_directory_redirect_never_points_at_another_host(server: WebProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET //sub HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer, _ = timed_read_until_closed(sock, 5)
    assert status_of(answer) == 301
    location = next(line for line in answer.split(b"\r\n")
                    if line.lower().startswith(b"location:"))
    target = location.split(b":", 1)[1].strip()
    assert target.startswith(b"/") and not target.startswith(b"//"), target


def test_a_stalled_download_is_aborted_cleanly_at_the_shutdown_timeout(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("big")
    (root / "big.bin").write_bytes(b"\0" * (32 * 1024 * 1024))  # sent with sendfile
    web = WebProcess(["--path", str(root)], runner_args=["--shutdown-timeout", "1"])
    with web, socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", web.port))
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")  # then never reads again
        time.sleep(0.5)  # the server is now blocked in the middle of sending the file
        began = time.monotonic()
        status = web.stop()
        elapsed = time.monotonic() - began
    assert status == 0, web.stderr
    assert elapsed < 5
    assert "aborting 1 connection" in web.stderr
    assert "Exception in callback" not in web.stderr and "Traceback" not in web.stderr, web.stderr
