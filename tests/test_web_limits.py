"""Connection limits of a real ``dropins web``: out of descriptors, and --max-connections.

Running out of file descriptors (EMFILE on accept) must pause accepting with one warning per
episode, not a traceback per attempt, and accepting must resume by itself once descriptors
are free, on both event loops.  ``--max-connections N`` keeps connection N+1 waiting in the
listen backlog while the N open ones are still served.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _web_helpers import WebProcess, read_responses
from conftest import run_dropins

#: starts the real command line with a low open-file limit (argv[1]), the rest as given
_LOW_LIMIT = ("import os, resource, sys; limit = int(sys.argv[1]); "
              "resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)); "
              "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])")
REQUEST = b"GET /index.html HTTP/1.1\r\nHost: test\r\n\r\n"


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_name(request: pytest.FixtureRequest) -> str:
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
    return str(request.param)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("limits")
    (root / "index.html").write_text("<p>up</p>")
    return root


def web_with_fd_limit(limit: int, args: list[str], loop: str) -> WebProcess:
    process = WebProcess(args, runner_args=["--loop", loop])
    process.args = [sys.executable, "-c", _LOW_LIMIT, str(limit), *process.args[1:]]
    return process


def reset(sock: socket.socket) -> None:
    """Close with a RST, so the server sees the connection end at once (not an idle EOF)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        reset(sock)


def connect(port: int, opened: list[socket.socket]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    opened.append(sock)
    return sock


def answer_within(server: WebProcess, seconds: float) -> int:
    """The status of a fresh GET, retried until ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return server.get("/index.html").status
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_out_of_descriptors_pauses_logs_once_and_recovers(
        site: Path, loop_name: str, sockets: list[socket.socket]) -> None:
    args = ["--path", str(site), "--max-connections", "100000", "--header-timeout", "60"]
    with web_with_fd_limit(64, args, loop_name) as server:
        assert server.get("/index.html").status == 200  # loads what serving needs, first
        for _ in range(100):  # ~40 accepted before descriptors run out; the rest wait
            connect(server.port, sockets)
        server.wait_for_log("cannot accept connections: Too many open files", timeout=15)
        time.sleep(1.5)  # many retries happen meanwhile (back-off of 50 ms to 1 s)
        for sock in sockets:
            reset(sock)
        sockets.clear()
        assert answer_within(server, 20) == 200
        server.wait_for_log("accepting connections again", timeout=5)
        log = server.stderr
    assert log.count("cannot accept connections") == 1, log
    assert log.count("accepting connections again") == 1, log
    assert "Traceback" not in log and "socket.accept() out of system resource" not in log, log


def test_max_connections_keeps_one_more_waiting_and_serves_the_others(
        site: Path, loop_name: str, sockets: list[socket.socket]) -> None:
    args = ["--path", str(site), "--max-connections", "3"]
    with WebProcess(args, runner_args=["--loop", loop_name]) as server:
        held = [connect(server.port, sockets) for _ in range(3)]
        for sock in held:
            sock.sendall(REQUEST)
            assert read_responses(sock, 1)[0].status == 200
        waiting = connect(server.port, sockets)  # in the listen backlog: the kernel accepts it
        waiting.sendall(REQUEST)
        waiting.settimeout(1.0)
        with pytest.raises(TimeoutError):
            waiting.recv(1)  # not served while three are open
        for sock in held:  # ... while the open ones still are, at once
            sock.sendall(REQUEST)
            assert read_responses(sock, 1, timeout=5)[0].status == 200
        server.wait_for_log(r"3 connections open, the limit")
        reset(held[0])
        sockets.remove(held[0])
        assert read_responses(waiting, 1, timeout=10)[0].status == 200


def test_max_connections_must_be_a_positive_number(site: Path) -> None:
    result = run_dropins("web", "--path", str(site), "--max-connections", "0")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--max-connections" in result.stderr


def test_default_max_connections_is_half_the_open_file_limit(
        site: Path, sockets: list[socket.socket]) -> None:
    with web_with_fd_limit(40, ["--path", str(site)], "asyncio") as server:  # (40 - 32) / 2
        for _ in range(4):
            sock = connect(server.port, sockets)
            sock.sendall(REQUEST)
            assert read_responses(sock, 1)[0].status == 200
        server.wait_for_log(r"4 connections open, the limit")
        waiting = connect(server.port, sockets)
        waiting.sendall(REQUEST)
        waiting.settimeout(0.5)
        with pytest.raises(TimeoutError):
            waiting.recv(1)
