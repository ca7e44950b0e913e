"""Clients that leave (FIN or RST) while their request is being answered, end to end: one rule
for both gateways (a streamed response is dropped without any answer, never a 500), and
requests carrying ``Upgrade:``, after which the server ignores input yet still notices that
the client left."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from _web_helpers import (
    WebProcess,
    flood,
    read_responses,
    read_until_closed,
    sockets_in_state,
    wait_until,
)
from conftest import write_tree

APPS = {
    "gated.py": """
        import asyncio
        import os
        import sys
        import time

        # Each request waits for the test to create the file its query string names: the test
        # does so once the server has seen its client's FIN.


        def wsgi(environ, start_response):
            deadline = time.monotonic() + 10
            while not os.path.exists(environ["QUERY_STRING"]) and time.monotonic() < deadline:
                time.sleep(0.02)
            start_response("200 OK", [("Content-Type", "text/plain")])
            if environ["PATH_INFO"] == "/whole":
                return [b"whole"]
            return iter([b"one", b"two"])


        async def asgi(scope, receive, send):
            if scope["type"] != "http":
                return
            if scope["path"] == "/poll":
                await receive()
                print("long-poll started", file=sys.stderr, flush=True)
                message = await receive()  # a long-poll: nothing to say until the client goes
                print("long-poll ended:", message["type"], file=sys.stderr, flush=True)
                return
            await receive()
            deadline = time.monotonic() + 10
            while not os.path.exists(scope["query_string"]) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            if scope["path"] == "/whole":
                await send({"type": "http.response.body", "body": b"whole"})
                return
            try:
                await send({"type": "http.response.body", "body": b"one", "more_body": True})
            except OSError:
                if scope["path"] != "/stubborn":
                    raise
            await send({"type": "http.response.body", "body": b"two"})
    """,
}


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("left"), APPS)


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def gated(request: pytest.FixtureRequest, apps: Path) -> Iterator[WebProcess]:
    with WebProcess([f"--{request.param}", f"gated:{request.param}"], cwd=apps) as process:
        yield process


def half_close_then_open(server: WebProcess, sock: socket.socket, gate: Path) -> None:
    """Send FIN, wait until the server's side of the connection has it, then let the
    application answer."""
    sock.shutdown(socket.SHUT_WR)
    peer = sock.getsockname()[1]
    assert wait_until(lambda: sockets_in_state(server.port, "CLOSE_WAIT", peer) == 1, 10)
    gate.touch()


def test_a_stream_to_a_half_closed_client_is_dropped_without_an_answer(
        gated: WebProcess, apps: Path) -> None:
    with socket.create_connection(("127.0.0.1", gated.port), timeout=10) as sock:
        gate = apps / f"gate-stream-{gated.port}"
        sock.sendall(f"GET /stream?{gate} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        half_close_then_open(gated, sock, gate)
        assert read_until_closed(sock) == b""  # no 500, no half stream: nothing
    assert "Traceback" not in gated.stderr
    assert gated.get("/whole?/").body == b"whole"  # and the server goes on


def test_a_stream_dropped_stays_dropped(apps: Path) -> None:
    """An ASGI application that goes on after send() raised must not send a truncated
    response (its last part without the first)."""
    with WebProcess(["--asgi", "gated:asgi"], cwd=apps) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        gate = apps / f"gate-stubborn-{server.port}"
        sock.sendall(f"GET /stubborn?{gate} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        half_close_then_open(server, sock, gate)
        assert read_until_closed(sock) == b""


def test_a_whole_response_to_a_half_closed_client_is_sent(gated: WebProcess, apps: Path) -> None:
    with socket.create_connection(("127.0.0.1", gated.port), timeout=10) as sock:
        gate = apps / f"gate-whole-{gated.port}"
        sock.sendall(f"GET /whole?{gate} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        half_close_then_open(gated, sock, gate)
        (response,) = read_responses(sock, 1, timeout=10)
    assert (response.status, response.body) == (200, b"whole")


@pytest.mark.parametrize("upgrade", ["h2c", "websocket"])
def test_long_polls_with_an_upgrade_header_end_when_their_clients_leave(
        apps: Path, upgrade: str) -> None:
    with WebProcess(["--asgi", "gated:asgi"], cwd=apps) as server:
        clients = []
        for _ in range(10):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(f"GET /poll HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                         f"Upgrade: {upgrade}\r\n\r\n".encode())
            clients.append(sock)
        assert wait_until(lambda: server.stderr.count("long-poll started") == 10, 10)
        for index, sock in enumerate(clients):
            if index % 2:  # an RST instead of a FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()

        def all_ended() -> bool:
            return (server.stderr.count("long-poll ended: http.disconnect") == 10
                    and sockets_in_state(server.port, "CLOSE_WAIT") == 0)

        assert wait_until(all_ended, 10), server.stderr
        assert server.get("/whole?/").body == b"whole"


def test_a_client_that_sends_without_end_after_an_upgrade_request_is_dropped(
        apps: Path) -> None:
    with WebProcess(["--asgi", "gated:asgi", "--max-body-size", "1M"], cwd=apps) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                     b"Upgrade: websocket\r\n\r\n")
        server.wait_for_log("long-poll started")
        sent = flood(sock, b"\x00")  # read and dropped, but not without end
        assert sent < 16 * 1024 * 1024, f"the server read {sent} bytes after the request"
        server.wait_for_log("long-poll ended: http.disconnect")
