"""The udp and udp6 endpoint kinds, served by DatagramServerService with real datagrams."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from _runner_helpers import assert_no_traceback
from _service_helpers import host_port, run
from conftest import run_dropins
from dropins.service import (
    DatagramServerService,
    EndpointError,
    ListenError,
    StreamServerService,
    parse_endpoint,
)


class Upper(asyncio.DatagramProtocol):
    """Answer each datagram in upper case."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, address: Any) -> None:
        self.transport.sendto(data.upper(), address)


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def send_and_receive(family: socket.AddressFamily, address: tuple[str, int],
                     payload: bytes) -> bytes:
    """A plain blocking client, in a thread so that the served loop keeps running."""
    with socket.socket(family, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        client.sendto(payload, address)
        return client.recv(2048)


async def ask(endpoint: str, payload: bytes) -> tuple[list[str], bytes, DatagramServerService]:
    service = DatagramServerService(endpoint, Upper)
    service.privileged_start()
    await service.start()
    try:
        address = service.addresses[0]
        host, port = host_port(address)
        family = socket.AF_INET6 if address.startswith("udp6:") else socket.AF_INET
        reply = await asyncio.to_thread(send_and_receive, family, (host, port), payload)
        return service.addresses, reply, service
    finally:
        await service.stop()


def test_udp_answers_a_datagram_and_counts_it() -> None:
    addresses, reply, service = run(ask("udp:0:interface=127.0.0.1", b"ping"))
    assert reply == b"PING"
    assert addresses[0].startswith("udp:127.0.0.1:")
    assert service.datagrams_total == 1
    assert service.metrics()[0]["value"] == 1


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_udp6_answers_a_datagram() -> None:
    addresses, reply, _ = run(ask("udp6:0:interface=[::1]", b"six"))
    assert reply == b"SIX"
    assert addresses[0].startswith("udp6:[::1]:")


def test_stop_releases_the_port() -> None:
    async def cycle() -> int:
        service = DatagramServerService("udp:0:interface=127.0.0.1", Upper)
        await service.start()
        port = host_port(service.addresses[0])[1]
        await service.stop()
        assert not service.running and service.addresses == []
        return port

    port = run(cycle())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", port))  # free again


def test_a_busy_port_is_a_listen_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        service = DatagramServerService(f"udp:{port}:interface=127.0.0.1", Upper)
        with pytest.raises(ListenError, match=f"udp:{port}"):
            service.privileged_start()


@pytest.mark.parametrize(("text", "message"), [
    ("udp:", "port"),
    ("udp:70000", "port must be a number"),
    ("udp:53:backlog=5", "unknown field 'backlog'"),
    ("udp:53:interface=::1", "brackets"),
    ("udp:53:interface=[::1]", "use udp6:PORT"),
    ("udp6:53:interface=127.0.0.1", "use udp:PORT"),
])
def test_bad_udp_strings_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(EndpointError, match=message):
        parse_endpoint(text)


def test_services_refuse_the_wrong_kind_of_endpoint() -> None:
    with pytest.raises(EndpointError, match=r"datagram endpoint.*tcp:PORT"):
        StreamServerService("udp:0", Upper)
    with pytest.raises(EndpointError, match=r"stream endpoint.*udp:PORT"):
        DatagramServerService("tcp:0", Upper)


def test_a_stream_command_given_udp_exits_2_in_one_line() -> None:
    result = run_dropins("echo", "--listen", "udp:0:interface=127.0.0.1", timeout=30)
    assert result.returncode == 2, result.stderr
    assert "datagram endpoint" in result.stderr
    assert_no_traceback(result.stderr)
