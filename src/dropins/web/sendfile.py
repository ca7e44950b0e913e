"""Sending part of a file as a response body: ``loop.sendfile`` in slices, bounded in time.

``loop.sendfile`` reports no progress while it runs, so a client that stops reading is
detected per slice (a client slower than one slice per send timeout is dropped too).  The
slice is cancelled before the connection is aborted: aborting a transport in the middle of
asyncio's sendfile leaves a writer registered on the closed socket, which can then fire for
the next connection given the same number.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, BinaryIO

from dropins.web.exchange import ClientDisconnected

if TYPE_CHECKING:
    from dropins.web.protocol import HttpConnection

__all__ = ["send_file"]

_SLICE = 512 * 1024
_COPY_BLOCK = 256 * 1024


async def send_file(connection: HttpConnection, file: BinaryIO, offset: int, count: int) -> None:
    """Send ``count`` bytes of ``file`` from ``offset``; each slice must go out within the
    send timeout.  Raises ClientDisconnected when the client is gone or too slow."""
    transport = connection.transport
    if connection.closing or transport is None:
        raise ClientDisconnected("client disconnected")
    try:
        while count > 0:
            size = min(count, _SLICE)
            try:
                sent = await asyncio.wait_for(
                    connection.loop.sendfile(transport, file, offset, size),
                    connection.limits.send_timeout)
            except NotImplementedError:  # e.g. uvloop: no loop.sendfile at all
                sent = await _copy_file(connection, file, offset, size)
            except TimeoutError:
                connection.on_send_timeout()
                raise ClientDisconnected("the client stopped reading") from None
            if sent != size:
                raise ClientDisconnected("the file shrank while being sent")
            offset += size
            count -= size
    except (OSError, RuntimeError) as error:  # RuntimeError: "transport is closing"
        raise ClientDisconnected(str(error)) from error


async def _copy_file(connection: HttpConnection, file: BinaryIO, offset: int, count: int) -> int:
    """sendfile by hand: read and write, waiting for the client between pieces."""
    file.seek(offset)
    sent = 0
    while sent < count:
        chunk = file.read(min(count - sent, _COPY_BLOCK))
        if not chunk:
            break
        sent += len(chunk)
        connection.write_raw(chunk)
        await connection.drain()
    return sent
