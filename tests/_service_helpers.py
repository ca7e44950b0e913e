"""Helpers shared by the service-layer tests: bounded asyncio runs and loopback clients."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run ``coroutine`` in a fresh loop, failing (not hanging) after ``timeout`` seconds."""

    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, timeout)

    return asyncio.run(bounded())


def host_port(address: str) -> tuple[str, int]:
    """``tcp:127.0.0.1:4321`` or ``tcp6:[::1]:4321`` -> (host, port)."""
    rest = address.split(":", 1)[1]
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)


async def exchange(address: str, payload: bytes, *, ssl: Any = None,
                   timeout: float = 5.0) -> bytes:
    """Connect to ``address``, send ``payload``, half-close, and read until EOF."""
    if address.startswith("unix:"):
        from dropins.service.endpoints import split_endpoint

        path = split_endpoint(address)[1][0]  # unescaped
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), timeout)
    else:
        host, port = host_port(address)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ssl), timeout)
    try:
        writer.write(payload)
        await writer.drain()
        if writer.can_write_eof():
            try:
                writer.write_eof()
            except OSError:  # the server closed first
                pass
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
