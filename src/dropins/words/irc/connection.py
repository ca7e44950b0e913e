"""One IRC client connection: framing, limits, registration, and the output side.

Limits, each a numeric or a disconnect that affects nobody else: lines over 512 bytes (tags
aside) get 417 and are dropped; a client sending faster than its token bucket has its reading
paused until tokens come back (TCP pushes back on a flood); a client that does not read is
disconnected once its output queue passes ``max_queue`` bytes; a client silent for
``ping_timeout`` seconds is sent a PING and dropped if it stays silent as long again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from dropins.words.irc import numerics as n
from dropins.words.irc.parse import MAX_LINE, MAX_TAGS, decode, format_line, parse
from dropins.words.realm import Message, Realm, User

__all__ = ["Connection", "Settings"]

log = logging.getLogger("dropins.words")


@dataclass
class Settings:
    """What every connection shares: the realm, the login check and the limits."""

    realm: Realm
    login: Any = None  # an async callable (user, password) -> account name or None
    allow_register: bool = False
    motd: list[str] | None = None
    max_queue: int = 1 << 20
    ping_timeout: float = 120.0
    flood_burst: int = 20
    flood_rate: float = 5.0
    max_channels: int = 50
    connections: set[Connection] = field(default_factory=set)


class Connection(asyncio.Protocol):
    """The server side of one IRC client; commands are in ``commands``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.realm = settings.realm
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.discarding = False
        self.user: User | None = None
        self.nick: str | None = None
        self.ident: str | None = None
        self.realname = ""
        self.password: str | None = None
        self.account: str | None = None
        self.caps: set[str] = set()
        self.cap_negotiating = False
        self.sasl: str | None = None
        self.tokens = float(settings.flood_burst)
        self.last_refill = time.monotonic()
        self.last_seen = time.monotonic()
        self.pinged = False
        self.paused = False
        self.busy = False
        self.closed = False
        self.host = "localhost"
        self.pending: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # transport
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.settings.connections.add(self)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.host = str(peer[0])
        self._schedule_ping()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.settings.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        for task in self._tasks:
            task.cancel()
        if self.user is not None:
            self.realm.remove_user(self.user, "Connection closed" if exc is None else str(exc))

    def data_received(self, data: bytes) -> None:
        self.last_seen = time.monotonic()
        self.pinged = False
        self.buffer += data
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                if len(self.buffer) > MAX_LINE + MAX_TAGS:
                    self.discarding = True
                    self.buffer = b""
                break
            raw, self.buffer = self.buffer[:end], self.buffer[end + 1:]
            if self.discarding:
                self.discarding = False
                self.reply(n.ERR_INPUTTOOLONG, "Input line was too long")
                continue
            self.pending.append(decode(raw.rstrip(b"\r")))
        self._drain()

    def _drain(self) -> None:
        """Handle queued lines while the flood bucket has tokens, else pause reading."""
        from dropins.words.irc.commands import dispatch

        while self.pending and not self.closed and not self.busy:
            now = time.monotonic()
            self.tokens = min(float(self.settings.flood_burst),
                              self.tokens + (now - self.last_refill) * self.settings.flood_rate)
            self.last_refill = now
            if self.tokens < 1:
                if not self.paused and self.transport is not None:
                    self.paused = True
                    self.transport.pause_reading()
                    asyncio.get_running_loop().call_later(
                        (1 - self.tokens) / self.settings.flood_rate, self._resume)
                return
            self.tokens -= 1
            text = self.pending.pop(0)
            body = text.split(" ", 1)[1] if text.startswith("@") and " " in text else text
            if len(body.encode("utf-8", "replace")) > MAX_LINE - 2:
                self.reply(n.ERR_INPUTTOOLONG, "Input line was too long")
                continue
            line = parse(text)
            if line is not None:
                dispatch(self, line)

    def _resume(self) -> None:
        self.paused = False
        if self.closed or self.transport is None:
            return
        self.transport.resume_reading()
        self._drain()

    def _schedule_ping(self) -> None:
        timeout = self.settings.ping_timeout
        self._timer = asyncio.get_running_loop().call_later(timeout / 2, self._check_ping)

    def _check_ping(self) -> None:
        if self.closed:
            return
        idle = time.monotonic() - self.last_seen
        if self.pinged and idle >= self.settings.ping_timeout:
            self.close("Ping timeout")
            return
        if idle >= self.settings.ping_timeout / 2 and not self.pinged:
            self.pinged = True
            self.write(None, "PING", [self.realm.server_name])
        self._schedule_ping()

    def spawn(self, coroutine: Any) -> None:
        """Run a login check (hashing runs in a thread) without blocking other lines."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        self.busy = True
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        """Lines wait while a check runs, so they are handled in the order they came."""
        self._tasks.discard(task)
        self.busy = False
        if not task.cancelled() and task.exception() is not None:
            log.error("words: error for %s", self.label, exc_info=task.exception())
            self.close("Server error")
        self._drain()

    # output
    def write(self, source: str | None, command: str, params: list[str],
              tags: dict[str, str] | None = None) -> None:
        if self.closed or self.transport is None:
            return
        self.transport.write(format_line(source, command, params, tags))
        if self.transport.get_write_buffer_size() > self.settings.max_queue:
            log.warning("words: %s does not read its messages; disconnected", self.label)
            self.closed = True
            self.transport.abort()

    def reply(self, code: str, *params: str) -> None:
        """A numeric to this client, addressed to its nick (``*`` before it has one)."""
        self.write(self.realm.server_name, code, [self.nick or "*", *params])

    def deliver(self, message: Message) -> None:
        """The realm's ``User.deliver``: a Message in the client's negotiated form."""
        command = message.command
        if command == "ACCOUNT" and "account-notify" not in self.caps:
            return
        if command == "AWAY" and "away-notify" not in self.caps:
            return
        tags: dict[str, str] = {}
        if "server-time" in self.caps:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(message.time))
            tags["time"] = f"{stamp}.{int(message.time * 1000) % 1000:03d}Z"
        if "account-tag" in self.caps and message.account:
            tags["account"] = message.account
        self.write(message.source, command, message.params, tags or None)

    def close(self, reason: str) -> None:
        if self.closed or self.transport is None:
            return
        self.write(None, "ERROR", [f"Closing link: {reason}"])
        if self.user is not None:
            self.realm.remove_user(self.user, reason)
            self.user = None
        self.closed = True
        self.transport.close()

    @property
    def label(self) -> str:
        return f"{self.nick or '?'} from {self.host}"
