"""Real Django (ASGI and WSGI), Starlette and Flask applications under ``dropins web``.

What these pin down: requests without a body reach ASGI applications at once, a client that
leaves is noticed while its application is still working (long-polls, ``is_disconnected()``
loops, streams), such a departure is not logged as an application error, and a large
upload costs the server far less memory than its size.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from _framework_apps import DJANGO, FLASK, STARLETTE
from _web_helpers import (
    WebProcess,
    open_fds,
    peak_memory,
    read_responses,
    sockets_in_state,
    upload,
    wait_until,
)
from conftest import write_tree


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("frameworks")
    write_tree(root, {"djangoapp.py": DJANGO, "starletteapp.py": STARLETTE,
                      "flaskapp.py": FLASK})
    return root


@pytest.fixture
def markers(project: Path, request: pytest.FixtureRequest) -> Path:
    folder = project / f"markers-{request.node.name}"
    folder.mkdir()
    return folder


def serve(project: Path, markers: Path, *args: str, loop: str = "asyncio") -> WebProcess:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    return WebProcess(list(args), cwd=project, env={"APP_MARKERS": str(markers)},
                      runner_args=["--loop", loop])


Closer = Callable[[socket.socket], None]


def count(markers: Path, prefix: str) -> int:
    return len(list(markers.glob(prefix + "*")))


def reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN (SO_LINGER with a zero timeout)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("spec", ["djangoapp:asgi", "djangoapp:wsgi"])
def test_django_answers_requests_with_and_without_a_body(project: Path, markers: Path,
                                                         spec: str) -> None:
    kind = spec.rpartition(":")[2]
    with serve(project, markers, f"--{kind}", spec) as server:
        # Stock Django's ASGI handler awaits receive() before anything else: a request
        # without a body must get its (empty) http.request at once, not when the client
        # gives up.
        assert server.request("GET", "/", timeout=5).body == b"GET hello 0"
        head = server.request("HEAD", "/", timeout=5)
        assert (head.status, head.body) == (200, b"")
        assert server.request("POST", "/", body=b"", timeout=5).body == b"POST hello 0"
        assert server.request("POST", "/", body=b"x" * 5000, timeout=5).body == \
            b"POST hello 5000"
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3)  # keep-alive, pipelined
            assert [r.body for r in read_responses(sock, 3)] == [b"GET hello 0"] * 3


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_abandoned_django_long_polls_end_and_leave_no_socket_behind(project: Path, markers: Path,
                                                                    loop: str) -> None:
    with serve(project, markers, "--asgi", "djangoapp:asgi", loop=loop) as server:
        clients = [socket.create_connection(("127.0.0.1", server.port), timeout=5)
                   for _ in range(20)]
        for client in clients:
            client.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(lambda: count(markers, "poll-started") == 20, timeout=20)
        for index, client in enumerate(clients):
            if index % 2:
                client.close()  # FIN
            else:
                reset(client)   # RST
        # Each view is cancelled (Django saw http.disconnect) and each server socket closed.
        assert wait_until(lambda: count(markers, "poll-cancelled") == 20, timeout=20), \
            server.stderr
        assert wait_until(lambda: sockets_in_state(server.port, "CLOSE_WAIT") == 0, timeout=10)
        assert sockets_in_state(server.port, "ESTABLISHED") == 0
        assert server.request("GET", "/", timeout=5).status == 200
    assert "Traceback" not in server.stderr


def test_starlette_is_disconnected_loop_ends_when_the_client_leaves(project: Path,
                                                                    markers: Path) -> None:
    with serve(project, markers, "--asgi", "starletteapp:app") as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"GET /watch HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until((markers / "watch-started").exists, timeout=10)
        sock.close()
        assert wait_until((markers / "watch-disconnected").exists, timeout=10)
        assert wait_until(lambda: sockets_in_state(server.port, "CLOSE_WAIT") == 0, timeout=10)
    assert "Traceback" not in server.stderr and "ERROR" not in server.stderr


@pytest.mark.parametrize("close", [socket.socket.close, reset], ids=["fin", "rst"])
def test_a_client_leaving_a_starlette_stream_is_not_an_error(project: Path, markers: Path,
                                                             close: Closer) -> None:
    with serve(project, markers, "--asgi", "starletteapp:app") as server:
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
            close(sock)
        assert wait_until(lambda: count(markers, "stream-stopped") == 3, timeout=10)
        upload = server.request("POST", "/upload", body=b"y" * 1000, timeout=5)
        assert upload.body == b"received 1000"
    # A normal departure: no traceback, no error line (debug lines are not shown by default).
    assert "Traceback" not in server.stderr and "ERROR" not in server.stderr, server.stderr
    assert "ClientDisconnect" not in server.stderr


def test_a_flask_stream_stops_and_closes_when_the_client_leaves(project: Path,
                                                                markers: Path) -> None:
    with serve(project, markers, "--wsgi", "flaskapp:app") as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while b"first block" not in received:
            received += sock.recv(4096)
        sock.close()
        (markers / "go").write_text("")
        # The block after the client left is not sent: the generator is closed there.
        assert wait_until((markers / "stream-closed").exists, timeout=10)
        assert not (markers / "resumed-after-second-block").exists()
        assert wait_until(lambda: sockets_in_state(server.port, "CLOSE_WAIT") == 0, timeout=10)
    assert "Traceback" not in server.stderr


UPLOAD = 160 * 1024 * 1024


@pytest.mark.parametrize("spec", ["--wsgi=flaskapp:app", "--asgi=starletteapp:app"])
def test_a_large_upload_costs_much_less_memory_than_its_size(project: Path, markers: Path,
                                                             spec: str) -> None:
    with serve(project, markers, spec, "--max-body-size", "200M") as server:
        assert server.process is not None
        pid = server.process.pid
        assert upload(server.port, "/upload", 3 * 1024 * 1024).endswith(b"received 3145728")
        baseline, fds = peak_memory(pid), open_fds(pid)
        answer = upload(server.port, "/upload", UPLOAD)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"received %d" % UPLOAD)
        # WSGI: spooled to a temporary file; ASGI: streamed with flow control.  Either way
        # far less than the body (it used to be twice the body for WSGI).
        grown = peak_memory(pid) - baseline
        assert grown < UPLOAD // 4, f"peak memory grew by {grown >> 20} MiB"
        assert wait_until(lambda: open_fds(pid) <= fds, timeout=10)  # the spool file is closed
