"""An upgraded connection (a WebSocket) passed through to a backend, byte for byte.

After the backend answered an upgrade request with 101, the client's HTTP connection is
handed to a ``Tunnel`` (``HttpConnection.switch_protocol``); from then on the bytes each side
sends go to the other unchanged: frames, pings and closes are the two ends' business.  Why
each rule:

* flow control both ways: the client's reading pauses while more than ``HIGH_WATER`` bytes
  wait to be written to the backend (``backlogged``), and the backend is read only as fast
  as the client takes the data (``drain``), so a fast sender costs a few buffers;
* one side's end ends the other: the backend closing (or failing) closes the client's
  connection after what was written is sent, and the client leaving closes the backend
  connection, so neither is left open with nobody on the other end;
* a graceful stop closes both (the two ends then see the connection go; a WebSocket client
  reconnects), since the tunnel cannot speak the protocol to close it politely.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from dropins.web.exchange import ClientDisconnected

if TYPE_CHECKING:
    from dropins.web.protocol import HttpConnection
    from dropins.web.proxypool import BackendConnection

__all__ = ["Tunnel"]

logger = logging.getLogger("dropins.web")

HIGH_WATER = 256 * 1024
_BLOCK = 64 * 1024


class Tunnel:
    """Relays an upgraded client connection to ``backend`` and back."""

    def __init__(self, http: HttpConnection, backend: BackendConnection,
                 from_backend: bytes) -> None:
        self.http = http
        self.backend = backend
        self._from_backend = from_backend
        self._backlogged = False
        self._draining: asyncio.Task[None] | None = None
        self._pump = http.loop.create_task(self._backend_to_client())

    # -- UpgradedProtocol: what the client sends
    def data_received(self, data: bytes) -> None:
        writer = self.backend.writer
        if writer.is_closing():
            return
        writer.write(data)
        if writer.transport.get_write_buffer_size() > HIGH_WATER and self._draining is None:
            self._backlogged = True
            self.http.update_reading()
            self._draining = self.http.loop.create_task(self._drain_backend())

    async def _drain_backend(self) -> None:
        with contextlib.suppress(Exception):
            await self.backend.writer.drain()
        self._backlogged = False
        self._draining = None
        self.http.update_reading()

    def eof_received(self) -> bool | None:
        writer = self.backend.writer
        if writer.can_write_eof() and not writer.is_closing():
            writer.write_eof()  # the backend sees the half-close and may still answer
        transport = self.http.transport
        return transport is None or transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self.backend.close()
        self._pump.cancel()

    def graceful_shutdown(self) -> None:
        self.backend.close()
        self.http.close()

    @property
    def backlogged(self) -> bool:
        return self._backlogged

    # -- what the backend sends
    async def _backend_to_client(self) -> None:
        http, reader = self.http, self.backend.reader
        try:
            if self._from_backend:
                http.write_raw(self._from_backend)
            while True:
                await http.drain()
                data = await reader.read(_BLOCK)
                if not data:
                    break  # the backend closed: so does the client's side
                http.write_raw(data)
        except ClientDisconnected:
            pass
        except OSError as error:
            logger.debug("upgraded connection to the backend lost: %s", error)
        finally:
            self.backend.close()
            http.close()
