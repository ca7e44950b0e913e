"""The input side of an HTTP/1.1 connection, probed with raw sockets against ``dropins web``:
clients that leave before sending a whole request head, upgrade requests with a body, and
the head-size limit next to a large body in the same read.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from _web_helpers import (
    WebProcess,
    flood,
    open_fds,
    raw_exchange,
    read_responses,
    read_until_closed,
    sockets_in_state,
    status_of,
    wait_until,
)
from conftest import write_tree

ECHO = """
    def app(environ, start_response):
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%s %d: %s" % (environ["REQUEST_METHOD"].encode(), len(body), body[:20])]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    root = write_tree(tmp_path_factory.mktemp("input"), {"echo.py": ECHO})
    # A long header timeout: whatever closes these connections, it is not the timeout.
    with WebProcess(["--wsgi", "echo:app", "--header-timeout", "60",
                     "--max-body-size", "1M"], cwd=root) as process:
        yield process


def test_connections_closed_before_a_whole_head_are_closed_at_once(server: WebProcess) -> None:
    assert server.process is not None
    baseline = open_fds(server.process.pid)
    for index in range(300):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            if index % 3 == 1:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Partial: ")
            elif index % 3 == 2:
                sock.sendall(b"GET /")
    # Each server side closes when its client's FIN arrives, not after the 60 s timeout.  On a
    # loaded machine some connections may still wait in the listen backlog (CLOSE_WAIT with no
    # descriptor yet) when the descriptors are back to the baseline: wait for both.
    def all_closed() -> bool:
        return (open_fds(server.process.pid) <= baseline
                and sockets_in_state(server.port, "CLOSE_WAIT") == 0)

    assert wait_until(all_closed, timeout=10), \
        (open_fds(server.process.pid), baseline, sockets_in_state(server.port, "CLOSE_WAIT"))
    assert server.get("/").status == 200


def test_a_half_closed_client_still_gets_its_answers(server: WebProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        sock.shutdown(socket.SHUT_WR)
        answers = [response.body for response in read_responses(sock, 2)]
        assert answers == [b"GET 0: ", b"POST 3: abc"]
        sock.settimeout(5)
        assert sock.recv(100) == b""  # then the server closes


H2C = (b"POST /upload HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
       b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n")


def read_continue(sock: socket.socket) -> bytes:
    """The interim ``100 Continue`` response, which proves the server has read the head."""
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        chunk = sock.recv(1)
        assert chunk, data
        data += chunk
    return data


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "body-later"])
def test_an_h2c_upgrade_is_ignored_and_the_body_delivered(server: WebProcess,
                                                          split: bool) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        if split:
            # The body is sent only once the server asks for it, so the head is surely read
            # alone, before the body.
            sock.sendall(H2C + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n")
            assert read_continue(sock) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(b"hello")
        else:
            sock.sendall(H2C + b"Content-Length: 5\r\n\r\nhello")
        (response,) = read_responses(sock, 1)
    assert (response.status, response.body) == (200, b"POST 5: hello")
    assert response.headers["connection"] == "close"


def test_an_upgrade_with_a_chunked_body_and_a_body_too_large(server: WebProcess) -> None:
    answer = raw_exchange(server.port, H2C + b"Transfer-Encoding: chunked\r\n\r\n"
                          b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n")
    assert answer.count(b"HTTP/1.1 ") == 1 and answer.endswith(b"POST 5: abcde")
    answer = raw_exchange(server.port, H2C + b"Transfer-Encoding: chunked\r\n\r\n"
                          b"100000\r\n" + b"z" * 0x100000 + b"\r\n1\r\nz\r\n0\r\n\r\n")
    assert status_of(answer) == 413


def test_a_large_body_does_not_count_toward_the_next_request_head(server: WebProcess) -> None:
    body = b"b" * 100_000
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        # One write: the POST, its body, and the start of the next request.
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + body
                     + b"GET /next HTTP/1.1\r\nHo")
        # The POST is answered once its whole body was read, in the read that ends with the
        # start of the next head: the rest of that head surely comes in a later read.
        (first,) = read_responses(sock, 1)
        sock.sendall(b"st: x\r\n\r\n")
        (second,) = read_responses(sock, 1)
    assert [first.status, second.status] == [200, 200]


def test_a_request_before_an_upgrade_request_is_answered_with_it(server: WebProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
                     + H2C + b"Content-Length: 5\r\n\r\nhello")
        answers = [response.body for response in read_responses(sock, 2)]
    assert answers == [b"GET 0: ", b"POST 5: hello"]


@pytest.mark.parametrize("start", [b"1\r\na\r\n0\r\nX-Trailer: ", b"1;extension="],
                         ids=["trailer", "chunk-extension"])
def test_an_endless_trailer_or_chunk_extension_is_refused(server: WebProcess,
                                                          start: bytes) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + start)
        sent = flood(sock)
        answer = read_until_closed(sock)
    assert status_of(answer) == 431, answer[:200]
    assert sent < 4 * 1024 * 1024, f"the server read {sent} bytes of one line"

