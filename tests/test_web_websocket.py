"""WebSockets (ASGI) under ``dropins web``, with the ``websockets`` client library against
FastAPI and Starlette endpoints, and the same tests against uvicorn on the same application.

Both servers run with keep-alive pings every 0.5 s (a pong due within 1 s) and WebSocket
messages limited to 1 MiB, so the keep-alive works under every test.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Request, TextMessage

from _web_helpers import (
    WebProcess,
    peak_memory,
    raw_exchange,
    read_until_closed,
    status_of,
    wait_until,
)
from _websocket_apps import WEBSOCKET_APPS
from conftest import clean_env, get_free_port, write_tree

KEEPALIVE = ["--ws-ping-interval", "0.5", "--ws-ping-timeout", "1"]


class Uvicorn:
    """uvicorn serving the same application, for comparison (its port is known up front)."""

    def __init__(self, cwd: Path) -> None:
        self.port = get_free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "wsapps:app", "--port", str(self.port),
             "--ws-max-size", "1048576", *KEEPALIVE, "--log-level", "warning"],
            cwd=cwd, env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError("uvicorn did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("websocket"), {"wsapps.py": WEBSOCKET_APPS})


@pytest.fixture(scope="module")
def dropins_server(project: Path) -> Iterator[WebProcess]:
    with WebProcess(["--asgi", "wsapps:app", *KEEPALIVE], cwd=project) as server:
        yield server


@pytest.fixture(scope="module")
def uvicorn_server(project: Path) -> Iterator[Uvicorn]:
    server = Uvicorn(project)
    yield server
    server.stop()


@dataclass
class Target:
    kind: str
    port: int


@pytest.fixture(params=["dropins", "uvicorn"])
def server(request: pytest.FixtureRequest) -> Target:
    """Each server in turn."""
    return Target(request.param, request.getfixturevalue(f"{request.param}_server").port)


def events(port: int, name: str) -> list[Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET /events/{name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                     .encode())
        raw = read_until_closed(sock, 5)
    return list(json.loads(raw.partition(b"\r\n\r\n")[2]))


def wait_for_events(port: int, name: str, count: int = 2, timeout: float = 10) -> list[Any]:
    """What endpoint ``name`` recorded, once it recorded ``count`` events (bounded wait)."""
    seen: list[Any] = []

    def enough() -> bool:
        seen[:] = events(port, name)
        return len(seen) >= count
    assert wait_until(enough, timeout), f"{name}: only {seen}"
    return seen


def handshake(path: str = "/watch/raw") -> tuple[WSConnection, bytes]:
    client = WSConnection(ConnectionType.CLIENT)
    return client, client.send(Request(host="x", target=path))


def read_events(sock: socket.socket, client: WSConnection, until: type,
                timeout: float = 10) -> list[Any]:
    """Events the server's bytes make, until one of type ``until`` or the connection ends."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any(isinstance(e, until) for e in seen):
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        client.receive_data(data or None)
        seen += list(client.events())
        if not data:
            break
    return seen


def test_echo_text_and_binary_with_starlette(server: Target) -> None:
    with connect(f"ws://127.0.0.1:{server.port}/st/echo") as ws:
        ws.send("hello")
        assert ws.recv(5) == "hello"
        payload = bytes(range(256)) * 400
        ws.send(payload)
        assert ws.recv(5) == payload
        ws.send("é" * 1000)
        assert ws.recv(5) == "é" * 1000
        ws.send(["frag", "men", "ted"])  # one message in three frames: it arrives whole
        assert ws.recv(5) == "fragmented"
        ws.send(["ab"] * 2000)  # many tiny frames
        assert ws.recv(5) == "ab" * 2000
        ws.send([b"\x00\x01"] * 2000)
        assert ws.recv(5) == b"\x00\x01" * 2000
        assert ws.ping().wait(5)  # the client's ping is answered


def test_accept_with_subprotocol_headers_and_deflate_with_fastapi(server: Target) -> None:
    offered = [Subprotocol("x-other"), Subprotocol("chat")]
    with connect(f"ws://127.0.0.1:{server.port}/chat", subprotocols=offered) as ws:
        assert ws.subprotocol == "chat"
        assert ws.response is not None
        headers = ws.response.headers
        assert headers["x-room"] == "main"
        assert headers["sec-websocket-extensions"].startswith("permessage-deflate")
        scope = json.loads(ws.recv(5))
        assert scope["scheme"] == "ws" and scope["path"] == "/chat"
        assert scope["offered"] == ["x-other", "chat"]
        ws.send("hi " * 5000)  # compressed both ways
        assert ws.recv(5) == "chat: " + "hi " * 5000
    with connect(f"ws://127.0.0.1:{server.port}/chat", compression=None) as ws:
        assert ws.subprotocol is None and ws.response is not None
        assert "sec-websocket-extensions" not in ws.response.headers


def test_broadcast_to_100_clients(server: Target) -> None:
    async def run() -> None:
        url = f"ws://127.0.0.1:{server.port}/broadcast"
        clients = [await websockets.connect(url, open_timeout=20) for _ in range(100)]
        try:
            for client in clients:
                assert str(await asyncio.wait_for(client.recv(), 10)).startswith("joined")
            await clients[0].send("to everyone")
            heard = await asyncio.wait_for(
                asyncio.gather(*(client.recv() for client in clients)), 30)
            assert heard == ["to everyone"] * 100
        finally:
            await asyncio.gather(*(client.close() for client in clients))
    asyncio.run(run())


@pytest.mark.parametrize("compression", ["deflate", None])
def test_a_10_mb_message_is_refused_with_1009(server: Target, compression: str | None) -> None:
    name = f"big-{compression}"
    with connect(f"ws://127.0.0.1:{server.port}/st/echo?id={name}", compression=compression,
                 max_size=None) as ws:
        # Compressed, 10 MB of one byte is a few kilobytes on the wire: the server must
        # count what it inflates, not what it reads.
        message = b"x" * (10 * 1024 * 1024) if compression else os.urandom(10 * 1024 * 1024)
        with pytest.raises(ConnectionClosed) as closed:
            ws.send(message)
            ws.recv(10)
    if server.kind == "dropins" or closed.value.rcvd is not None:
        # uvicorn at times closes its socket with the rest of the message unread, which
        # resets the connection before the client reads the close frame: no code then.
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert wait_for_events(server.port, name, 1) == [{"code": 1009}]


def test_a_client_that_vanishes_is_noticed(server: Target) -> None:
    """No close frame, the TCP connection ended (FIN) or reset (RST): the application learns
    it at once, not when a ping goes unanswered.  The code is 1006 (RFC 6455 7.1.5); uvicorn
    says 1005."""
    for way in ("fin", "rst"):
        name = f"vanish-{way}"
        client, head = handshake(f"/watch/{name}")
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head)
            assert any(isinstance(e, AcceptConnection)
                       for e in read_events(sock, client, AcceptConnection))
            assert wait_for_events(server.port, name, 1) == ["accepted"]
            if way == "rst":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                sock.shutdown(socket.SHUT_RDWR)
        code = wait_for_events(server.port, name, 2, timeout=10)[1]["code"]
        assert code == (1006 if server.kind == "dropins" else 1005)


def test_close_handshake_from_the_client(server: Target) -> None:
    with connect(f"ws://127.0.0.1:{server.port}/watch/client-closes") as ws:
        ws.send("ping")
        assert ws.recv(5) == "ping"
        ws.close(4001, "bye")
    assert ws.close_code == 4001 and ws.close_reason == "bye"  # the server's answer echoed it
    assert wait_for_events(server.port, "client-closes")[1] == {"code": 4001, "reason": "bye"}


def test_close_handshake_from_the_server(server: Target) -> None:
    with connect(f"ws://127.0.0.1:{server.port}/bye") as ws, \
            pytest.raises(ConnectionClosed) as closed:
        ws.recv(5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4002, "done")
    assert closed.value.sent is not None and closed.value.sent.code == 4002


def test_denial_response_and_refusal(server: Target) -> None:
    with pytest.raises(InvalidStatus) as denied:
        connect(f"ws://127.0.0.1:{server.port}/st/deny")
    response = denied.value.response
    assert (response.status_code, response.body) == (401, b"no entry")
    assert response.headers["x-why"] == "token"
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{server.port}/st/refuse")
    assert refused.value.response.status_code == 403


# -- dropins only: what uvicorn has no equivalent for, or does otherwise

def test_the_denial_extension_is_advertised(dropins_server: WebProcess) -> None:
    with connect(f"ws://127.0.0.1:{dropins_server.port}/chat") as ws:
        assert json.loads(ws.recv(5))["extensions"] == ["websocket.http.response"]


def test_an_application_that_fails_after_accepting_closes_with_1011(
        dropins_server: WebProcess) -> None:
    """uvicorn drops the connection instead, without a close frame."""
    with connect(f"ws://127.0.0.1:{dropins_server.port}/fail") as ws, \
            pytest.raises(ConnectionClosed) as closed:
        ws.recv(5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    dropins_server.wait_for_log("RuntimeError: the application broke")


def test_reading_pauses_while_the_application_lags_behind(project: Path) -> None:
    """48 MB sent to an application that reads nothing for 2 s: the server stops reading
    instead of holding it all (at most --ws-max-size waits, then the socket buffers fill)."""
    with WebProcess(["--asgi", "wsapps:app", *KEEPALIVE], cwd=project) as server, \
            connect(f"ws://127.0.0.1:{server.port}/slow?count=48", compression=None) as ws:
        assert server.process is not None
        before = peak_memory(server.process.pid)
        message = os.urandom(1_000_000)
        for _ in range(48):
            ws.send(message)
        assert ws.recv(30) == str(48 * 1_000_000)
        assert peak_memory(server.process.pid) - before < 20 * 1024 * 1024


def test_frames_sent_with_the_handshake_are_kept(dropins_server: WebProcess) -> None:
    """A client may send its first frames right behind its request head, in the same
    packet: they are kept until the application accepts, then read."""
    client, head = handshake("/watch/eager")
    with socket.create_connection(("127.0.0.1", dropins_server.port), timeout=10) as sock:
        # wsproto's handshake refuses to make a frame before the 101: a bare frame encoder.
        frame = Connection(ConnectionType.CLIENT).send(TextMessage(data="early"))
        sock.sendall(head + frame)
        # The handshake's events come first; the echo follows.
        seen = read_events(sock, client, AcceptConnection)
        seen += read_events(sock, client, TextMessage)
        assert [e.data for e in seen if isinstance(e, TextMessage)] == ["early"]


def test_text_that_is_not_utf8_closes_with_1007(dropins_server: WebProcess) -> None:
    client, head = handshake("/watch/garbled")
    mask = b"\x01\x02\x03\x04"
    garbled = bytes([0x81, 0x82]) + mask + bytes(b ^ mask[i] for i, b in enumerate(b"\xff\xfe"))
    with socket.create_connection(("127.0.0.1", dropins_server.port), timeout=10) as sock:
        sock.sendall(head)
        read_events(sock, client, AcceptConnection)
        sock.sendall(garbled)
        seen = read_events(sock, client, CloseConnection)
        assert [e.code for e in seen if isinstance(e, CloseConnection)] == [1007]
        assert read_until_closed(sock, 10) == b""  # and the server hangs up
    assert wait_for_events(dropins_server.port, "garbled")[1]["code"] == 1007


def test_a_client_that_answers_no_ping_is_dropped(dropins_server: WebProcess) -> None:
    client, head = handshake("/watch/deaf")
    with socket.create_connection(("127.0.0.1", dropins_server.port), timeout=10) as sock:
        sock.sendall(head)
        seen = read_events(sock, client, CloseConnection, timeout=15)  # never answers
    assert any(isinstance(event, Ping) for event in seen)
    assert [e.code for e in seen if isinstance(e, CloseConnection)] == [1011]
    assert wait_for_events(dropins_server.port, "deaf")[1]["code"] == 1011


def test_bad_handshakes_are_answered_without_the_application(
        dropins_server: WebProcess) -> None:
    base = ("GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
    key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    answer = raw_exchange(dropins_server.port, (base + key + "Sec-WebSocket-Version: 8\r\n\r\n")
                          .encode())
    assert status_of(answer) == 426 and b"Sec-WebSocket-Version: 13" in answer
    answer = raw_exchange(dropins_server.port, (base + "Sec-WebSocket-Key: short\r\n"
                                                "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    assert status_of(answer) == 400


def test_stopping_closes_websockets_with_1001_and_files_answer_upgrades_as_http(
        project: Path, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<h1>files</h1>")
    (tmp_path / "hello.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'wsgi']\n")
    with WebProcess(["--path", str(tmp_path)]) as files, \
            WebProcess(["--wsgi", "hello:app"], cwd=tmp_path) as wsgi, \
            WebProcess(["--asgi", "wsapps:app", "--no-ws-deflate"], cwd=project) as asgi:
        for server in (files, wsgi):
            with pytest.raises(InvalidStatus) as plain:
                connect(f"ws://127.0.0.1:{server.port}/")
            assert plain.value.response.status_code == 200
            assert plain.value.response.body in (b"<h1>files</h1>", b"wsgi")
        with connect(f"ws://127.0.0.1:{asgi.port}/st/echo?id=stop") as ws:
            assert ws.response is not None  # and no compression, with --no-ws-deflate:
            assert "sec-websocket-extensions" not in ws.response.headers
            ws.send("before the stop")
            assert ws.recv(5) == "before the stop"
            asgi.terminate()
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert asgi.stop() == 0


LATE_ACCEPT_APP = '''
import asyncio
import pathlib


async def app(scope, receive, send):
    """Accepts a WebSocket only after a while: long enough for the server to start stopping."""
    if scope["type"] == "websocket":
        await receive()
        pathlib.Path("called").touch()
        await asyncio.sleep(2)
        await send({"type": "websocket.accept"})
        await receive()
'''


def test_a_websocket_accepted_while_the_server_stops_gets_503(tmp_path: Path) -> None:
    (tmp_path / "late.py").write_text(LATE_ACCEPT_APP)
    with WebProcess(["--asgi", "late:app"], cwd=tmp_path) as late, \
            socket.create_connection(("127.0.0.1", late.port), timeout=10) as sock:
        _client, request = handshake("/late")
        sock.sendall(request)
        assert wait_until((tmp_path / "called").exists, 10)   # waiting before its accept
        late.terminate()
        answer = read_until_closed(sock, 10)
        assert status_of(answer) == 503, answer[:200]
        assert late.stop() == 0
