"""HTTP/1.1 connection behaviour of a real server: keep-alive, pipelining, limits, timeouts."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _web_helpers import WebProcess, read_responses, status_of


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    root = tmp_path_factory.mktemp("proto")
    for name in "abc":
        (root / f"{name}.txt").write_text(name * 3)
    with WebProcess(["--path", str(root), "--header-timeout", "1",
                     "--keepalive-timeout", "1"]) as process:
        yield process


def connect(server: WebProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def closed_by_server(sock: socket.socket, within: float) -> float:
    """Seconds until the server closed ``sock`` (reading and dropping data); fails after."""
    start = time.monotonic()
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        pytest.fail(f"server did not close the connection within {within} s")
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def test_keep_alive_reuses_the_connection(server: WebProcess) -> None:
    with connect(server) as sock:
        for name in "abcab":
            sock.sendall(f"GET /{name}.txt HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            (response,) = read_responses(sock, 1)
            assert (response.status, response.body) == (200, name.encode() * 3)
            assert "connection" not in response.headers


def test_pipelined_requests_are_answered_in_order(server: WebProcess) -> None:
    names = "abcbaccab" * 3
    with connect(server) as sock:
        sock.sendall(b"".join(f"GET /{name}.txt HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                              for name in names))
        responses = read_responses(sock, len(names))
    assert [response.body for response in responses] == [name.encode() * 3 for name in names]


def test_connection_close_is_honoured(server: WebProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        (response,) = read_responses(sock, 1)
        assert response.headers["connection"] == "close"
        assert closed_by_server(sock, 2) < 1


def test_http10_closes_unless_keep_alive(server: WebProcess) -> None:
    raw = server.raw(b"GET /a.txt HTTP/1.0\r\n\r\n", timeout=3)
    assert raw.startswith(b"HTTP/1.1 200 ") and raw.endswith(b"\r\n\r\naaa")
    assert b"Connection: close" in raw
    with connect(server) as sock:
        for _ in range(2):
            sock.sendall(b"GET /b.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            (response,) = read_responses(sock, 1)
            assert response.headers["connection"] == "keep-alive" and response.body == b"bbb"


def test_malformed_request_gets_400(server: WebProcess) -> None:
    assert status_of(server.raw(b"THIS IS NOT HTTP\r\n\r\n")) == 400
    assert status_of(server.raw(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Name: x\r\n\r\n")) == 400


def test_header_count_limit(server: WebProcess) -> None:
    headers = "".join(f"X-H{index}: v\r\n" for index in range(101))
    raw = server.raw(f"GET /a.txt HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    assert status_of(raw) == 431
    ok = "".join(f"X-H{index}: v\r\n" for index in range(90))
    assert status_of(server.raw(f"GET /a.txt HTTP/1.1\r\nHost: x\r\n{ok}Connection: close\r\n\r\n"
                                .encode())) == 200


def test_header_size_and_target_limits(server: WebProcess) -> None:
    big = "v" * (70 * 1024)
    assert status_of(server.raw(f"GET / HTTP/1.1\r\nX-Big: {big}\r\n\r\n".encode())) == 431
    long_target = "/" + "a" * (9 * 1024)
    assert status_of(server.raw(f"GET {long_target} HTTP/1.1\r\n\r\n".encode())) == 414


def test_slow_client_gets_408_and_is_disconnected(server: WebProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n")  # ...and never the blank line
        start = time.monotonic()
        sock.settimeout(5)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        elapsed = time.monotonic() - start
    assert status_of(data) == 408
    assert 0.5 < elapsed < 4


def test_silent_client_is_disconnected(server: WebProcess) -> None:
    with connect(server) as sock:
        assert closed_by_server(sock, 5) < 4


def test_trickling_client_cannot_extend_the_deadline(server: WebProcess) -> None:
    with connect(server) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /a.txt HTTP/1.1\r\n")
        status = 0
        for _ in range(40):  # one header byte every 0.1 s, for up to 4 s
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.settimeout(0.1)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            status = status_of(data)
            break
        assert status == 408
        assert time.monotonic() - start < 3.5


def test_idle_keep_alive_connection_is_closed(server: WebProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        read_responses(sock, 1)
        assert closed_by_server(sock, 5) < 3


def test_unsupported_upgrade_is_answered_over_http11(server: WebProcess) -> None:
    raw = server.raw(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                     b"Upgrade: websocket\r\n\r\n", timeout=3)
    assert status_of(raw) == 200 and raw.endswith(b"aaa")


def test_request_body_on_static_is_discarded(server: WebProcess, tmp_path: Path) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                     b"GET /b.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n0\r\n\r\n"
                     b"GET /c.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        responses = read_responses(sock, 3)
    assert [response.body for response in responses] == [b"aaa", b"bbb", b"ccc"]



def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_client_that_never_reads_is_bounded_then_dropped(tmp_path: Path) -> None:
    (tmp_path / "100k.bin").write_bytes(b"z" * 100 * 1024)
    request = b"GET /100k.bin HTTP/1.1\r\nHost: x\r\n\r\n"
    wanted = 4000  # 4000 answers of 100 KiB: 400 MiB if the server buffered them
    with WebProcess(["--path", str(tmp_path), "--send-timeout", "1"]) as process:
        assert process.process is not None
        before = rss_kib(process.process.pid)
        with connect(process) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.setblocking(False)
            sent, deadline = 0, time.monotonic() + 1.0
            while time.monotonic() < deadline and sent < wanted * len(request):
                try:
                    sent += sock.send(request * 50)
                except BlockingIOError:
                    time.sleep(0.01)
            growth = rss_kib(process.process.pid) - before
            assert growth < 40 * 1024, f"the server grew by {growth} KiB"
            time.sleep(2.5)  # more than --send-timeout without reading anything
            sock.setblocking(True)
            sock.settimeout(3)
            received = 0
            try:
                while chunk := sock.recv(1024 * 1024):
                    received += len(chunk)
                    assert received < 50 * 1024 * 1024, "the server kept sending"
            except ConnectionResetError:
                pass
    assert received < 50 * 1024 * 1024


@pytest.mark.parametrize("runner_args", [[], ["--loop", "uvloop"]], ids=["asyncio", "uvloop"])
def test_client_that_stops_reading_a_big_file_is_dropped(tmp_path: Path,
                                                         runner_args: list[str]) -> None:
    if runner_args:
        pytest.importorskip("uvloop")
    with open(tmp_path / "huge.bin", "wb") as huge:
        huge.truncate(256 * 1024 * 1024)  # sparse: 256 MiB of zeros, no disk used
    with WebProcess(["--path", str(tmp_path), "--send-timeout", "1"],
                    runner_args=runner_args) as process, connect(process) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(b"GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(2.5)  # read nothing for longer than --send-timeout
        sock.settimeout(3)
        received = 0
        try:
            while chunk := sock.recv(1024 * 1024):
                received += len(chunk)
                assert received < 64 * 1024 * 1024, "the server kept sending"
        except ConnectionResetError:
            pass
        except TimeoutError:
            raise AssertionError(f"still connected after {received} bytes:\n"
                                 f"{process.stderr}") from None
        # the server goes on serving, with nothing left behind by the dropped transfer
        assert process.get("/huge.bin", {"Range": "bytes=0-9"}).body == bytes(10)
        assert "Exception in callback" not in process.stderr
