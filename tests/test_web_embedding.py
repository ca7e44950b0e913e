"""``WebServer`` used directly with asyncio (how an application embeds the server)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dropins.web.exchange import Exchange
from dropins.web.server import Limits, WebServer
from dropins.web.static import StaticSite


async def _get(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return reader, writer, head


def test_shutdown_closes_idle_connections_and_waits_for_busy_ones(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("static")
    release = asyncio.Event()

    async def slow_then_static(exchange: Exchange) -> None:
        await release.wait()
        exchange.respond(200, [(b"Content-Type", b"text/plain")], b"slow")

    site = StaticSite(str(tmp_path))

    def handler(exchange: Exchange) -> object:
        return slow_then_static(exchange) if exchange.path == b"/slow" else site(exchange)

    async def scenario() -> None:
        server = WebServer(handler, Limits(header_timeout=5))
        listener = await asyncio.get_running_loop().create_server(server, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        idle_reader, idle_writer, head = await _get(port, "/f.txt")
        assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 6" in head
        assert await idle_reader.readexactly(6) == b"static"
        busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
        busy_writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.1)
        assert len(server.connections) == 2
        listener.close()
        server.shutdown()
        assert await asyncio.wait_for(idle_reader.read(), 5) == b""  # idle: closed at once
        asyncio.get_running_loop().call_later(0.2, release.set)
        await server.wait_closed(timeout=5)
        answer = await asyncio.wait_for(busy_reader.read(), 5)  # busy: answered, then closed
        assert answer.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in answer
        assert answer.endswith(b"slow") and not server.connections
        idle_writer.close()
        busy_writer.close()

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_wait_closed_aborts_what_outlives_the_timeout(tmp_path: Path) -> None:
    async def never(exchange: Exchange) -> None:
        await asyncio.sleep(3600)

    async def scenario() -> None:
        server = WebServer(lambda exchange: never(exchange))
        listener = await asyncio.get_running_loop().create_server(server, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.1)
        listener.close()
        server.shutdown()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await server.wait_closed(timeout=0.3)
        assert loop.time() - started < 2
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert not server.connections
        writer.close()

    asyncio.run(asyncio.wait_for(scenario(), 20))
