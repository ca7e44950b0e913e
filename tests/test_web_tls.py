"""``dropins web`` on an ``ssl:`` endpoint: served over TLS, the handshake bounded in time."""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Iterator

import pytest

from _web_helpers import WebProcess

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebProcess, int,
                                                                          ssl.SSLContext]]:
    folder = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    chain, key = folder / "chain.pem", folder / "key.pem"
    certificate.private_key_pem.write_to_path(str(key))
    certificate.cert_chain_pems[0].write_to_path(str(chain))
    client = ssl.create_default_context()
    authority.configure_trust(client)
    (folder / "hello.txt").write_text("hello over tls\n")
    listen = f"ssl:0:certKey={chain}:privateKey={key}:interface=127.0.0.1"
    with WebProcess(["--path", str(folder), "--listen", listen, "--header-timeout", "0.5"]) \
            as process:
        match = re.search(r"ssl:127\.0\.0\.1:(\d+)", process.stderr)
        assert match, process.stderr
        yield process, int(match.group(1)), client


def https_get(port: int, client: ssl.SSLContext, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            client.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                     .encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def test_files_are_served_over_tls(tls_server: tuple[WebProcess, int, ssl.SSLContext]) -> None:
    _, port, client = tls_server
    response = https_get(port, client, "/hello.txt")
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.endswith(b"\r\n\r\nhello over tls\n")


def test_a_client_that_never_starts_the_handshake_is_dropped(
        tls_server: tuple[WebProcess, int, ssl.SSLContext]) -> None:
    process, port, client = tls_server
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        try:
            received = sock.recv(1)  # no ClientHello sent: the server must hang up
        except ConnectionResetError:
            received = b""
    # The header timeout is 0.5 s; asyncio's own default would keep the socket for 60 s.
    assert received == b""
    assert time.monotonic() - started < 12, "the silent TLS client was not dropped in time"
    # ... and the server goes on serving.
    assert https_get(port, client, "/hello.txt").startswith(b"HTTP/1.1 200 OK\r\n")
    assert process.process is not None and process.process.poll() is None


def test_a_client_close_notify_is_not_a_warning(
        tls_server: tuple[WebProcess, int, ssl.SSLContext]) -> None:
    process, port, client = tls_server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        sock = client.wrap_socket(raw, server_hostname="127.0.0.1")
        sock.sendall(b"GET /hello.txt?notify HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while not data.endswith(b"hello over tls\n"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        sock.unwrap()  # close_notify; returns once the server has answered with its own
    # A later request's access line shows that the log is read past that close.
    https_get(port, client, "/hello.txt?after")
    process.wait_for_log(r'"GET /hello\.txt\?after HTTP/1\.1" 200 ')
    assert "eof_received" not in process.stderr
