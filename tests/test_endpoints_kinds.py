"""Every built-in endpoint kind, bound and served with real connections on this machine."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import ssl
import stat
import sys
from pathlib import Path

import pytest

from _service_helpers import exchange, run
from dropins.service import ListenError, StreamServerService, parse_endpoint


async def shout(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer one line in upper case (a line, not EOF: TLS clients cannot half-close)."""
    writer.write((await reader.readline()).upper())
    await writer.drain()


async def serve_once(endpoint: str, payload: bytes = b"ping\n", *,
                     client_ssl: ssl.SSLContext | None = None) -> tuple[list[str], bytes]:
    service = StreamServerService(endpoint, shout, shutdown_timeout=2)
    service.privileged_start()
    await service.start()
    try:
        addresses = service.addresses
        return addresses, await exchange(addresses[0], payload, ssl=client_ssl)
    finally:
        await service.stop()


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


unix_only = pytest.mark.skipif(not hasattr(socket, "AF_UNIX") or sys.platform == "win32",
                               reason="unix sockets are POSIX-only here")


def test_tcp() -> None:
    addresses, reply = run(serve_once("tcp:0:interface=127.0.0.1"))
    assert reply == b"PING\n"
    assert addresses[0].startswith("tcp:127.0.0.1:")


def test_tcp_on_a_host_name() -> None:
    addresses, reply = run(serve_once("tcp:0:interface=localhost"))
    assert reply == b"PING\n"
    assert all(a.startswith("tcp:127.") for a in addresses)
    assert len({a.rsplit(":", 1)[1] for a in addresses}) == 1  # one port for every address


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
@pytest.mark.parametrize("endpoint", ["tcp6:0:interface=[::1]", r"tcp6:0:interface=\:\:1"])
def test_tcp6(endpoint: str) -> None:
    addresses, reply = run(serve_once(endpoint))
    assert reply == b"PING\n"
    assert addresses[0].startswith("tcp6:[::1]:")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ssl.SSLContext]:
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    chain, key = folder / "chain.pem", folder / "key.pem"
    issued.private_key_pem.write_to_path(str(key))
    with open(chain, "wb") as out:
        for blob in issued.cert_chain_pems:
            out.write(blob.bytes())
    client = ssl.create_default_context()
    authority.configure_trust(client)
    return chain, key, client


def test_ssl_with_separate_key(certificate: tuple[Path, Path, ssl.SSLContext]) -> None:
    chain, key, client = certificate
    endpoint = f"ssl:0:certKey={chain}:privateKey={key}:interface=127.0.0.1"
    addresses, reply = run(serve_once(endpoint, b"secret\n", client_ssl=client))
    assert reply == b"SECRET\n"
    assert addresses[0].startswith("ssl:127.0.0.1:")


def test_ssl_with_key_in_the_certificate_file(
        certificate: tuple[Path, Path, ssl.SSLContext], tmp_path: Path) -> None:
    chain, key, client = certificate
    combined = tmp_path / "combined.pem"
    combined.write_bytes(key.read_bytes() + chain.read_bytes())
    _, reply = run(serve_once(f"ssl:0:certKey={combined}:interface=127.0.0.1", b"one file\n",
                              client_ssl=client))
    assert reply == b"ONE FILE\n"


def test_ssl_refuses_a_plain_text_client(certificate: tuple[Path, Path, ssl.SSLContext]) -> None:
    chain, key, _ = certificate

    async def scenario() -> bytes:
        service = StreamServerService(
            f"ssl:0:certKey={chain}:privateKey={key}:interface=127.0.0.1", shout,
            shutdown_timeout=1)
        await service.start()
        try:
            return await exchange(service.addresses[0], b"GET / HTTP/1.0\r\n\r\n")
        except ConnectionError:
            return b""
        finally:
            await service.stop()

    assert b"GET" not in run(scenario())


@unix_only
def test_unix_with_mode(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    seen: dict[str, int] = {}

    async def scenario() -> bytes:
        service = StreamServerService(f"unix:{path}:mode=0600", shout)
        await service.start()
        try:
            seen["mode"] = stat.S_IMODE(os.stat(path).st_mode)
            assert service.addresses == [f"unix:{path}"]
            return await exchange(service.addresses[0], b"local\n")
        finally:
            await service.stop()

    assert run(scenario()) == b"LOCAL\n"
    assert seen["mode"] == 0o600
    assert not path.exists()  # removed on stop


@unix_only
def test_unix_path_with_an_escaped_colon(tmp_path: Path) -> None:
    path = tmp_path / "a:b.sock"
    escaped = str(path).replace(":", "\\:")
    addresses, reply = run(serve_once(f"unix:{escaped}"))
    assert reply == b"PING\n"
    assert addresses == [f"unix:{escaped}"]
    assert parse_endpoint(addresses[0]).path == str(path)  # addresses parse back


@unix_only
def test_unix_replaces_a_stale_socket_but_never_a_live_one(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays behind, nobody listens: a dead server's leftover
    assert path.exists()
    _, reply = run(serve_once(f"unix:{path}"))
    assert reply == b"PING\n"

    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(path))
        live.listen()
        with pytest.raises(ListenError) as caught:
            StreamServerService(f"unix:{path}", shout).privileged_start()
        assert str(caught.value) == (f"cannot listen on unix:{path}: "
                                     "address already in use (a server answers on that socket)")
        assert path.exists()  # the live server keeps its socket


@unix_only
def test_unix_refuses_to_replace_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("precious")
    with pytest.raises(ListenError, match="exists and is not a socket"):
        StreamServerService(f"unix:{path}", shout).privileged_start()
    assert path.read_text() == "precious"


@unix_only
def test_unix_lockfile(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()

    async def scenario() -> bytes:
        first = StreamServerService(f"unix:{path}:lockfile=1", shout)
        await first.start()  # the stale socket is replaced under the lock
        try:
            assert (tmp_path / "app.sock.lock").read_text().strip() == str(os.getpid())
            second = StreamServerService(f"unix:{path}:lockfile=1", shout)
            with pytest.raises(ListenError) as caught:
                second.privileged_start()
            assert str(caught.value) == (f"cannot listen on unix:{path}:lockfile=1: address "
                                         f"already in use (another process holds {path}.lock)")
            return await exchange(first.addresses[0], b"still mine\n")
        finally:
            await first.stop()

    assert run(scenario()) == b"STILL MINE\n"
    assert not path.exists()
    # after a stop the lock is free again
    _, reply = run(serve_once(f"unix:{path}:lockfile=1"))
    assert reply == b"PING\n"


@unix_only
def test_unix_stop_leaves_a_successor_socket_alone(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"

    async def scenario() -> None:
        service = StreamServerService(f"unix:{path}", shout)
        await service.start()
        os.unlink(path)  # someone replaced the socket file while we served
        with socket.socket(socket.AF_UNIX) as successor:
            successor.bind(str(path))
            await service.stop()
            assert path.exists()

    run(scenario())


def _bind_message(endpoint: str) -> str:
    try:
        StreamServerService(endpoint, shout).privileged_start()
    except ListenError as error:
        return str(error)
    return "bound"


@pytest.mark.skipif(sys.platform == "win32", reason="low ports are not privileged on Windows")
def test_permission_denied_on_a_privileged_port() -> None:
    floor = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    if floor.exists() and int(floor.read_text()) <= 1:
        pytest.skip("this machine lets anyone bind low ports")
    endpoint = "tcp:1:interface=127.0.0.1"
    if os.geteuid() != 0:
        message = _bind_message(endpoint)
    else:  # as root, a forked child drops to nobody first, like a server after --uid
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.setuid(65534)
                os.write(write_end, _bind_message(endpoint).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        ready, _, _ = select.select([read_end], [], [], 10)
        message = os.read(read_end, 4096).decode() if ready else "timed out"
        os.close(read_end)
        os.waitpid(pid, 0)
    assert message == f"cannot listen on {endpoint}: permission denied"
