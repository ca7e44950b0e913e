"""RFC 9112 rules for request heads, end to end: Host, absolute-form targets, fragments, versions,
unknown methods, CONNECT and OPTIONS *, chunked HTTP/1.0 bodies, and the log of refusals."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _http_rule_apps import FRAMEWORK_APPS, FRAMEWORK_SERVERS
from _web_helpers import WebProcess, raw_exchange, read_responses, status_of
from conftest import write_tree

APPS = {
    **FRAMEWORK_APPS,
    "echo.py": """
        import json


        def wsgi(environ, start_response):
            seen = {"method": environ["REQUEST_METHOD"], "host": environ.get("HTTP_HOST"),
                    "path": environ["PATH_INFO"], "query": environ["QUERY_STRING"],
                    "version": environ["SERVER_PROTOCOL"],
                    "body": environ["wsgi.input"].read().decode()}
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(seen).encode()]


        async def asgi(scope, receive, send):
            if scope["type"] != "http":
                return
            message = await receive()
            headers = dict(scope["headers"])
            seen = {"method": scope["method"], "host": headers.get(b"host", b"").decode(),
                    "path": scope["path"], "query": scope["query_string"].decode(),
                    "version": "HTTP/" + scope["http_version"],
                    "body": message.get("body", b"").decode()}
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": json.dumps(seen).encode()})
    """,
}


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_tree(tmp_path_factory.mktemp("apps"), APPS)
    (root / "hello.txt").write_text("hello\n")
    return root


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def echo(request: pytest.FixtureRequest, apps: Path) -> Iterator[WebProcess]:
    with WebProcess([f"--{request.param}", f"echo:{request.param}"], cwd=apps) as process:
        yield process


@pytest.fixture(scope="module")
def static(apps: Path) -> Iterator[WebProcess]:
    with WebProcess(["--path", str(apps)]) as process:
        yield process


def send(server: WebProcess, head: str, body: bytes = b"") -> bytes:
    return raw_exchange(server.port, head.replace("\n", "\r\n").encode() + body)


def seen(raw: bytes) -> dict[str, str]:
    """What the echo application saw, from its JSON answer (chunked or not)."""
    assert status_of(raw) == 200, raw
    head, _, body = raw.partition(b"\r\n\r\n")
    if b"\r\nTransfer-Encoding: chunked" in head:
        parts = []
        while (size := int(body.partition(b"\r\n")[0], 16)) > 0:
            start = body.index(b"\r\n") + 2
            parts.append(body[start:start + size])
            body = body[start + size + 2:]
        body = b"".join(parts)
    return dict(json.loads(body))


def test_host_is_required_once_on_http_1_1(echo: WebProcess) -> None:
    assert status_of(send(echo, "GET /x HTTP/1.1\nConnection: close\n\n")) == 400
    assert status_of(send(echo, "GET /x HTTP/1.1\nHost: a\nHost: b\nConnection: close\n\n")) \
        == 400
    assert status_of(send(echo, "GET /x HTTP/1.0\nHost: a\nHost: b\n\n")) == 400
    # HTTP/1.0 had no Host header.
    assert seen(send(echo, "GET /x HTTP/1.0\n\n"))["path"] == "/x"
    assert seen(send(echo, "GET /x HTTP/1.1\nHost: a\nConnection: close\n\n"))["host"] == "a"


def test_an_absolute_form_target_names_the_host(echo: WebProcess) -> None:
    raw = send(echo, "GET http://example.com:8000/x/y?q=1 HTTP/1.1\nHost: other\n"
                     "Connection: close\n\n")
    assert seen(raw) | {"body": ""} == {"method": "GET", "host": "example.com:8000",
                                       "path": "/x/y", "query": "q=1", "version": "HTTP/1.1",
                                       "body": ""}
    assert seen(send(echo, "GET http://user@example.com HTTP/1.1\nHost: o\n"
                           "Connection: close\n\n"))["host"] == "example.com"


@pytest.mark.parametrize("name", ["flask", "django-wsgi", "django-asgi", "starlette"])
def test_frameworks_see_the_absolute_form_host_and_no_fragment(apps: Path, name: str) -> None:
    with WebProcess(FRAMEWORK_SERVERS[name], cwd=apps) as server:
        raw = send(server, "GET http://example.com/echo?q=1 HTTP/1.1\nHost: other\n"
                           "Connection: close\n\n")
        assert seen(raw) == {"method": "GET", "host": "example.com", "path": "/echo",
                             "query": "q=1"}
        raw = send(server, "GET /echo?a=1#frag HTTP/1.1\nHost: h\nConnection: close\n\n")
        assert seen(raw)["query"] == "a=1"
        # A method the framework does not route is its to refuse: it gets the request.
        raw = send(server, "BREW /echo HTTP/1.1\nHost: h\nConnection: close\n\n")
        assert status_of(raw) == 405, raw


def test_a_fragment_never_reaches_the_path(echo: WebProcess, static: WebProcess) -> None:
    assert seen(send(echo, "GET /x#frag HTTP/1.1\nHost: a\nConnection: close\n\n"))["path"] \
        == "/x"
    answer = seen(send(echo, "GET /x?a=1#f?g HTTP/1.1\nHost: a\nConnection: close\n\n"))
    assert (answer["path"], answer["query"]) == ("/x", "a=1")
    assert status_of(send(static, "GET /hello.txt#top HTTP/1.1\nHost: a\n"
                                  "Connection: close\n\n")) == 200


def test_versions(echo: WebProcess) -> None:
    for version in ("2.0", "3.0", "0.9"):
        raw = send(echo, f"GET /x HTTP/{version}\nHost: a\n\n")
        assert status_of(raw) == 505, (version, raw)
        assert b"Connection: close\r\n" in raw
    # A higher HTTP/1 minor version is served as the highest one known.
    assert seen(send(echo, "GET /x HTTP/1.2\nHost: a\nConnection: close\n\n"))["version"] \
        == "HTTP/1.1"


def test_an_unknown_method_reaches_the_application(echo: WebProcess) -> None:
    answer = seen(send(echo, "BREW /pot HTTP/1.1\nHost: a\nContent-Length: 3\n"
                             "Connection: close\n\n", b"tea"))
    assert (answer["method"], answer["path"], answer["body"]) == ("BREW", "/pot", "tea")
    # ... also when its name arrives in pieces, and on a kept-alive connection.
    with socket.create_connection(("127.0.0.1", echo.port), timeout=5) as sock:
        sock.sendall(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
        first = sock.recv(65536)
        assert b'"/first"' in first
        sock.sendall(b"BR")
        time.sleep(0.2)
        sock.sendall(b"EW /second HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert seen(data)["method"] == "BREW"
    # ... and when pipelined behind other requests in one write, bodies included.
    with socket.create_connection(("127.0.0.1", echo.port), timeout=5) as sock:
        sock.sendall(b"POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                     b"GET /two HTTP/1.1\r\nHost: a\r\n\r\n"
                     b"BREW /three HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\ntea"
                     b"MUNCH /four HTTP/1.1\r\nHost: a\r\n\r\n"
                     b"GET /five HTTP/1.1\r\nHost: a\r\n\r\n")
        answers = [json.loads(response.body) for response in read_responses(sock, 5)]
    assert [(answer["method"], answer["path"], answer["body"]) for answer in answers] == [
        ("POST", "/one", "hello"), ("GET", "/two", ""), ("BREW", "/three", "tea"),
        ("MUNCH", "/four", ""), ("GET", "/five", "")]
    # Not a token: not a method.
    assert status_of(send(echo, "BR(EW /x HTTP/1.1\nHost: a\n\n")) == 400


def test_thousands_of_pipelined_unknown_methods_in_one_read(echo: WebProcess) -> None:
    count = 1500
    with socket.create_connection(("127.0.0.1", echo.port), timeout=30) as sock:
        sock.sendall(b"BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n" * count)
        answers = [json.loads(response.body) for response in read_responses(sock, count, 60)]
    assert {(answer["method"], answer["path"]) for answer in answers} == {("BREW", "/pot")}
    assert len(answers) == count
    assert "Traceback" not in echo.stderr


def test_an_unknown_method_keeps_the_status_of_its_refusal(echo: WebProcess) -> None:
    assert status_of(send(echo, f"BREW /{'t' * 20_000} HTTP/1.1\nHost: a\n\n")) == 414
    headers = "".join(f"X-{index}: v\n" for index in range(200))
    assert status_of(send(echo, f"BREW / HTTP/1.1\nHost: a\n{headers}\n")) == 431
    headers = f"X-Big: {'v' * 70_000}\n"
    assert status_of(send(echo, f"BREW / HTTP/1.1\nHost: a\n{headers}\n")) == 431


@pytest.mark.parametrize(("first", "rest"), [("PURG", "EX"), ("BR", "EW"), ("P", "URGEX")])
def test_an_unknown_method_split_between_reads(echo: WebProcess, first: str, rest: str) -> None:
    """Its first bytes may be the start of a method httptools knows (PURG, of PURGE)."""
    with socket.create_connection(("127.0.0.1", echo.port), timeout=5) as sock:
        # One small write is one read: once /one is answered, the server has read the first
        # bytes of the method too, alone at the end of that read.
        sock.sendall(f"GET /one HTTP/1.1\r\nHost: a\r\n\r\n{first}".encode())
        (one,) = read_responses(sock, 1)
        sock.sendall(f"{rest} /two HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        (two,) = read_responses(sock, 1)
        # ... and at the start of a read, right after an answer.
        sock.sendall(first.encode())
        sock.sendall(f"{rest} /three HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        (three,) = read_responses(sock, 1)
    assert [json.loads(response.body)["method"] for response in (one, two, three)] == [
        "GET", first + rest, first + rest]


def test_static_files_refuse_unknown_methods_with_allow(static: WebProcess) -> None:
    raw = send(static, "BREW /hello.txt HTTP/1.1\nHost: a\nConnection: close\n\n")
    assert status_of(raw) == 405
    assert b"\r\nAllow: GET, HEAD\r\n" in raw


def test_connect_and_options_star(echo: WebProcess, static: WebProcess) -> None:
    raw = send(echo, "CONNECT example.com:443 HTTP/1.1\nHost: example.com:443\n\n")
    assert status_of(raw) == 405
    assert re.search(rb"\r\nAllow: GET, HEAD, POST, [A-Z, ]+\r\n", raw), raw
    raw = send(echo, "OPTIONS * HTTP/1.1\nHost: a\nConnection: close\n\n")
    assert status_of(raw) == 200
    assert re.search(rb"\r\nAllow: GET, HEAD, POST, [A-Z, ]+\r\n", raw), raw
    assert b"\r\nContent-Length: 0\r\n" in raw
    raw = send(static, "OPTIONS * HTTP/1.1\nHost: a\nConnection: close\n\n")
    assert status_of(raw) == 200 and b"\r\nAllow: GET, HEAD, OPTIONS\r\n" in raw


@pytest.mark.parametrize("method", ["GET", "POST", "BREW"])
def test_the_asterisk_target_is_for_options_only(echo: WebProcess, method: str) -> None:
    assert status_of(send(echo, f"{method} * HTTP/1.1\nHost: a\nContent-Length: 0\n\n")) == 400


def test_a_chunked_body_on_http_1_0_is_refused(echo: WebProcess) -> None:
    raw = send(echo, "POST /x HTTP/1.0\nTransfer-Encoding: chunked\n\n", b"3\r\nabc\r\n0\r\n\r\n")
    assert status_of(raw) == 400
    assert raw.count(b"HTTP/1.1 ") == 1  # and nothing of the body is read as a request


def test_refused_requests_are_logged_with_their_request_line(echo: WebProcess) -> None:
    send(echo, "GET /too-new HTTP/2.0\nHost: a\n\n")
    echo.wait_for_log(r'"GET /too-new HTTP/2\.0" 505 ')
    send(echo, "GET /no-host HTTP/1.1\n\n")
    echo.wait_for_log(r'"GET /no-host HTTP/1\.1" 400 ')
    headers = "".join(f"X-{index}: v\n" for index in range(120))
    send(echo, f"GET /many-headers HTTP/1.1\nHost: a\n{headers}\n")
    echo.wait_for_log(r'"GET /many-headers HTTP/1\.1" 431 ')
