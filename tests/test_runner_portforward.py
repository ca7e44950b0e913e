"""The TCP relay: bytes both ways, half-close passed on, unreachable upstream, target parsing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from conftest import LoopRunner
from dropins.options import UsageError
from dropins.servers.inetd import Echo
from dropins.servers.portforward import ClientSide, Options, parse_target

TIMEOUT = 10



async def relaying(upstream_port: int, body: Callable[[int], Awaitable[None]],
                   connect_timeout: float = 5.0) -> None:
    server = await asyncio.get_running_loop().create_server(
        lambda: ClientSide("127.0.0.1", upstream_port, connect_timeout), "127.0.0.1", 0)
    try:
        await asyncio.wait_for(body(server.sockets[0].getsockname()[1]), TIMEOUT)
    finally:
        server.close()


def test_relays_both_ways_and_passes_half_close_on(run: LoopRunner) -> None:
    async def main() -> None:
        upstream = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0)
        port = upstream.sockets[0].getsockname()[1]

        async def body(relay_port: int) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", relay_port)
            writer.write(b"ping\n")
            assert await reader.readexactly(5) == b"ping\n"
            payload = bytes(range(256)) * 8192  # 2 MiB through both hops and back
            writer.write(payload)
            writer.write_eof()  # half-close: the echo upstream sees EOF only through the relay
            assert await reader.read() == payload
            writer.close()

        try:
            await relaying(port, body)
        finally:
            upstream.close()

    run(main())


def test_unreachable_upstream_closes_the_client(run: LoopRunner) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        dead_port = placeholder.getsockname()[1]  # bound, not listening: connection refused

        async def body(relay_port: int) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", relay_port)
            assert await reader.read() == b""
            writer.close()

        run(relaying(dead_port, body))


def test_upstream_closing_closes_the_client(run: LoopRunner) -> None:
    async def main() -> None:
        async def say_bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"bye\n")
            await writer.drain()
            writer.close()

        upstream = await asyncio.start_server(say_bye, "127.0.0.1", 0)
        port = upstream.sockets[0].getsockname()[1]

        async def body(relay_port: int) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", relay_port)
            assert await reader.read() == b"bye\n"
            writer.close()

        try:
            await relaying(port, body)
        finally:
            upstream.close()

    run(main())


def test_parse_target() -> None:
    assert parse_target("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_target("example.org:80") == ("example.org", 80)
    assert parse_target("[::1]:443") == ("::1", 443)
    for bad in ("8080", "host:", ":80", "host:http", "host:0", "host:70000"):
        with pytest.raises(UsageError, match="give HOST:PORT"):
            parse_target(bad)


def test_options_require_to(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        Options.parse([], prog="dropins portforward")
    assert caught.value.code == 2
    assert "--to" in capsys.readouterr().err
    options = Options.parse(["--to", "localhost:9"], prog="dropins portforward")
    assert options["to"] == ("localhost", 9)
    assert options["listen"] == ["tcp:8000:interface=127.0.0.1"]
