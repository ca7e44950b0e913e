"""The channel between the supervisor and one worker: a unix socketpair carrying JSON lines.

Each message is one JSON object on one line, with a ``type``.  A worker sends ``ready`` once
its services have started, ``heartbeat`` every second from a timer on its event loop (so a
loop that blocks stops them, which is how the supervisor and systemd's watchdog notice a stuck
worker), ``failed`` with a ``message`` when it cannot start, and ``reply`` to a request.  The
supervisor sends requests (``{"type": "ping", "id": 7}``); the worker answers each with
``{"type": "reply", "id": 7, "ok": true, ...}`` (``ok`` false and an ``error`` when it
could not).  Request types are registered on the worker side (``dropins.supervisor.worker``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["ChannelClosed", "RequestFailed", "SupervisorChannel", "decode", "encode"]

log = logging.getLogger("dropins.supervisor")

#: The longest message accepted (a worker's metrics samples may be large).
MAX_LINE = 16 * 1024 * 1024


class ChannelClosed(ConnectionError):
    """The worker went away before it replied."""


class RequestFailed(RuntimeError):
    """The worker answered a request with ``ok: false``."""


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n"


def decode(line: bytes) -> dict[str, Any] | None:
    """The message on ``line``, or None for anything that is not a JSON object with a type."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return None
    return message


class SupervisorChannel:
    """The supervisor's end of one worker's channel: hands what arrives to ``on_message``,
    matches replies to requests."""

    def __init__(self, sock: socket.socket, on_message: Callable[[dict[str, Any]], None]) -> None:
        self._sock = sock
        self._on_message = on_message
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self.closed = asyncio.Event()

    async def run(self) -> None:
        """Read messages until the worker closes its end (it exited)."""
        reader, self._writer = await asyncio.open_unix_connection(sock=self._sock, limit=MAX_LINE)
        try:
            while line := await reader.readline():
                message = decode(line)
                if message is None:
                    log.debug("ignoring a malformed control message: %r", line[:200])
                elif message["type"] == "reply":
                    future = self._pending.pop(message.get("id", -1), None)
                    if future is not None and not future.done():
                        future.set_result(message)
                else:
                    self._on_message(message)
        except (OSError, ValueError):  # reset by a dying worker; a line over MAX_LINE
            pass
        finally:
            self._close()

    def _close(self) -> None:
        self.closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ChannelClosed("the worker exited before it replied"))
        self._pending.clear()
        if self._writer is not None:
            self._writer.close()

    async def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send ``message`` (a dict with a ``type``) and return the worker's reply.

        Raises ``TimeoutError``, ``ChannelClosed`` or ``RequestFailed`` (the reply's error).
        """
        if self._writer is None or self.closed.is_set():
            raise ChannelClosed("the worker's control channel is closed")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self._writer.write(encode({**message, "id": request_id}))
            reply = await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(request_id, None)
        if not reply.get("ok", False):
            raise RequestFailed(str(reply.get("error", "the worker refused the request")))
        return reply
