"""WSGI applications under a real ``dropins web --wsgi`` process (PEP 3333 behaviour)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _web_helpers import WebProcess, read_responses, status_of, wait_until
from conftest import run_dropins, write_tree

APPS = """
    import json
    import os
    import threading
    import time

    MARKERS = os.environ["WSGI_MARKERS"]


    def hello(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"Hello, world!"]


    def echo(environ, start_response):
        body = environ["wsgi.input"].read()
        keys = ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
                "CONTENT_LENGTH", "SERVER_PROTOCOL", "REMOTE_ADDR", "HTTP_X_CUSTOM",
                "HTTP_X_TWICE", "wsgi.url_scheme", "wsgi.multithread", "REMOTE_USER",
                "HTTP_COOKIE"]
        data = {key: environ.get(key) for key in keys}
        data["body"] = body.decode("latin-1")
        data["version"] = list(environ["wsgi.version"])
        data["thread"] = threading.current_thread().name
        data["spoofed"] = "HTTP_X_SPOOF" in environ
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(data).encode()]


    class Stream:
        # A streaming response (no Content-Length) whose close() must be called.
        def __init__(self, name):
            self.name = name

        def __iter__(self):
            for index in range(5):
                time.sleep(0.02)
                yield b"part %d\\n" % index

        def close(self):
            with open(os.path.join(MARKERS, self.name), "w") as marker:
                marker.write("closed")


    def stream(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Stream(environ["QUERY_STRING"] or "stream")


    def fail(environ, start_response):
        raise RuntimeError("boom-wsgi-1234")


    def fail_late(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first part"
        raise RuntimeError("late-boom-5678")


    def slow(environ, start_response):
        time.sleep(float(environ["QUERY_STRING"] or "1"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slow done"]


    def no_start(environ, start_response):
        return [b"forgot start_response"]


    def write_callable(environ, start_response):
        write = start_response("201 Created", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"and returned"]


    def flood(environ, start_response):
        # 256 MiB in 1 MiB blocks, counting how many the server asked for.
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        block = b"f" * (1024 * 1024)
        for index in range(256):
            scratch = os.path.join(MARKERS, "flood-count.tmp")
            with open(scratch, "w") as marker:
                marker.write(str(index))
            os.replace(scratch, os.path.join(MARKERS, "flood-count"))  # never seen half-written
            yield block


    def wrong_length(environ, start_response):
        declared, actual = environ["QUERY_STRING"].split("-")
        start_response("200 OK", [("Content-Length", declared)])
        return [b"x" * int(actual)]


    def bad_header_name(environ, start_response):
        start_response("200 OK", [("X Spaced", "1")])
        return [b"never sent"]


    ROUTES = {"/bad-header-name": bad_header_name, "/hello": hello, "/echo": echo,
              "/stream": stream, "/fail": fail,
              "/fail-late": fail_late, "/slow": slow, "/no-start": no_start,
              "/write": write_callable, "/flood": flood, "/wrong-length": wrong_length}


    def app(environ, start_response):
        route = ROUTES.get(environ["PATH_INFO"])
        if route is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no route"]
        return route(environ, start_response)
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wsgi")
    write_tree(root, {"apps.py": APPS})
    (root / "markers").mkdir()
    return root


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[WebProcess]:
    with WebProcess(["--wsgi", "apps:app", "--max-body-size", "1K", "--header-timeout", "2"],
                    cwd=project, env={"WSGI_MARKERS": str(project / "markers")}) as process:
        yield process


def test_hello_world(server: WebProcess) -> None:
    response = server.get("/hello")
    assert (response.status, response.body) == (200, b"Hello, world!")
    assert response.headers["content-length"] == "13"  # computed from the list


def test_dotted_name_spelling(project: Path) -> None:
    with WebProcess(["--wsgi", "apps.hello"], cwd=project,
                    env={"WSGI_MARKERS": str(project / "markers")}) as process:
        assert process.get("/anything").body == b"Hello, world!"


def test_environ(server: WebProcess) -> None:
    connection = server.connection()
    connection.putrequest("POST", "/echo?a=1&b=%2F", skip_accept_encoding=True)
    for name, value in [("Content-Type", "text/x-test"), ("Content-Length", "9"),
                        ("X-Custom", "yes"), ("X-Twice", "1"), ("X-Twice", "2"),
                        ("X_Spoof", "1")]:
        connection.putheader(name, value)
    connection.endheaders(b"body=data")
    data = json.loads(connection.getresponse().read())
    connection.close()
    assert data["REQUEST_METHOD"] == "POST" and data["SCRIPT_NAME"] == ""
    assert data["PATH_INFO"] == "/echo" and data["QUERY_STRING"] == "a=1&b=%2F"
    assert data["CONTENT_TYPE"] == "text/x-test" and data["CONTENT_LENGTH"] == "9"
    assert data["body"] == "body=data"
    assert data["HTTP_X_CUSTOM"] == "yes" and data["HTTP_X_TWICE"] == "1,2"
    assert data["spoofed"] is False  # underscores in names are dropped
    assert data["SERVER_PROTOCOL"] == "HTTP/1.1" and data["REMOTE_ADDR"] == "127.0.0.1"
    assert data["wsgi.url_scheme"] == "http" and data["version"] == [1, 0]
    assert data["wsgi.multithread"] is True and data["REMOTE_USER"] is None
    assert data["thread"].startswith("dropins-web")  # not the event loop's thread


def test_absolute_form_target_and_repeated_cookies(server: WebProcess) -> None:
    answer = server.raw(b"GET http://example.com/echo?x=1 HTTP/1.1\r\nHost: example.com\r\n"
                        b"Cookie: a=1\r\nCookie: b=2\r\nConnection: close\r\n\r\n")
    data = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert data["PATH_INFO"] == "/echo" and data["QUERY_STRING"] == "x=1"
    assert data["HTTP_COOKIE"] == "a=1; b=2"  # cookies join with "; " (RFC 6265), not ","


def test_invalid_response_header_name_gives_500(server: WebProcess) -> None:
    response = server.get("/bad-header-name")
    assert response.status == 500 and b"never sent" not in response.body


def test_percent_decoded_path_info(server: WebProcess) -> None:
    data = json.loads(server.get("/%65cho").body)
    assert data["PATH_INFO"] == "/echo"


def test_chunked_request_body(server: WebProcess) -> None:
    raw = server.raw(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Connection: close\r\n\r\n"
                     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert status_of(raw) == 200
    data = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert data["body"] == "hello world" and data["CONTENT_LENGTH"] == "11"


def test_expect_100_continue(server: WebProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"data")
        (response,) = read_responses(sock, 1)
    assert json.loads(response.body)["body"] == "data"


def test_body_limit(server: WebProcess) -> None:
    too_big = b"x" * 2000
    raw = server.raw(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + too_big)
    assert status_of(raw) == 413
    chunked = b"".join(b"100\r\n" + b"y" * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
    raw = server.raw(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + chunked)
    assert status_of(raw) == 413
    assert server.get("/hello").status == 200


def test_streaming_response_is_chunked_and_closed(server: WebProcess, project: Path) -> None:
    marker = project / "markers" / "stream-1"
    raw = server.raw(b"GET /stream?stream-1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"".join(b"7\r\npart %d\n\r\n" % index for index in range(5)) + b"0\r\n\r\n"
    assert wait_until(marker.exists)


def test_http10_streaming_ends_with_close(server: WebProcess) -> None:
    raw = server.raw(b"GET /stream?stream-10 HTTP/1.0\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"chunked" not in head and b"Connection: close" in head
    assert body == b"".join(b"part %d\n" % index for index in range(5))


def test_write_callable(server: WebProcess) -> None:
    response = server.get("/write")
    assert (response.status, response.body) == (201, b"written and returned")


def test_failing_app_gives_500_and_a_logged_traceback(server: WebProcess) -> None:
    response = server.get("/fail")
    assert response.status == 500 and b"boom" not in response.body  # no details to clients
    server.wait_for_log(r"error in WSGI application")
    server.wait_for_log(r"RuntimeError: boom-wsgi-1234")
    assert server.get("/hello").status == 200  # the server lives on


def test_app_failing_mid_response_closes_the_connection(server: WebProcess) -> None:
    raw = server.raw(b"GET /fail-late HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    assert status_of(raw) == 200 and b"first part" in raw
    assert not raw.endswith(b"0\r\n\r\n")  # not passed off as complete
    server.wait_for_log(r"RuntimeError: late-boom-5678")
    assert server.get("/hello").status == 200


def test_missing_start_response_gives_500(server: WebProcess) -> None:
    assert server.get("/no-start").status == 500


def test_requests_run_concurrently(server: WebProcess) -> None:
    import threading

    results: list[int] = []

    def call() -> None:
        results.append(server.get("/slow?0.5").status)

    threads = [threading.Thread(target=call) for _ in range(4)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [200] * 4
    assert time.monotonic() - start < 1.9  # four 0.5 s requests overlapped


@pytest.mark.parametrize(("spec", "message"), [
    ("nosuchmodule:app", "no module named 'nosuchmodule'"),
    ("apps:missing", "module 'apps' has no attribute 'missing'"),
    ("apps:MARKERS", "str object is not callable"),
    ("not a name", "expected 'module:name' or 'module.name'"),
    ("broken:app", "importing broken failed: NameError: name 'undefined_name' is not defined "
                   "(broken.py:2)"),
    ("unparsable:app", "importing unparsable failed: SyntaxError: invalid syntax "
                       "(unparsable.py:1)\n"),  # the place once
])
def test_bad_application_name(project: Path, spec: str, message: str) -> None:
    write_tree(project, {"broken.py": "x = 1\ny = undefined_name\n",
                         "unparsable.py": "def app(:\n"})
    result = run_dropins("web", "--wsgi", spec, "--listen", "tcp:0:interface=127.0.0.1",
                         cwd=project, env={"WSGI_MARKERS": str(project)}, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_slow_reader_pauses_a_streaming_app(server: WebProcess, project: Path) -> None:
    counter = project / "markers" / "flood-count"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(b"GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(counter.exists)
        time.sleep(1.0)  # read nothing: the server must stop asking the app for more
        produced = int(counter.read_text())
        assert produced < 32, f"{produced} MiB produced for a client that reads nothing"
        sock.settimeout(5)
        received = 0
        while received < 40 * 1024 * 1024:  # reading lets the application go on
            chunk = sock.recv(1024 * 1024)
            assert chunk
            received += len(chunk)
    assert int(counter.read_text()) > produced


@pytest.mark.parametrize(("query", "body"), [("100-5", b"x" * 5), ("3-10", b"xxx")])
def test_wrong_content_length_from_the_app_closes_the_connection(server: WebProcess,
                                                                 query: str, body: bytes) -> None:
    started = time.monotonic()
    raw = server.raw(f"GET /wrong-length?{query} HTTP/1.1\r\nHost: x\r\n\r\n"
                     f"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n".encode(), timeout=5)
    assert time.monotonic() - started < 3  # closed by the server, not by our timeout
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert rest == body  # never more than announced, and nothing of the next response
