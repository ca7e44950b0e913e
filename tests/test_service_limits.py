"""Connection limits belong to every StreamServerService, not only to ``dropins web``.

A gate shared by two services (a streams handler and a protocol, as two listeners of one
server would be) admits ``max_connections`` in all; the next client waits in the backlog while
the open ones are served, and is served once one closes.  Run on asyncio and on uvloop.
"""

from __future__ import annotations

import asyncio

import pytest

from _service_helpers import host_port
from conftest import LoopRunner
from dropins.service import StreamServerService
from dropins.service.accepting import ConnectionGate

LOOPBACK = "tcp:0:interface=127.0.0.1"


async def echo_lines(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def open_client(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = host_port(address)
    return await asyncio.wait_for(asyncio.open_connection(host, port), 5)


async def echoes(client: tuple[asyncio.StreamReader, asyncio.StreamWriter], text: bytes,
                 timeout: float = 5) -> bytes:
    reader, writer = client
    writer.write(text + b"\n")
    return await asyncio.wait_for(reader.readline(), timeout)


def test_a_shared_gate_limits_every_service_and_resumes(run: LoopRunner) -> None:
    async def scenario() -> None:
        gate = ConnectionGate(max_connections=2)
        services = [StreamServerService(LOOPBACK, echo_lines, gate=gate, shutdown_timeout=1),
                    StreamServerService(LOOPBACK, EchoProtocol, gate=gate, shutdown_timeout=1)]
        for service in services:
            await service.start()
        try:
            first, second = [service.addresses[0] for service in services]
            held = [await open_client(first), await open_client(second)]
            assert [await echoes(client, b"one") for client in held] == [b"one\n"] * 2
            assert gate.open == 2
            waiting = await open_client(first)  # accepted by the kernel, not by the server
            with pytest.raises(TimeoutError):
                await echoes(waiting, b"wait", timeout=0.5)
            assert [await echoes(client, b"two") for client in held] == [b"two\n"] * 2
            held[1][1].close()
            assert await asyncio.wait_for(waiting[0].readline(), 5) == b"wait\n"
            assert gate.open == 2
            for _, writer in (held[0], waiting):
                writer.close()
        finally:
            for service in services:
                await service.stop()
        assert gate.open == 0

    run(asyncio.wait_for(scenario(), 20))


def test_a_gate_needs_room_for_one_connection() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConnectionGate(max_connections=0)
