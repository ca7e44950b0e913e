"""ASGI 3 applications under a real ``dropins web --asgi`` process, lifespan included."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from _web_helpers import WebProcess, read_responses, status_of, wait_until
from conftest import run_dropins, write_tree

APPS = """
    import asyncio
    import json
    import os

    MARKERS = os.environ["ASGI_MARKERS"]


    def mark(name, text="1"):
        with open(os.path.join(MARKERS, name), "w") as marker:
            marker.write(text)


    async def lifespan(scope, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["greeting"] = "from startup"
                mark("startup")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                mark("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return


    async def start(send, status=200, headers=()):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain"), *headers]})


    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            return await lifespan(scope, receive, send)
        path = scope["path"]
        if path == "/hello":
            await start(send)
            await send({"type": "http.response.body", "body": b"Hello, ASGI!"})
        elif path == "/echo":
            body, events = b"", 0
            while True:
                message = await receive()
                events += 1
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            data = {key: scope[key] for key in ("method", "path", "query_string", "raw_path",
                                                "http_version", "scheme", "root_path")}
            data = {key: value.decode() if isinstance(value, bytes) else value
                    for key, value in data.items()}
            data["headers"] = [[name.decode(), value.decode()] for name, value in scope["headers"]]
            data["client"] = scope["client"][0]
            data["state"] = scope["state"].get("greeting")
            data["asgi"] = scope["asgi"]["version"]
            data["body"] = body.decode()
            await start(send, headers=[(b"content-length", str(len(json.dumps(data))).encode())])
            await send({"type": "http.response.body", "body": json.dumps(data).encode()})
        elif path == "/stream":
            await start(send)
            for index in range(5):
                await asyncio.sleep(0.02)
                await send({"type": "http.response.body", "body": b"part %d\\n" % index,
                            "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/forever":
            await start(send)
            try:
                while True:
                    await send({"type": "http.response.body", "body": b"tick\\n" * 1000,
                                "more_body": True})
                    await asyncio.sleep(0.01)
            except OSError:
                mark("forever-stopped")
                raise
        elif path == "/fail":
            raise RuntimeError("boom-asgi-4321")
        elif path == "/fail-late":
            await start(send)
            await send({"type": "http.response.body", "body": b"first part", "more_body": True})
            raise RuntimeError("late-asgi-8765")
        elif path == "/incomplete":
            await start(send)
        else:
            await start(send, 404)
            await send({"type": "http.response.body", "body": b"no route"})


    async def no_lifespan(scope, receive, send):
        if scope["type"] != "http":
            raise ValueError("only http")
        await start(send)
        await send({"type": "http.response.body", "body": b"plain"})


    async def failing_startup(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
            return
        await start(send)
        await send({"type": "http.response.body", "body": b"never"})


    async def crashing_startup(scope, receive, send):
        await receive()
        raise KeyError("missing-setting")
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("asgi")
    write_tree(root, {"asgiapps.py": APPS})
    (root / "markers").mkdir()
    return root


def asgi_env(project: Path) -> dict[str, str]:
    return {"ASGI_MARKERS": str(project / "markers")}


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[WebProcess]:
    with WebProcess(["--asgi", "asgiapps:app", "--max-body-size", "1K"], cwd=project,
                    env=asgi_env(project)) as process:
        yield process


def test_hello_world(server: WebProcess) -> None:
    response = server.get("/hello")
    assert (response.status, response.body) == (200, b"Hello, ASGI!")
    assert response.headers["content-length"] == "12"


def test_scope_and_body(server: WebProcess) -> None:
    response = server.request("POST", "/ech%6F?x=1", {"X-Custom": "yes"}, body=b"payload")
    data = json.loads(response.body)
    assert data["method"] == "POST" and data["path"] == "/echo"
    assert data["raw_path"] == "/ech%6F" and data["query_string"] == "x=1"
    assert data["http_version"] == "1.1" and data["scheme"] == "http"
    assert data["root_path"] == "" and data["client"] == "127.0.0.1"
    assert ["x-custom", "yes"] in data["headers"]
    assert data["body"] == "payload" and data["asgi"] == "3.0"
    assert data["state"] == "from startup"  # lifespan state reaches requests


def test_chunked_body_is_streamed_to_receive(server: WebProcess) -> None:
    raw = server.raw(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Connection: close\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
    assert json.loads(raw.partition(b"\r\n\r\n")[2])["body"] == "abcdef"


def test_body_limit(server: WebProcess) -> None:
    raw = server.raw(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
                     + b"z" * 5000)
    assert status_of(raw) == 413
    server.get("/hello")  # the application's late sends were dropped quietly, not as errors
    assert "Traceback" not in server.stderr.split("413")[-1]


def test_streaming_response(server: WebProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        (response,) = read_responses(sock, 1)
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.body == b"".join(b"part %d\n" % index for index in range(5))
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")  # still alive
        assert read_responses(sock, 1)[0].body == b"Hello, ASGI!"


def test_client_disconnect_stops_a_streaming_app(server: WebProcess, project: Path) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
    assert wait_until((project / "markers" / "forever-stopped").exists, timeout=5)


def test_failing_app(server: WebProcess) -> None:
    response = server.get("/fail")
    assert response.status == 500 and b"boom" not in response.body
    server.wait_for_log(r"RuntimeError: boom-asgi-4321")
    raw = server.raw(b"GET /fail-late HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"first part" in raw and not raw.endswith(b"0\r\n\r\n")
    server.wait_for_log(r"RuntimeError: late-asgi-8765")
    raw = server.raw(b"GET /incomplete HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(raw) == 500
    server.wait_for_log(r"returned without completing the response")
    assert server.get("/hello").status == 200


def test_lifespan_startup_and_shutdown(project: Path) -> None:
    markers = project / "markers"
    for name in ("startup", "shutdown"):
        (markers / name).unlink(missing_ok=True)
    process = WebProcess(["--asgi", "asgiapps:app"], cwd=project, env=asgi_env(project))
    with process:
        assert (markers / "startup").exists()   # before the server said it was ready
        assert not (markers / "shutdown").exists()
    assert process.returncode == 0
    assert (markers / "shutdown").exists()


def test_app_without_lifespan_support_is_served(project: Path) -> None:
    with WebProcess(["--asgi", "asgiapps:no_lifespan"], cwd=project,
                    env=asgi_env(project)) as process:
        assert process.get("/").body == b"plain"


@pytest.mark.parametrize(("name", "message"), [
    ("failing_startup", "application asgiapps:failing_startup: database unreachable"),
    ("crashing_startup", "application asgiapps:crashing_startup: KeyError: 'missing-setting'"),
])
def test_failed_startup_stops_the_command(project: Path, name: str, message: str) -> None:
    result = run_dropins("web", "--asgi", f"asgiapps:{name}", "--listen",
                         "tcp:0:interface=127.0.0.1", cwd=project, env=asgi_env(project),
                         timeout=30)
    assert result.returncode == 1
    assert message in result.stderr
    assert "ready:" not in result.stderr
    assert "Traceback" not in result.stderr.split(message)[-1]
