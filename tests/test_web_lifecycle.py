"""Starting and stopping ``dropins web``: graceful stop, bad options, the missing extra."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from _web_helpers import LISTEN, Response, WebProcess, read_responses
from conftest import clean_env, get_free_port, run_dropins, write_tree

SLOW_APP = """
    import time

    def app(environ, start_response):
        delay = float(environ["QUERY_STRING"] or "0")
        time.sleep(delay)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done after %s" % str(delay).encode()]
"""


@pytest.fixture
def slow_project(tmp_path: Path) -> Path:
    return write_tree(tmp_path, {"slowapp.py": SLOW_APP})


def start_request(process: WebProcess, path: str) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(process.get(path))
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_graceful_stop_finishes_requests_in_flight(slow_project: Path) -> None:
    process = WebProcess(["--wsgi", "slowapp:app"], cwd=slow_project)
    with process:
        idle = socket.create_connection(("127.0.0.1", process.port), timeout=5)
        idle.sendall(b"GET /?0 HTTP/1.1\r\nHost: x\r\n\r\n")
        read_responses(idle, 1)  # now an idle keep-alive connection
        thread, outcome = start_request(process, "/?1.0")
        time.sleep(0.3)  # the slow request is in the application now
        started = time.monotonic()
        process.terminate()
        idle.settimeout(5)
        assert idle.recv(100) == b""  # the idle connection is closed at once...
        assert time.monotonic() - started < 0.7
        idle.close()
        thread.join(10)
    assert process.returncode == 0
    (response,) = outcome
    assert isinstance(response, Response)  # ...while the busy one got its full answer
    assert (response.status, response.body) == (200, b"done after 1.0")
    assert response.headers["connection"] == "close"


def test_stop_aborts_requests_beyond_the_shutdown_timeout(slow_project: Path) -> None:
    process = WebProcess(["--wsgi", "slowapp:app"], cwd=slow_project,
                         runner_args=["--shutdown-timeout", "0.5"])
    with process:
        thread, outcome = start_request(process, "/?30")
        time.sleep(0.3)
        started = time.monotonic()
        assert process.stop() == 0
        assert time.monotonic() - started < 5  # not the 30 s the request wanted
        thread.join(10)
    assert outcome and not isinstance(outcome[0], Response)


def test_serves_the_current_folder_by_default(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>home</p>")
    with WebProcess([], cwd=tmp_path) as process:
        assert process.get("/").body == b"<p>home</p>"


def test_several_listeners(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("both")
    second = get_free_port()
    with WebProcess(["--path", str(tmp_path), "--listen",
                     f"tcp:{second}:interface=127.0.0.1"]) as process:
        line = process.wait_for_log("ready:")
        assert f"tcp:127.0.0.1:{second}" in line
        assert process.get("/f.txt").body == b"both"
        connection = http.client.HTTPConnection("127.0.0.1", second, timeout=5)
        connection.request("GET", "/f.txt")
        assert connection.getresponse().read() == b"both"
        connection.close()


@pytest.mark.parametrize(("args", "message"), [
    (["--path", "/no/such/folder"], "--path '/no/such/folder' does not exist"),
    (["--path", __file__], "is not a folder"),
    (["--wsgi", "a:b", "--asgi", "c:d"], "give either --wsgi or --asgi, not both"),
    (["--wsgi", "a:b", "--path", "."], "mount folders beside it with --static"),
    (["--listen", "tcp:notaport"], "tcp:notaport"),
    (["--max-body-size", "lots"], "expected a size such as"),
    (["--header-timeout", "0"], "expected a number of seconds above 0"),
    (["--threads", "0"], "expected a whole number of at least 1"),
    (["--index", "../x"], "must be a file name"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_options(args: list[str], message: str) -> None:
    result = run_dropins("web", *args, timeout=30)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_address_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_dropins("web", "--path", str(tmp_path), "--listen",
                             f"tcp:{port}:interface=127.0.0.1", timeout=30)
    assert result.returncode == 1
    assert f"cannot listen on tcp:{port}:interface=127.0.0.1: address already in use" in (
        result.stderr)
    assert "Traceback" not in result.stderr


def test_missing_web_extra(tmp_path: Path) -> None:
    write_tree(tmp_path, {"httptools/__init__.py": "raise ImportError('not installed')\n"})
    result = run_dropins("web", "--path", str(tmp_path), *LISTEN,
                         env={"PYTHONPATH": str(tmp_path)}, timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "dropins web needs the 'web' extra: pip install 'dropins[web]'")


def test_help_and_plugin_listing_do_not_import_the_server() -> None:
    code = ("import sys, dropins.plugins.web, dropins.web.maker as m; m.Options.build_parser('x');"
            "print(sorted(n for n in ('httptools', 'dropins.web.protocol', 'mimetypes')"
            " if n in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    listing = run_dropins("--help", timeout=30)
    assert "web" in listing.stdout and "Serve static files" in listing.stdout


def test_runs_on_uvloop(tmp_path: Path) -> None:
    pytest.importorskip("uvloop")
    data = bytes(range(256)) * 4096  # 1 MiB: the sendfile path
    (tmp_path / "big.bin").write_bytes(data)
    (tmp_path / "small.txt").write_text("small")
    with WebProcess(["--path", str(tmp_path)], runner_args=["--loop", "uvloop"]) as process:
        assert process.get("/big.bin").body == data
        assert process.get("/big.bin", {"Range": "bytes=1000-1999"}).body == data[1000:2000]
        with socket.create_connection(("127.0.0.1", process.port), timeout=5) as sock:
            sock.sendall(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
            assert [r.body for r in read_responses(sock, 3)] == [b"small"] * 3
    assert process.returncode == 0
    assert "Traceback" not in process.stderr
