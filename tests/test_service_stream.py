"""StreamServerService on real loopback sockets: both factory styles, graceful and forced stop."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from _service_helpers import exchange, host_port, run
from dropins.service import Application, ListenError, StreamServerService

LOOPBACK = "tcp:0:interface=127.0.0.1"


class UpperProtocol(asyncio.Protocol):
    """Answers each chunk in upper case; closes when the peer half-closes."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data.upper())

    def eof_received(self) -> bool:
        self.transport.close()
        return False


async def upper_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write((await reader.read()).upper())
    await writer.drain()


def test_protocol_factory_serves_real_connections() -> None:
    async def scenario() -> list[bytes]:
        service = StreamServerService(LOOPBACK, UpperProtocol)
        await service.start()  # binds by itself when privileged_start was not called
        try:
            [address] = service.addresses
            assert address.startswith("tcp:127.0.0.1:") and host_port(address)[1] > 0
            return list(await asyncio.gather(*(exchange(address, f"hi {n}".encode())
                                               for n in range(5))))
        finally:
            await service.stop()

    assert run(scenario()) == [f"HI {n}".encode() for n in range(5)]


def test_streams_handler_serves_and_closes_the_writer() -> None:
    async def scenario() -> bytes:
        service = StreamServerService(LOOPBACK, upper_handler)
        assert service.is_handler
        service.privileged_start()
        await service.start()
        try:
            return await exchange(service.addresses[0], b"streams")
        finally:
            await service.stop()

    assert run(scenario()) == b"STREAMS"


def test_handler_object_with_async_call_is_a_handler() -> None:
    class Handler:
        async def __call__(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
            writer.write(b"object")

    async def scenario() -> bytes:
        service = StreamServerService(LOOPBACK, Handler())
        await service.start()
        try:
            return await exchange(service.addresses[0], b"")
        finally:
            await service.stop()

    assert run(scenario()) == b"object"


def test_stop_closes_the_listener_and_releases_the_port() -> None:
    async def scenario() -> None:
        service = StreamServerService(LOOPBACK, upper_handler)
        await service.start()
        host, port = host_port(service.addresses[0])
        await service.stop()
        assert not service.running and service.addresses == []
        with pytest.raises(OSError):
            await asyncio.wait_for(asyncio.open_connection(host, port), 2)
        # the port is free again: the same endpoint binds at once
        again = StreamServerService(f"tcp:{port}:interface=127.0.0.1", upper_handler)
        await again.start()
        await again.stop()

    run(scenario())


def test_graceful_stop_lets_an_in_flight_connection_finish() -> None:
    async def scenario() -> tuple[bytes, float]:
        started = asyncio.Event()

        async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readexactly(4)
            started.set()
            await asyncio.sleep(0.5)
            writer.write(b"done")
            await writer.drain()

        app = Application(shutdown_timeout=5)
        service = StreamServerService(LOOPBACK, slow)
        service.set_parent(app)
        await app.start()
        host, port = host_port(service.addresses[0])
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"ping")
        await asyncio.wait_for(started.wait(), 5)
        began = time.monotonic()
        stopping = asyncio.ensure_future(app.stop())
        await asyncio.sleep(0.1)
        # the listener is closed as soon as stop begins
        with pytest.raises(OSError):
            await asyncio.wait_for(asyncio.open_connection(host, port), 2)
        reply = await asyncio.wait_for(reader.read(), 5)
        await asyncio.wait_for(stopping, 5)
        writer.close()
        return reply, time.monotonic() - began

    reply, elapsed = run(scenario())
    assert reply == b"done"
    assert elapsed < 4  # finished with the connection, well before the 5 s timeout


def test_stop_aborts_connections_that_outlive_the_timeout(
        caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> tuple[bytes, float, bool]:
        cancelled = asyncio.Event()
        started = asyncio.Event()

        async def stuck(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        service = StreamServerService(LOOPBACK, stuck, shutdown_timeout=0.3)
        await service.start()
        reader, writer = await asyncio.open_connection(*host_port(service.addresses[0]))
        await asyncio.wait_for(started.wait(), 5)
        began = time.monotonic()
        await service.stop()
        elapsed = time.monotonic() - began
        try:
            data = await asyncio.wait_for(reader.read(), 5)
        except ConnectionResetError:
            data = b""
        writer.close()
        return data, elapsed, cancelled.is_set()

    with caplog.at_level(logging.WARNING, logger="dropins.service"):
        data, elapsed, cancelled = run(scenario())
    assert data == b"" and cancelled
    assert 0.3 <= elapsed < 0.3 + 1.5  # waited the timeout, then returned within the margin
    assert any("aborting 1 connection" in r.getMessage() for r in caplog.records)


def test_protocol_connections_are_aborted_after_the_timeout() -> None:
    class Silent(asyncio.Protocol):
        """Never answers, never closes: only an abort ends it."""

        lost: list[Exception | None] = []

        def connection_lost(self, exc: Exception | None) -> None:
            Silent.lost.append(exc)

    async def scenario() -> float:
        service = StreamServerService(LOOPBACK, Silent, shutdown_timeout=0.2)
        await service.start()
        _, writer = await asyncio.open_connection(*host_port(service.addresses[0]))
        for _ in range(100):
            if service._transports:
                break
            await asyncio.sleep(0.01)
        began = time.monotonic()
        await service.stop()
        writer.close()
        return time.monotonic() - began

    elapsed = run(scenario())
    assert len(Silent.lost) == 1  # connection_lost ran once, after the abort
    assert elapsed < 0.2 + 1.5


def test_graceful_shutdown_hook_lets_idle_connections_close_at_once() -> None:
    class KeepAlive(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def graceful_shutdown(self) -> None:
            self.transport.close()  # idle: nothing in flight, close now

    async def scenario() -> tuple[bytes, float]:
        service = StreamServerService(LOOPBACK, KeepAlive, shutdown_timeout=10)
        await service.start()
        reader, writer = await asyncio.open_connection(*host_port(service.addresses[0]))
        for _ in range(100):
            if service._transports:
                break
            await asyncio.sleep(0.01)
        began = time.monotonic()
        await service.stop()
        elapsed = time.monotonic() - began
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return data, elapsed

    data, elapsed = run(scenario())
    assert data == b""
    assert elapsed < 5  # not the 10 s shutdown timeout


def test_a_failing_handler_is_logged_and_its_connection_closed(
        caplog: pytest.LogCaptureFixture) -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise ValueError("handler bug")

    async def scenario() -> bytes:
        service = StreamServerService(LOOPBACK, broken)
        await service.start()
        try:
            return await exchange(service.addresses[0], b"x")
        finally:
            await service.stop()

    with caplog.at_level(logging.ERROR, logger="dropins.service"):
        assert run(scenario()) == b""
    [record] = [r for r in caplog.records if "error in connection handler" in r.getMessage()]
    assert record.exc_info is not None and "handler bug" in str(record.exc_info[1])


def test_address_in_use_error_text() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        endpoint = f"tcp:{port}:interface=127.0.0.1"
        service = StreamServerService(endpoint, UpperProtocol)
        with pytest.raises(ListenError) as caught:
            service.privileged_start()
    assert str(caught.value) == f"cannot listen on {endpoint}: address already in use"
    assert caught.value.endpoint == endpoint


def test_no_such_address_error_text() -> None:
    endpoint = "tcp:0:interface=192.0.2.1"  # TEST-NET-1: never assigned to this machine
    with pytest.raises(ListenError) as caught:
        StreamServerService(endpoint, UpperProtocol).privileged_start()
    assert str(caught.value) == f"cannot listen on {endpoint}: no such address on this machine"


def test_stop_without_start_releases_a_bound_socket() -> None:
    service = StreamServerService(LOOPBACK, UpperProtocol)
    service.privileged_start()
    host, port = host_port(service.addresses[0])
    run(service.stop())
    with socket.socket() as again:
        again.bind((host, port))  # free again


def test_several_servers_share_one_shutdown_deadline() -> None:
    # Stopped one after another, two servers with a stuck connection each must still be done
    # within the application's shutdown timeout, not within twice that.
    async def scenario() -> float:
        started = asyncio.Semaphore(0)

        async def stuck(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            started.release()
            await asyncio.sleep(60)

        application = Application(shutdown_timeout=0.6)
        servers = [StreamServerService(LOOPBACK, stuck) for _ in range(2)]
        for server in servers:
            application.add_service(server)
        await application.start()
        clients = [await asyncio.open_connection(*host_port(server.addresses[0]))
                   for server in servers]
        for _ in servers:
            await asyncio.wait_for(started.acquire(), 5)
        began = time.monotonic()
        await application.stop()
        elapsed = time.monotonic() - began
        for _, writer in clients:
            writer.close()
        return elapsed

    elapsed = run(scenario())
    assert 0.5 < elapsed < 1.0, elapsed
