"""``dropins web --cgi``: RFC 3875 scripts run by a real server, checked with real clients."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _web_helpers import WebProcess, raw_exchange, status_of
from conftest import run_dropins

SCRIPTS = {
    "env.cgi": "printf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv\n",
    "echo.cgi": "printf 'Content-Type: application/octet-stream\\n'\n"
                "printf 'X-Length: %s\\n\\n' \"$CONTENT_LENGTH\"\ncat\n",
    "status.cgi": "printf 'Status: 418 Short And Stout\\nContent-Type: text/plain\\n\\n'\n"
                  "echo teapot\n",
    "away.cgi": "printf 'Location: https://example.com/elsewhere\\n\\n'\n",
    "local.cgi": "printf 'Location: /hello.txt\\n\\n'\n",
    "loop.cgi": "printf 'Location: /loop.cgi\\n\\n'\n",
    "bad.cgi": "echo 'this is not a header'\necho\n",
    "nohead.cgi": "echo 'Content-Type: text/plain'\n",
    "stderr.cgi": "echo 'oops from the script' >&2\nprintf 'Content-Type: text/plain\\n\\nok'\n",
    "stream.cgi": "printf 'Content-Type: text/plain\\n\\nfirst\\n'\n"
                  "i=0; while [ ! -e \"$QUERY_STRING\" ] && [ $i -lt 200 ]\n"
                  "do sleep 0.05; i=$((i+1)); done\n"
                  "echo second\n",
    # The pid is written (atomically, by a rename) before any output, so that the test can read
    # it as soon as it sees the response.
    "slow.cgi": "echo $$ > \"$QUERY_STRING.new\"; mv \"$QUERY_STRING.new\" \"$QUERY_STRING\"\n"
                "printf 'Content-Type: text/plain\\n\\n'\nexec sleep 60\n",
    "hang.cgi": "echo $$ > \"$QUERY_STRING.new\"; mv \"$QUERY_STRING.new\" \"$QUERY_STRING\"\n"
                "printf 'Content-Type: text/plain\\n\\nfirst\\n'\nexec sleep 60\n",
    "dir/inner.cgi": "printf 'Content-Type: text/plain\\n\\n%s' \"$PATH_INFO\"\n",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cgi-site")
    (root / "hello.txt").write_text("hello\n")
    for name, body in SCRIPTS.items():
        script = root / name
        script.parent.mkdir(exist_ok=True)
        script.write_text("#!/bin/sh\n" + body)
        script.chmod(0o755)
    (root / "source.php").write_text("<?php $password = 'hunter2'; ?>")
    (root / "resource.rpy").write_text("password = 'hunter2'\n")
    (root / "not-executable.cgi").write_text("#!/bin/sh\necho hunter2\n")
    outside = tmp_path_factory.mktemp("cgi-outside")
    (outside / "evil.cgi").write_text("#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nran'\n")
    (outside / "evil.cgi").chmod(0o755)
    (root / "link.cgi").symlink_to(outside / "evil.cgi")
    return root


@pytest.fixture(scope="module")
def server(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    control = tmp_path_factory.mktemp("cgi-control")
    env = {"SECRET_TOKEN": "s3cret"}
    with WebProcess(["--path", str(site), "--cgi", "--cgi-timeout", "3"], env=env) as process:
        process.control = control  # type: ignore[attr-defined]
        yield process


def environ_of(body: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in body.decode().splitlines() if "=" in line)


def test_environment_follows_rfc_3875(server: WebProcess) -> None:
    response = server.get("/dir/inner.cgi/extra/path%20x?q=1")
    assert (response.status, response.body) == (200, b"/extra/path x")
    response = server.request("POST", "/env.cgi/more?a=1&b=2", {
        "X-Custom": "one", "Proxy": "http://attacker:3128", "Authorization": "Basic eDp5",
        "X_Custom": "underscored", "Content-Type": "text/plain"}, body=b"abc")
    assert response.status == 200
    env = environ_of(response.body)
    assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == "/env.cgi"
    assert env["PATH_INFO"] == "/more"
    assert env["QUERY_STRING"] == "a=1&b=2"
    assert env["CONTENT_LENGTH"] == "3" and env["CONTENT_TYPE"] == "text/plain"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["HTTP_X_CUSTOM"] == "one"  # the underscored twin did not overwrite it
    assert "HTTP_PROXY" not in env  # httpoxy
    assert "HTTP_AUTHORIZATION" not in env
    assert "SECRET_TOKEN" not in env  # the server's own environment stays out
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env


def test_body_goes_to_stdin_and_output_comes_back(server: WebProcess) -> None:
    payload = os.urandom(300 * 1024)
    response = server.request("POST", "/echo.cgi", body=payload)
    assert response.status == 200
    assert response.headers["x-length"] == str(len(payload))
    assert response.body == payload
    chunked = raw_exchange(server.port, b"POST /echo.cgi HTTP/1.1\r\nHost: x\r\n"
                           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                           b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert status_of(chunked) == 200
    assert b"X-Length: 11\r\n" in chunked


def test_status_and_location(server: WebProcess) -> None:
    teapot = server.get("/status.cgi")
    assert (teapot.status, teapot.body) == (418, b"teapot\n")
    raw = raw_exchange(server.port, b"GET /status.cgi HTTP/1.1\r\nHost: x\r\n"
                       b"Connection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 418 Short And Stout\r\n")
    away = server.get("/away.cgi")
    assert (away.status, away.headers["location"]) == (302, "https://example.com/elsewhere")
    local = server.get("/local.cgi")  # a local redirect: the server answers for the path
    assert (local.status, local.body) == (200, b"hello\n")
    assert "location" not in local.headers
    assert server.get("/loop.cgi").status == 502


def test_output_is_streamed(server: WebProcess) -> None:
    go: Path = server.control / "go"  # type: ignore[attr-defined]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /stream.cgi?%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                     % os.fsencode(go))
        received = b""
        while b"first\n" not in received:
            chunk = sock.recv(4096)
            assert chunk, received
            received += chunk
        assert b"second" not in received  # the script is still waiting for the file
        go.touch()
        while chunk := sock.recv(4096):
            received += chunk
    assert b"second\n" in received


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists()


def test_client_that_leaves_stops_the_script(server: WebProcess) -> None:
    pidfile: Path = server.control / "hang.pid"  # type: ignore[attr-defined]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /hang.cgi?%s HTTP/1.1\r\nHost: x\r\n\r\n" % os.fsencode(pidfile))
        received = b""
        while b"first\n" not in received:
            chunk = sock.recv(4096)
            assert chunk, received
            received += chunk
    wait_until_gone(int(pidfile.read_text()))
    # Killed because the client left, not by the timeout (whose warning would come first).
    server.get("/hello.txt?after-hang")
    server.wait_for_log(r"GET /hello\.txt\?after-hang")
    assert "hang.cgi: killed after" not in server.stderr


def test_bad_output_is_502_and_stderr_is_logged(server: WebProcess) -> None:
    assert server.get("/bad.cgi").status == 502
    assert server.get("/nohead.cgi").status == 502
    server.wait_for_log(r"bad\.cgi: bad CGI response: not a header line")
    assert server.get("/stderr.cgi").body == b"ok"
    server.wait_for_log(r"WARNING dropins\.web\.cgi: .*stderr\.cgi: oops from the script")


def test_timeout_kills_the_script(server: WebProcess) -> None:
    pidfile: Path = server.control / "slow.pid"  # type: ignore[attr-defined]
    response = server.get(f"/slow.cgi?{pidfile}")
    assert response.status == 504  # headers, but no body yet: the answer can still be 504
    wait_until_gone(int(pidfile.read_text()))
    server.wait_for_log(r"slow\.cgi: killed after --cgi-timeout")


def test_scripts_are_not_served_as_source(server: WebProcess, site: Path) -> None:
    for name in ("source.php", "resource.rpy", "not-executable.cgi"):
        response = server.get("/" + name)
        assert response.status == 403, name
        assert b"hunter2" not in response.body
    assert server.get("/link.cgi").status == 404  # a script outside the folder is not run
    assert server.get("/%2e%2e/evil.cgi").status == 400


def test_without_cgi_scripts_are_403(site: Path) -> None:
    with WebProcess(["--path", str(site)]) as plain:
        for name in ("env.cgi", "ENV.CGI", "source.php", "resource.rpy"):
            response = plain.get("/" + name)
            assert response.status == (404 if name == "ENV.CGI" else 403), name
            assert b"printf" not in response.body and b"hunter2" not in response.body
        assert plain.get("/env.cgi/extra").status == 404
        assert plain.get("/hello.txt").status == 200


def test_cgi_needs_files(tmp_path: Path) -> None:
    result = run_dropins("web", "--cgi", "--wsgi", "x:app", cwd=tmp_path)
    assert result.returncode == 2
    assert "--cgi runs scripts among files" in result.stderr
    assert "Traceback" not in result.stderr
