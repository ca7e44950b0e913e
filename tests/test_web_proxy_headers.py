"""Behind a proxy: ``--proxy-headers``, ``--forwarded-allow-ips`` and ``--root-path`` under
real ``dropins web`` processes, with WSGI, ASGI (Starlette) and WebSocket applications.

The tests connect from 127.0.0.1 and play the proxy: they write the headers a proxy would.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from _web_helpers import WebProcess, read_until_closed
from conftest import run_dropins, write_tree

APPS = """
    import json

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute


    def wsgi(environ, start_response):
        keys = ["REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "HTTP_HOST", "SCRIPT_NAME",
                "PATH_INFO"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({key: environ.get(key) for key in keys}).encode()]


    async def items(request):
        scope = request.scope
        return JSONResponse({"client": list(scope["client"]), "scheme": scope["scheme"],
                             "url": str(request.url), "path": scope["path"],
                             "root_path": scope["root_path"],
                             "host": request.headers.get("host")})


    async def socket(websocket):
        await websocket.accept()
        await websocket.send_json({"client": websocket.scope["client"][0],
                                   "scheme": websocket.scope["scheme"],
                                   "url": str(websocket.url)})
        await websocket.close()


    asgi = Starlette(routes=[Route("/items", items), WebSocketRoute("/socket", socket)])
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("proxy"), {"proxied.py": APPS})


def serve(project: Path, *args: str) -> WebProcess:
    return WebProcess(["--proxy-headers", *args], cwd=project)


@pytest.fixture(scope="module")
def wsgi(project: Path) -> Iterator[WebProcess]:
    """Trusting the default, 127.0.0.1."""
    with serve(project, "--wsgi", "proxied:wsgi", "--root-path", "/api/") as server:
        yield server


@pytest.fixture(scope="module")
def asgi(project: Path) -> Iterator[WebProcess]:
    """Trusting this machine and a network of proxies."""
    with serve(project, "--asgi", "proxied:asgi", "--root-path", "/api",
               "--forwarded-allow-ips", "127.0.0.1, 10.0.0.0/8") as server:
        yield server


def get(server: WebProcess | Path, path: str,
        headers: dict[str, str] | list[tuple[str, str]]) -> dict[str, Any]:
    """GET over a raw socket (TCP, or the unix socket at a path), so that headers can
    repeat and be as malformed as wanted."""
    pairs = headers.items() if isinstance(headers, dict) else headers
    head = f"GET {path} HTTP/1.1\r\nHost: backend:8000\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in pairs)
    if isinstance(server, Path):
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(10)
        sock.connect(str(server))
    else:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    with sock:
        sock.sendall((head + "\r\n").encode("latin-1"))
        raw = read_until_closed(sock)
    status = raw.split(b" ", 2)[1]
    assert status == b"200", raw
    return dict(json.loads(raw.partition(b"\r\n\r\n")[2]))


def test_wsgi_gets_client_scheme_host_and_script_name(wsgi: WebProcess) -> None:
    seen = get(wsgi, "/items", {"X-Forwarded-For": "203.0.113.9",
                                "X-Forwarded-Proto": "https", "X-Forwarded-Host": "example.com"})
    assert seen == {"REMOTE_ADDR": "203.0.113.9", "REMOTE_PORT": "0",
                    "wsgi.url_scheme": "https", "HTTP_HOST": "example.com",
                    "SCRIPT_NAME": "/api", "PATH_INFO": "/items"}
    wsgi.wait_for_log(r'dropins\.web\.access: 203\.0\.113\.9 - - .*"GET /items HTTP/1\.1" 200')
    plain = get(wsgi, "/items", {})
    assert (plain["REMOTE_ADDR"], plain["wsgi.url_scheme"], plain["HTTP_HOST"]) == \
        ("127.0.0.1", "http", "backend:8000")


def test_asgi_gets_them_and_frameworks_build_urls_with_them(asgi: WebProcess) -> None:
    seen = get(asgi, "/items?q=1", {"X-Forwarded-For": "203.0.113.9",
                                    "X-Forwarded-Proto": "https",
                                    "X-Forwarded-Host": "example.com"})
    assert seen == {"client": ["203.0.113.9", 0], "scheme": "https",
                    "url": "https://example.com/api/items?q=1", "path": "/api/items",
                    "root_path": "/api", "host": "example.com"}


def test_websockets_get_them_too(asgi: WebProcess) -> None:
    with connect(f"ws://127.0.0.1:{asgi.port}/socket",
                 additional_headers={"X-Forwarded-For": "198.51.100.7",
                                     "X-Forwarded-Proto": "https"}) as ws:
        seen = json.loads(ws.recv(5))
    assert seen["client"] == "198.51.100.7" and seen["scheme"] == "wss"
    assert seen["url"].startswith("wss://") and seen["url"].endswith("/api/socket")


def test_the_client_is_the_right_most_address_that_is_not_a_trusted_proxy(
        asgi: WebProcess) -> None:
    # 6.6.6.6 is what the client wrote itself; 203.0.113.9 is who reached the first proxy
    # (10.1.2.3), which reached the second (this machine).
    hops = "6.6.6.6, 203.0.113.9, 10.1.2.3"
    assert get(asgi, "/items", {"X-Forwarded-For": hops})["client"] == ["203.0.113.9", 0]
    # The same list split over several headers; the scheme at the client's place.
    seen = get(asgi, "/items", [("X-Forwarded-For", "6.6.6.6, 203.0.113.9"),
                                ("X-Forwarded-For", "10.1.2.3"),
                                ("X-Forwarded-Proto", "http, https, http")])
    assert (seen["client"], seen["scheme"]) == (["203.0.113.9", 0], "https")
    # Nothing but proxies: the left-most one.
    assert get(asgi, "/items", {"X-Forwarded-For": "10.9.9.9, 10.1.2.3"})["client"] == \
        ["10.9.9.9", 0]


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-For": "not-an-address"},
    {"X-Forwarded-For": "203.0.113.9, , 10.1.2.3"},
    {"X-Forwarded-For": "203.0.113.9:99999"},
    {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "gopher"},
    {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "evil.com/path"},
    {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "a b"},
    {"X-Forwarded-For": "\u00ff\u00fe"},
])
def test_malformed_headers_are_ignored_as_a_whole(asgi: WebProcess,
                                                 headers: dict[str, str]) -> None:
    seen = get(asgi, "/items", headers)
    assert (seen["client"][0], seen["scheme"], seen["host"]) == \
        ("127.0.0.1", "http", "backend:8000")


def test_headers_from_a_peer_that_is_not_trusted_are_ignored(project: Path) -> None:
    with serve(project, "--asgi", "proxied:asgi",
               "--forwarded-allow-ips", "10.0.0.0/8,::1") as server:
        seen = get(server, "/items", {"X-Forwarded-For": "203.0.113.9",
                                      "X-Forwarded-Proto": "https",
                                      "X-Forwarded-Host": "example.com",
                                      "Forwarded": "for=203.0.113.9;proto=https"})
        assert (seen["client"][0], seen["scheme"], seen["host"]) == \
            ("127.0.0.1", "http", "backend:8000")
        server.wait_for_log(r"dropins\.web\.access: 127\.0\.0\.1 - - .*/items")


def test_a_proxy_on_a_unix_socket_is_trusted_with_unix(project: Path, tmp_path: Path) -> None:
    """``unix`` trusts peers on unix sockets, and only them: TCP from 127.0.0.1 is not."""
    path = tmp_path / "web.sock"
    with serve(project, "--asgi", "proxied:asgi", "--forwarded-allow-ips", "unix",
               "--listen", f"unix:{path}") as server:
        headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
        seen = get(path, "/items", headers)
        assert (seen["client"][0], seen["scheme"]) == ("203.0.113.9", "https")
        assert get(server, "/items", headers)["client"][0] == "127.0.0.1"


def test_rfc_7239_forwarded_and_only_the_kind_asked_for(project: Path) -> None:
    with serve(project, "--asgi", "proxied:asgi", "--proxy-headers-kind", "forwarded",
               "--forwarded-allow-ips", "*") as server:
        seen = get(server, "/items", {
            "Forwarded": 'for="[2001:db8::1]:4711";proto=https;host="example.com:8443", '
                         "for=10.1.2.3;proto=http",
            "X-Forwarded-For": "6.6.6.6"})
        # With "*" every hop is trusted: the left-most is the client, with its own proto/host.
        assert seen["client"] == ["2001:db8::1", 4711]
        assert seen["url"] == "https://example.com:8443/items"
        # X-Forwarded-* are not read in this mode, even alone.
        assert get(server, "/items", {"X-Forwarded-For": "6.6.6.6"})["client"][0] == \
            "127.0.0.1"
        for malformed in ['for="203.0.113.9', "for=203.0.113.9;for=6.6.6.6",
                          "proto=https", "for=203.0.113.9;;", "for=[2001:db8::1"]:
            assert get(server, "/items", {"Forwarded": malformed})["client"][0] == \
                "127.0.0.1", malformed
        assert get(server, "/items", {"Forwarded": "for=unknown"})["client"][0] == "unknown"


@pytest.mark.parametrize(("args", "message"), [
    (["--proxy-headers", "--forwarded-allow-ips", "10.0.0.300"], "is not an IP address"),
    (["--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/33"], "is not a network"),
    (["--proxy-headers", "--forwarded-allow-ips", "127.0.0.1,"], "has an empty entry"),
    (["--proxy-headers", "--forwarded-allow-ips", "127.0.0.1,,::1"], "has an empty entry"),
    (["--proxy-headers", "--forwarded-allow-ips", "10.0.0.1/8"],
     "'10.0.0.1/8' has host bits set: write the network as 10.0.0.0/8"),
    (["--proxy-headers", "--forwarded-allow-ips", "2001:db8::1/32"], "has host bits set"),
    (["--forwarded-allow-ips", "10.0.0.1"], "--forwarded-allow-ips needs --proxy-headers"),
    (["--proxy-headers-kind", "via"], "invalid choice"),
    (["--wsgi", "x:app", "--root-path", "api"], "must be a path such as /api"),
    (["--wsgi", "x:app", "--root-path", "/a b"], "must be a path such as /api"),
    (["--root-path", "/api"], "--root-path is for --wsgi and --asgi"),
])
def test_usage_errors(args: list[str], message: str) -> None:
    result = run_dropins("web", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
