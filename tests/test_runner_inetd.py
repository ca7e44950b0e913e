"""The classic inetd protocols, served on real loopback sockets by asyncio."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from conftest import LoopRunner
from dropins.servers.inetd import (
    Chargen,
    Daytime,
    Discard,
    Echo,
    chargen,
    chargen_line,
    daytime_text,
    echo,
)

TIMEOUT = 10



async def serving(factory: Callable[[], asyncio.Protocol],
                  body: Callable[[int, list[Any]], Awaitable[None]]) -> None:
    """Serve ``factory`` on 127.0.0.1:0 (remembering protocol instances) while ``body`` runs."""
    made: list[Any] = []

    def tracked() -> asyncio.Protocol:
        protocol = factory()
        made.append(protocol)
        return protocol

    server = await asyncio.get_running_loop().create_server(tracked, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        await asyncio.wait_for(body(port, made), TIMEOUT)
    finally:
        server.close()
        for protocol in made:
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transport.abort()
        await server.wait_closed()


def test_echo_returns_bytes_and_closes_after_eof(run: LoopRunner) -> None:
    async def body(port: int, _made: list[Any]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello\x00world\n")
        assert await reader.readexactly(12) == b"hello\x00world\n"
        payload = bytes(range(256)) * 4096  # 1 MiB
        writer.write(payload)
        writer.write_eof()
        assert await reader.read() == payload  # everything, then EOF from the server
        writer.close()

    run(serving(Echo, body))


def test_echo_stops_reading_when_client_does_not_read(run: LoopRunner) -> None:
    """A client that only sends must not make the server buffer without bound."""

    async def body(port: int, made: list[Any]) -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        chunk = b"x" * 65536
        sent = 0
        stalled = 0
        while sent < 64 * 1024 * 1024 and stalled < 20:
            try:
                sent += sock.send(chunk)
                stalled = 0
            except BlockingIOError:
                stalled += 1
                await asyncio.sleep(0.01)
        try:
            assert stalled >= 20, "the server kept reading although nobody reads its echo"
            buffered = made[0].transport.get_write_buffer_size()
            assert buffered <= 1024 * 1024, buffered
        finally:
            sock.close()

    run(serving(Echo, body))


def test_discard_sends_nothing(run: LoopRunner) -> None:
    async def body(port: int, _made: list[Any]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"into the void\n" * 1000)
        await writer.drain()
        with pytest.raises(asyncio.TimeoutError):  # nothing comes back while we are connected
            await asyncio.wait_for(reader.read(1), 0.3)
        writer.write_eof()
        assert await reader.read() == b""  # after our EOF the server closes, having sent nothing
        writer.close()

    run(serving(Discard, body))


def test_chargen_pattern(run: LoopRunner) -> None:
    assert chargen_line(0) == bytes(range(32, 104)) + b"\r\n"
    assert chargen_line(1) == bytes(range(33, 105)) + b"\r\n"
    assert chargen_line(94)[:2] == b"~ "  # wraps around the 95 printable characters
    assert chargen_line(95) == chargen_line(0)
    assert all(len(chargen_line(index)) == 74 for index in range(200))

    async def body(port: int, _made: list[Any]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        received = await reader.readexactly(74 * 200)
        writer.close()
        assert received == b"".join(chargen_line(index) for index in range(200))

    run(serving(Chargen, body))


def test_chargen_respects_flow_control(run: LoopRunner) -> None:
    """A client that never reads: the server's buffer stays bounded and the loop stays free."""

    async def body(port: int, made: list[Any]) -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
            await asyncio.sleep(0.5)  # far more than enough to send gigabytes if unbounded
            protocol = made[0]
            assert protocol.paused
            first = protocol.transport.get_write_buffer_size()
            await asyncio.sleep(0.2)
            assert protocol.transport.get_write_buffer_size() == first  # nothing more produced
            assert first <= 256 * 1024, first
            # the loop still serves others meanwhile
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert len(await reader.readexactly(1000)) == 1000
            writer.close()
        finally:
            sock.close()

    run(serving(Chargen, body))


def test_daytime_line_then_close(run: LoopRunner) -> None:
    assert re.fullmatch(rb"[A-Z][a-z]+day, [A-Z][a-z]+ \d\d, \d{4} \d\d:\d\d:\d\d-\S+\r\n",
                        daytime_text(0))

    async def body(port: int, _made: list[Any]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        text = await reader.read()  # the server closes after one line
        writer.close()
        assert text.endswith(b"\r\n") and text.count(b"\n") == 1
        assert re.match(rb"[A-Z][a-z]+day, ", text)

    run(serving(Daytime, body))


def test_commands_have_loopback_defaults_and_repeatable_listen() -> None:
    options = echo.Options.parse([], prog="dropins echo")
    assert options["listen"] == ["tcp:8007:interface=127.0.0.1"]
    assert chargen.Options.parse([], prog="dropins chargen")["listen"] == [
        "tcp:8019:interface=127.0.0.1"]
    options = echo.Options.parse(["--listen", "tcp:0:interface=127.0.0.1", "-l", "tcp:0"],
                                 prog="dropins echo")
    assert options["listen"] == ["tcp:0:interface=127.0.0.1", "tcp:0"]
