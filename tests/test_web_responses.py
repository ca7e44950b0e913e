"""Response heads from real applications: Content-Length rules (RFC 9110 8.6, 9112 6.3) and the
application's own reason phrase, with plain WSGI/ASGI apps, Flask, Django and Starlette (the
framework apps are in _http_rule_apps.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from _http_rule_apps import FRAMEWORK_APPS, FRAMEWORK_SERVERS
from _web_helpers import WebProcess, raw_exchange
from conftest import write_tree

APPS = {
    **FRAMEWORK_APPS,
    "plain.py": """
        def wsgi(environ, start_response):
            path = environ["PATH_INFO"]
            if path == "/no-content":
                start_response("204 No Content", [("Content-Length", "0")])
                return []
            if path == "/not-modified":
                start_response("304 Not Modified", [("Content-Length", "11"), ("ETag", '"x"')])
                return []
            if path == "/custom":
                start_response("299 Custom Reason", [("Content-Type", "text/plain")])
                return [b"custom"]
            if path == "/bare":  # a status without a reason phrase gets the standard one
                start_response("200", [("Content-Type", "text/plain")])
                return [b"bare"]
            if path == "/stream":
                start_response("200 OK", [("Content-Type", "text/plain")])
                return (part for part in [b"one ", b"two"])
            # A HEAD answered like many apps do: the head of the GET, no body, no length.
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [] if environ["REQUEST_METHOD"] == "HEAD" else [b"hello world"]


        async def asgi(scope, receive, send):
            if scope["type"] != "http":
                return
            path, headers = scope["path"], [(b"content-type", b"text/plain")]
            status, body, more = 200, b"hello asgi", False
            if path == "/no-content":
                status, body, headers = 204, b"", [(b"content-length", b"0")]
            elif path == "/not-modified":
                status, body, headers = 304, b"", [(b"content-length", b"10")]
            elif path == "/custom":
                status, body = 299, b"custom"
            elif path == "/stream":
                more = True
            elif scope["method"] == "HEAD":
                body = b""
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": more})
            if more:
                await send({"type": "http.response.body", "body": b"the end"})
    """,
}


def head_of(raw: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """The status line, the headers (lower-case names) and the body of one raw response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    line, *fields = head.split(b"\r\n")
    headers = {}
    for field in fields:
        name, _, value = field.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return line, headers, body


def ask(server: WebProcess, method: str, path: str) -> tuple[bytes, dict[bytes, bytes], bytes]:
    request = f"{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    raw = raw_exchange(server.port, request.encode())
    assert raw, f"no response to {method} {path}:\n{server.stderr}"
    return head_of(raw)


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("apps"), APPS)


SERVERS = {
    "plain-wsgi": ["--wsgi", "plain:wsgi"],
    "plain-asgi": ["--asgi", "plain:asgi"],
    **FRAMEWORK_SERVERS,
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request: pytest.FixtureRequest, apps: Path) -> Iterator[tuple[str, WebProcess]]:
    with WebProcess(SERVERS[request.param], cwd=apps) as process:
        yield request.param, process


def test_no_content_length_on_204_and_304(server: tuple[str, WebProcess]) -> None:
    name, process = server
    paths = ["/no-content"] + ([] if name in ("flask", "starlette") else ["/not-modified"])
    for path in paths:
        line, headers, body = ask(process, "GET", path)
        assert re.match(rb"HTTP/1\.1 (204|304) ", line), (path, line)
        assert b"content-length" not in headers, (path, headers)
        assert b"transfer-encoding" not in headers, (path, headers)
        assert body == b""


def test_head_has_the_length_the_get_would_have(server: tuple[str, WebProcess]) -> None:
    name, process = server
    path = "/" if name.startswith("plain") else "/text"
    _, get_headers, get_body = ask(process, "GET", path)
    line, head_headers, head_body = ask(process, "HEAD", path)
    assert line.startswith(b"HTTP/1.1 200 ")
    assert head_body == b""
    if name.startswith("plain"):
        # The application gave neither a body nor a length: the GET's length is unknown.
        assert b"content-length" not in head_headers, head_headers
        assert get_headers[b"content-length"] == b"%d" % len(get_body)
    elif name == "django-wsgi":
        # Django's response is an iterable, not a list: its GET is streamed, so no length.
        assert b"content-length" not in get_headers and b"content-length" not in head_headers
    else:
        assert head_headers[b"content-length"] == get_headers[b"content-length"] \
            == b"%d" % len(get_body)


def test_head_of_a_streamed_response_has_no_length(server: tuple[str, WebProcess]) -> None:
    _, process = server
    _, get_headers, _ = ask(process, "GET", "/stream")
    assert b"content-length" not in get_headers  # streamed: chunked
    assert get_headers.get(b"transfer-encoding") == b"chunked"
    line, headers, body = ask(process, "HEAD", "/stream")
    assert line.startswith(b"HTTP/1.1 200 ")
    assert b"content-length" not in headers, headers
    assert body == b""


def test_the_applications_reason_phrase_is_kept(server: tuple[str, WebProcess]) -> None:
    name, process = server
    if name == "starlette":
        pytest.skip("Starlette has no way to give a reason phrase")
    line, _, body = ask(process, "GET", "/custom")
    if name.endswith("asgi"):
        # ASGI has no reason phrase: 299 has no standard one, so it stays empty.
        assert line == b"HTTP/1.1 299 "
    else:
        assert line == b"HTTP/1.1 299 Custom Reason"
    assert b"custom" in body
    if name == "plain-wsgi":
        assert ask(process, "GET", "/bare")[0] == b"HTTP/1.1 200 OK"
