"""Chunked trailer fields never reach applications or the auth check as request headers.

A trailer arrives after the head, so a proxy that checked the head never saw it; were it
merged into the headers, ``Host`` or ``Authorization`` could be smuggled past the proxy.
Each test pipelines a slow request first, so that the chunked one waits until its whole
body (trailer included) has been read before any handler looks at it.
"""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import pytest

from _web_helpers import Response, WebProcess, read_responses
from conftest import write_tree

APPS = """
    import asyncio, json, time

    def wsgi(environ, start_response):
        if environ["PATH_INFO"] == "/slow":
            time.sleep(0.5)
        environ["wsgi.input"].read()
        fields = {key: value for key, value in environ.items() if key.startswith("HTTP_")}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(fields).encode()]

    async def asgi(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["path"] == "/slow":
            await asyncio.sleep(0.5)
        while (await receive()).get("more_body"):
            pass
        fields = [[name.decode(), value.decode()] for name, value in scope["headers"]]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(fields).encode()})
"""

PASSWORD = "s3cret-Pa55-x9"
TOKEN = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()


def slow_then_chunked(trailer: bytes, slow_headers: bytes = b"") -> bytes:
    return (b"GET /slow HTTP/1.1\r\nHost: x\r\n" + slow_headers + b"\r\n"
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n" + trailer + b"\r\n")


def pipeline(port: int, data: bytes) -> list[Response]:
    """Send ``data`` in one write; the two responses."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        return read_responses(sock, 2, timeout=10)


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trailerapps")
    write_tree(root, {"trailerapps.py": APPS})
    return root


def test_wsgi_environ_has_no_trailer_fields(apps: Path) -> None:
    with WebProcess(["--wsgi", "trailerapps:wsgi"], cwd=apps) as process:
        _, answer = pipeline(process.port, slow_then_chunked(
            b"Host: evil\r\nAuthorization: Basic " + TOKEN.encode() + b"\r\n"))
    fields = json.loads(answer.body)
    assert answer.status == 200
    assert fields["HTTP_HOST"] == "x" and "HTTP_AUTHORIZATION" not in fields


def test_asgi_scope_has_no_trailer_fields(apps: Path) -> None:
    with WebProcess(["--asgi", "trailerapps:asgi"], cwd=apps) as process:
        _, answer = pipeline(process.port, slow_then_chunked(
            b"Host: evil\r\nX-Smuggled: 1\r\n"))
    assert answer.status == 200
    assert json.loads(answer.body) == [["host", "x"], ["transfer-encoding", "chunked"]]


def test_an_authorization_sent_only_as_a_trailer_is_challenged(apps: Path) -> None:
    authorization = b"Authorization: Basic " + TOKEN.encode() + b"\r\n"
    with WebProcess(["--wsgi", "trailerapps:wsgi", "--auth", f"memory:alice:{PASSWORD}"],
                    cwd=apps) as process:
        responses = pipeline(process.port, slow_then_chunked(
            authorization, slow_headers=authorization))
    assert [response.status for response in responses] == [200, 401]
