"""The reverse proxy, ``--proxy PREFIX=URL``, end to end: a real front ``dropins web`` forwarding
to real backends (``dropins web --asgi`` on TCP and on a unix socket, and uvicorn), with
http.client, raw sockets and the ``websockets`` client.

The streaming tests prove that bodies are not buffered whole: the backend's progress is read
directly from it while the transfer through the proxy is held half-way.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from _proxy_apps import BACKEND_APP, FRONT_APP
from _web_helpers import WebProcess, read_responses, wait_until
from conftest import clean_env, get_free_port, run_dropins, write_tree

BIG = 32 * 1024 * 1024


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("proxy"), {
        "backend.py": BACKEND_APP, "front.py": FRONT_APP, "site/index.html": "static\n"})


@pytest.fixture(scope="module")
def backend(project: Path) -> Iterator[WebProcess]:
    """The backend, on TCP and on the unix socket ``backend.sock``."""
    with WebProcess(["--asgi", "backend:app", "--max-body-size", "64M", "--no-access-log",
                     "--listen", f"unix:{project / 'backend.sock'}"], cwd=project) as server:
        yield server


@pytest.fixture(scope="module")
def uvicorn(project: Path) -> Iterator[int]:
    port = get_free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "backend:app", "--port", str(port),
         "--log-level", "warning"], cwd=project, env=clean_env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: _connects(port), 30), "uvicorn did not start"
        yield port
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


HOP_ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close, X-Backend-Secret\r\n"
              b"X-Backend-Secret: 1\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\n"
              b"Proxy-Authenticate: Basic\r\nX-Kept: yes\r\n\r\nhop")

RAW_ANSWERS = {b"garbage": b"SPLAT\r\n\r\n",
               b"eof": b"HTTP/1.1 200 OK\r\nX-Kept: yes\r\n\r\nuntil the end",
               b"early": b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                         b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
               b"broken": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten.."}


@pytest.fixture(scope="module")
def raw_backend() -> Iterator[int]:
    """A backend on raw sockets, for answers real servers do not give: ``/hop`` gets the
    hop-by-hop headers of HOP_ANSWER (dropins web and uvicorn do not let applications send
    them), ``/garbage`` what is not HTTP, ``/broken`` 10 of the 100 bytes announced, ``/eof``
    a body ended by closing, ``/early`` a 103 before its answer."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            with sock:
                sock.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
                    data += chunk
                target = data.split(b" ", 2)[1] if data.count(b" ") >= 2 else b""
                sock.sendall(RAW_ANSWERS.get(target.rpartition(b"/")[2], HOP_ANSWER))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stopping.set()
    thread.join(5)
    listener.close()


@pytest.fixture(scope="module")
def forgetful_backend() -> Iterator[int]:
    """A backend that answers the first request of each connection with keep-alive, then
    closes the connection when the next request arrives, unanswered: what a backend does
    when its keep-alive timeout ends just as the proxy reuses the connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stopping = threading.Event()

    def answer(sock: socket.socket) -> None:
        with sock:
            sock.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            while length and len(body) < int(length.group(1)) and (chunk := sock.recv(65536)):
                body += chunk
            port = sock.getpeername()[1]
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d" % (
                len(str(port)), port))
            sock.recv(65536)  # the next request: closed without an answer

    def serve() -> None:
        while not stopping.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=answer, args=(sock,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stopping.set()
    thread.join(5)
    listener.close()


@pytest.fixture(scope="module")
def front(project: Path, backend: WebProcess, uvicorn: int, raw_backend: int,
          forgetful_backend: int) -> Iterator[WebProcess]:
    """A WSGI application, with seven proxies beside it."""
    base = f"http://127.0.0.1:{backend.port}"
    with WebProcess(["--wsgi", "front:app", "--max-body-size", "64M",
                     "--proxy", f"/forgetful=http://127.0.0.1:{forgetful_backend}",
                     "--proxy", f"/raw=http://127.0.0.1:{raw_backend}",
                     "--proxy", f"/api={base}/v1", "--proxy", f"/api/v2/={base}/two/",
                     "--proxy", f"/unix=unix:{project / 'backend.sock'}",
                     "--proxy", f"/down=http://127.0.0.1:{get_free_port()}",
                     "--proxy", f"/uv=http://127.0.0.1:{uvicorn}"], cwd=project) as server:
        yield server


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _json(server: WebProcess, path: str, **kwargs: Any) -> Any:
    response = server.request(kwargs.pop("method", "GET"), path, **kwargs)
    assert response.status == 200, response
    return json.loads(response.body)


def test_request_forwarded_with_proxy_headers(front: WebProcess) -> None:
    body = b"x" * 100_000
    seen = _json(front, "/api/items/%41?q=1", method="POST", body=body, headers={
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": "forged.example",
        "Connection": "keep-alive, X-Client-Secret", "X-Client-Secret": "1",
        "Keep-Alive": "timeout=5", "TE": "trailers", "Proxy-Authorization": "Basic eA=="})
    assert (seen["method"], seen["raw_path"], seen["query"]) == ("POST", "/v1/items/%41", "q=1")
    assert seen["size"] == len(body)
    headers = dict(seen["headers"])
    assert len(headers) == len(seen["headers"]), "a header was sent twice"
    host = f"127.0.0.1:{front.port}"
    assert headers["host"] == host
    assert headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"  # what the front server knows, not forged
    assert headers["x-forwarded-host"] == host
    assert headers["x-forwarded-prefix"] == "/api"
    assert headers["forwarded"] == f'for=127.0.0.1;proto=http;host="{host}"'
    for hop in ("x-client-secret", "keep-alive", "te", "proxy-authorization"):
        assert hop not in headers
    assert "connection" not in headers or headers["connection"] != "keep-alive, X-Client-Secret"


def test_hop_by_hop_response_headers_stripped(front: WebProcess) -> None:
    response = front.get("/raw/hop")
    assert (response.status, response.body, response.headers["x-kept"]) == (200, b"hop", "yes")
    assert "connection" not in response.headers  # the backend's "close" is for its connection
    for hop in ("x-backend-secret", "keep-alive", "upgrade", "proxy-authenticate"):
        assert hop not in response.headers
    assert [name for name, _ in response.header_list].count("Server") == 1


def test_body_ended_by_closing_and_interim_answers(front: WebProcess) -> None:
    ended = front.get("/raw/eof")
    assert (ended.status, ended.body, ended.headers["x-kept"]) == (200, b"until the end", "yes")
    early = front.get("/raw/early")
    assert (early.status, early.body) == (200, b"ok") and "link" not in early.headers


def test_bad_or_broken_answers(front: WebProcess) -> None:
    assert front.get("/raw/garbage").status == 502
    front.wait_for_log(r"--proxy http://127\.0\.0\.1:\d+: bad answer from the backend")
    # Broken after the head: the client's connection is aborted, short of the length.
    from _web_helpers import raw_exchange

    raw = raw_exchange(front.port, b"GET /raw/broken HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Content-Length: 100" in head and body == b"only ten.."
    front.wait_for_log(r"the backend closed the connection without the rest of its answer")
    assert "Traceback" not in front.stderr


def test_longest_prefix_wins_beside_the_application(front: WebProcess) -> None:
    assert _json(front, "/api")["raw_path"] == "/v1"
    assert _json(front, "/api/")["raw_path"] == "/v1/"
    assert _json(front, "/api/v2/x")["raw_path"] == "/two/x"
    assert _json(front, "/api/v2")["raw_path"] == "/two"
    assert _json(front, "/api/v2x")["raw_path"] == "/v1/v2x"
    assert _json(front, "/api/a..b/.x")["raw_path"] == "/v1/a..b/.x"
    for climbing in ("/api/../secret", "/api/%2e%2e/secret", "/api/x/..%2fsecret", "/api/./x"):
        assert front.get(climbing).status == 400, climbing
    for path in ("/apix", "/", "/other/api"):
        response = front.get(path)
        assert (response.status, response.body) == (200, f"front {path}".encode())


def test_keep_alive_connections_are_reused(front: WebProcess) -> None:
    ports = {_json(front, "/api/info")["client"][1] for _ in range(6)}
    assert len(ports) == 1, ports
    # Requests pipelined on one client connection, too.
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as sock:
        sock.sendall(b"GET /api/a HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        responses = read_responses(sock, 3)
    assert {json.loads(r.body)["client"][1] for r in responses} == ports


def test_connection_closed_by_the_backend_is_retried_once(front: WebProcess) -> None:
    first = front.get("/forgetful/a")
    # The pooled connection is taken, the backend closes it on the request: a request
    # without a body is sent again, on a new connection.
    second = front.get("/forgetful/b")
    assert (first.status, second.status) == (200, 200)
    assert first.body != second.body  # two backend connections (their client ports)
    # With a body, nothing can be sent again (it was streamed): 502.
    assert front.request("POST", "/forgetful/c", body=b"data").status == 502
    assert "Traceback" not in front.stderr


def test_head_and_http_1_0_through_the_proxy(front: WebProcess) -> None:
    head = front.request("HEAD", "/api/info")
    assert (head.status, head.body) == (200, b"")
    # The length the backend gave for its answer to the HEAD (which names the method).
    assert int(head.headers["content-length"]) > 100
    # On one connection, a HEAD then a GET: the HEAD's answer had no body (else the GET's
    # answer would be read as the rest of it).
    import h11

    client = h11.Connection(h11.CLIENT)
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as sock:
        answers: list[Any] = []
        for method in ("HEAD", "GET"):
            sock.sendall(client.send(h11.Request(method=method, target="/api/info",
                                                 headers=[("Host", "x")]))
                         + client.send(h11.EndOfMessage()))
            while not isinstance(event := client.next_event(), h11.EndOfMessage):
                if event is h11.NEED_DATA:
                    client.receive_data(sock.recv(65536))
                else:
                    answers.append(event)
            client.start_next_cycle()
    statuses = [a.status_code for a in answers if isinstance(a, h11.Response)]
    assert statuses == [200, 200]
    assert json.loads(b"".join(bytes(a.data) for a in answers if isinstance(a, h11.Data)))
    from _web_helpers import raw_exchange

    raw = raw_exchange(front.port, b"GET /api/download?size=65536 HTTP/1.0\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"chunked" not in head.lower()
    assert body == b"x" * 65536  # no length known: ended by closing, as HTTP/1.0 wants


def test_unix_socket_backend(front: WebProcess) -> None:
    seen = _json(front, "/unix/a?b=c")
    # dropins web names a unix-socket peer with an empty address (TCP ones: 127.0.0.1).
    assert (seen["raw_path"], seen["query"], seen["client"]) == ("/a", "b=c", ["", 0])


def test_uvicorn_backend(front: WebProcess) -> None:
    seen = _json(front, "/uv/x", method="PUT", body=b"hello")
    assert (seen["raw_path"], seen["size"]) == ("/x", 5)
    assert dict(seen["headers"])["x-forwarded-prefix"] == "/uv"
    with connect(f"ws://127.0.0.1:{front.port}/uv/ws", open_timeout=10) as websocket:
        websocket.send("through uvicorn")
        assert websocket.recv(timeout=10) == "through uvicorn"


def test_backend_refusing_is_502(front: WebProcess) -> None:
    response = front.get("/down/x")
    assert response.status == 502
    front.wait_for_log(r"WARNING dropins\.web: --proxy http://127\.0\.0\.1:\d+: cannot connect")
    assert "Traceback" not in front.stderr


def test_client_leaving_is_passed_on_to_the_backend(front: WebProcess,
                                                    backend: WebProcess) -> None:
    def count(key: str) -> int:
        return int(_json(backend, "/progress").get(key, 0))

    started, left = count("slow_started"), count("slow_left")
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as sock:
        sock.sendall(b"GET /api/slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(lambda: count("slow_started") > started, 10)
    # The backend sleeps 30 s unless told that its client left: it is told well before.
    assert wait_until(lambda: count("slow_left") > left, 10)
    assert "Traceback" not in front.stderr


def test_upload_streamed_to_the_backend(front: WebProcess, backend: WebProcess) -> None:
    block = b"u" * (1 << 20)
    with socket.create_connection(("127.0.0.1", front.port), timeout=30) as sock:
        sock.sendall(b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % BIG)
        for _ in range(BIG // len(block) // 4):
            sock.sendall(block)
        # A quarter sent: the backend has most of it before the rest leaves the client.
        assert wait_until(lambda: _json(backend, "/progress")["upload"] >= BIG // 8, 20)
        for _ in range(BIG // len(block) * 3 // 4):
            sock.sendall(block)
        response = read_responses(sock, 1, timeout=30)[0]
    import hashlib

    assert json.loads(response.body) == {"size": BIG,
                                         "sha256": hashlib.sha256(b"u" * BIG).hexdigest()}


def test_download_streamed_to_the_client(front: WebProcess, backend: WebProcess) -> None:
    with socket.create_connection(("127.0.0.1", front.port), timeout=30) as sock:
        sock.sendall(b"GET /api/download?size=%d HTTP/1.1\r\nHost: x\r\n"
                     b"Connection: close\r\n\r\n" % BIG)
        received = bytearray()
        # The backend holds back after a quarter: that much reaches the client meanwhile.
        deadline = time.monotonic() + 20
        while len(received) < BIG // 8 and time.monotonic() < deadline:
            received += sock.recv(1 << 20)
        assert len(received) >= BIG // 8
        assert _json(backend, "/progress")["download"] < BIG
        _json(backend, "/release")
        while chunk := sock.recv(1 << 20):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
    assert body.endswith(b"0\r\n\r\n") and body.count(b"x") == BIG


def test_websocket_through_the_proxy(front: WebProcess) -> None:
    url = f"ws://127.0.0.1:{front.port}/api/ws"
    with connect(url, subprotocols=["chat"], open_timeout=10) as websocket:  # type: ignore[list-item]
        assert websocket.subprotocol == "chat"
        websocket.send("hello")
        assert websocket.recv(timeout=10) == "hello"
        websocket.send(b"\x00" * 300_000)
        assert websocket.recv(timeout=10) == b"\x00" * 300_000
        websocket.send("close")
        with pytest.raises(ConnectionClosed) as closed:
            websocket.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "asked")
    # The client closing: the proxy passes the close handshake on, and stays up.
    with connect(url, open_timeout=10) as websocket:
        websocket.send("again")
        assert websocket.recv(timeout=10) == "again"
    assert front.get("/api/info").status == 200


def test_static_files_beside_a_slow_backend_504(project: Path, backend: WebProcess) -> None:
    with WebProcess(["--path", "site", "--proxy-timeout", "1",
                     "--proxy", f"/b=http://127.0.0.1:{backend.port}"], cwd=project) as server:
        assert server.get("/").body == b"static\n"
        response = server.get("/b/slow", )
        assert response.status == 504
        server.wait_for_log(r"--proxy http://127\.0\.0\.1:\d+: the backend sent no answer")
        assert _json(server, "/b/info")["raw_path"] == "/info"
        # SIGTERM with a WebSocket tunnel open: it is closed, the server does not wait on it.
        with connect(f"ws://127.0.0.1:{server.port}/b/ws", open_timeout=10) as websocket:
            websocket.send("before")
            assert websocket.recv(timeout=10) == "before"
            server.stop()
            with pytest.raises(ConnectionClosed):
                websocket.recv(timeout=10)
    assert server.returncode == 0 and "Traceback" not in server.stderr
    assert "still busy" not in server.stderr


@pytest.mark.parametrize(("spec", "message"), [
    ("api=http://127.0.0.1:1", "the prefix must be a path such as /api"),
    ("/api", "is not PREFIX=URL"),
    ("/api=ftp://127.0.0.1", "is not a backend URL such as http://127.0.0.1:8000/path"),
    ("/api=https://127.0.0.1", "https backends are not supported"),
    ("/api=http://127.0.0.1:99999", "has a port that is not a number from 1 to 65535"),
    ("/api=unix:", "give the socket's path"),
])
def test_usage_errors(spec: str, message: str) -> None:
    result = run_dropins("web", "--proxy", spec)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_prefix_given_twice_is_a_usage_error() -> None:
    result = run_dropins("web", "--proxy", "/a=http://127.0.0.1:1", "--proxy",
                         "/a/=http://127.0.0.1:2")
    assert result.returncode == 2
    assert "the prefix /a is given twice" in result.stderr


def test_auth_applies_and_passwords_stay_here(project: Path, backend: WebProcess) -> None:
    import base64

    with WebProcess(["--auth", "memory:alice:secret",
                     "--proxy", f"/=http://127.0.0.1:{backend.port}"], cwd=project) as server:
        assert server.get("/info").status == 401
        login = "Basic " + base64.b64encode(b"alice:secret").decode()
        seen = _json(server, "/info", headers={"Authorization": login})
        assert seen["raw_path"] == "/info"
        headers = dict(seen["headers"])
        assert "authorization" not in headers and "x-forwarded-prefix" not in headers
