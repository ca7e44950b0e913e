"""A request with an unknown method (``BREW``) reaches the application however the requests
before it were split between reads, also when the read that holds it begins inside the
request before it (the parser then reports no offset for where it starts)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest

from _web_helpers import WebProcess, read_responses
from conftest import write_tree

APP = """
    def app(environ, start_response):
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["REQUEST_METHOD"].encode(), b" ", environ["PATH_INFO"].encode(),
                b" ", body]
"""

REQUESTS = [b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n",
            b"BREW /pot HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntea",
            b"HEAD /d HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]
SEQUENCE = b"".join(REQUESTS)
ENDS = [len(b"".join(REQUESTS[:count])) for count in range(1, len(REQUESTS) + 1)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    root = write_tree(tmp_path_factory.mktemp("brewapp"), {"brewapp.py": APP})
    with WebProcess(["--wsgi", "brewapp:app"], cwd=root) as process:
        yield process


def read_continue(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        chunk = sock.recv(1)
        assert chunk, data
        data += chunk
    return data


def test_an_unknown_method_in_a_read_that_ends_a_body(server: WebProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        # The body is sent only once the server asks for it: the head was surely read alone,
        # and the read with the BREW request begins inside the POST.
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Length: 5\r\n\r\n")
        assert read_continue(sock) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"helloBREW / HTTP/1.1\r\nHost: x\r\n\r\n")
        responses = read_responses(sock, 2, timeout=10)
    assert [(response.status, response.body) for response in responses] == [
        (200, b"POST / hello"), (200, b"BREW / ")]


def test_behind_a_large_body_an_unknown_method_gets_a_clean_400(server: WebProcess) -> None:
    """The documented limit: the bytes of a request spanning reads are kept only up to the
    head limits plus 64 KiB, beyond which the request with the unknown method is refused."""
    body = b"x" * 300_000
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        assert read_continue(sock) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body + b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n")
        responses = read_responses(sock, 2, timeout=10)
    assert [response.status for response in responses] == [200, 400]
    assert responses[1].headers["connection"] == "close"
    assert "Traceback" not in server.stderr


def answers_to(port: int, cut: int = 0) -> bytes:
    """What the server sends back, up to its close, to SEQUENCE sent in one write or (when
    ``cut``) in two, without the Date headers (the one thing that may differ between runs).

    The second part is sent once the requests the first completes are answered: the server
    has then read the first part (one small segment, one read), so the second comes in a
    read of its own, which begins inside a request unless the cut is between two.
    """
    deadline = time.monotonic() + 10
    received = b""

    def receive() -> bytes:
        chunk = sock.recv(65536)
        assert time.monotonic() < deadline, received
        return chunk

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if cut:
            sock.sendall(SEQUENCE[:cut])
            completed = sum(end <= cut for end in ENDS)
            while received.count(b"HTTP/1.1 ") < completed:
                received += receive()
        sock.sendall(SEQUENCE[cut:])
        while chunk := receive():
            received += chunk
    return re.sub(rb"\r\nDate: [^\r]*", b"", received)


def test_every_split_of_pipelined_requests_gets_the_same_answers(server: WebProcess) -> None:
    whole = answers_to(server.port)
    assert whole.count(b"HTTP/1.1 200 OK") == 6 and b"BREW /pot tea" in whole
    differing = [cut for cut in range(1, len(SEQUENCE)) if answers_to(server.port, cut) != whole]
    assert differing == []
