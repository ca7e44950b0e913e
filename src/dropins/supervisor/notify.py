"""Telling systemd how the instance is doing: the sd_notify protocol and the watchdog.

systemd (``Type=notify``) passes ``NOTIFY_SOCKET``: the path of a datagram socket, or with a
leading ``@`` a name in the abstract namespace.  Each message is one datagram of
``KEY=VALUE`` lines.  The ``Notifier`` listens to a ``Lifecycle`` and says ``READY=1`` (with
``MAINPID``), ``RELOADING=1`` (with ``MONOTONIC_USEC``, which systemd asks of a reload),
``STOPPING=1``, and a ``STATUS=`` line with the phase and what the instance serves.

The protocol is a handful of lines, so it is done with the standard library rather than a
dependency.  systemd being away must never hurt a run: a missing or unreachable socket is
logged once, at debug level, and every later message is dropped silently.

With ``WATCHDOG_USEC`` set (and ``WATCHDOG_PID`` unset or ours), ``WATCHDOG=1`` is sent every
half interval by a timer *on the event loop*, and only when ``alive()`` says so: a loop that
blocks sends nothing, and systemd restarts the unit, which is the point of a watchdog.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from dropins.supervisor.lifecycle import Phase

if TYPE_CHECKING:
    import asyncio

    from dropins.supervisor.lifecycle import Lifecycle

__all__ = ["Notifier", "Watchdog", "notify_address", "watchdog_interval"]

log = logging.getLogger("dropins.supervisor")

#: How often the STATUS= line is refreshed while nothing else changes (seconds).
STATUS_INTERVAL = 5.0


def notify_address(value: str | None) -> str | bytes | None:
    """The socket address of ``NOTIFY_SOCKET``: a path, or ``@name`` as an abstract address."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # systemd also knows vsock:..., which a Python unit has no use for


def watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """Seconds between ``WATCHDOG=1`` messages (half of ``WATCHDOG_USEC``), or None if the
    watchdog is off or meant for another process (``WATCHDOG_PID``)."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = environ.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 2_000_000


class Notifier:
    """Sends sd_notify messages to ``NOTIFY_SOCKET``; does nothing without one."""

    def __init__(self, address: str | bytes | None,
                 describe: Callable[[], str] = lambda: "") -> None:
        self.address = address
        #: what the instance serves, for STATUS= (e.g. "2 workers, 5 open connections")
        self.describe = describe
        self._socket: socket.socket | None = None
        self._broken = False
        self._last_status = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None,
                     describe: Callable[[], str] = lambda: "") -> Notifier:
        environ = os.environ if environ is None else environ
        return cls(notify_address(environ.get("NOTIFY_SOCKET")), describe)

    @property
    def enabled(self) -> bool:
        return self.address is not None and not self._broken

    def send(self, *lines: str) -> bool:
        """Send one message of ``lines``; False if it could not be (logged once)."""
        if not self.enabled or not lines:
            return False
        assert self.address is not None
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)  # never let a stuck systemd block the loop
            self._socket.sendto("\n".join(lines).encode(), self.address)
        except OSError as error:
            self._broken = True
            log.debug("cannot notify systemd at %s: %s; not trying again",
                      os.environ.get("NOTIFY_SOCKET"), error.strerror or error)
            self.close()
            return False
        return True

    def status_line(self, phase: Phase) -> str:
        detail = self.describe()
        return f"STATUS={phase.value}" + (f": {detail}" if detail else "")

    def phase_changed(self, phase: Phase) -> None:
        """A ``Lifecycle`` listener: the message that tells systemd of ``phase``."""
        status = self._last_status = self.status_line(phase)
        if phase is Phase.READY:
            self.send("READY=1", f"MAINPID={os.getpid()}", status)
        elif phase is Phase.RELOADING:
            usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", status)
        elif phase is Phase.STOPPING:
            self.send("STOPPING=1", status)
        else:
            self.send(status)

    def refresh_status(self, phase: Phase) -> None:
        """Send STATUS= again if what it says changed (open connections, workers)."""
        status = self.status_line(phase)
        if status != self._last_status:
            self._last_status = status
            self.send(status)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class Watchdog:
    """``WATCHDOG=1`` every ``interval`` seconds from a loop timer, while ``alive()``.

    Also refreshes the STATUS= line now and then, on the same timer, so a notifying instance
    has one timer, not two.
    """

    def __init__(self, notifier: Notifier, lifecycle: Lifecycle, interval: float | None,
                 alive: Callable[[], bool] = lambda: True) -> None:
        self.notifier = notifier
        self.lifecycle = lifecycle
        self.interval = interval
        self.alive = alive
        self._tick = min(interval, STATUS_INTERVAL) if interval else STATUS_INTERVAL
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_status = 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.notifier.enabled:
            return
        self._loop = loop
        self._next_status = loop.time() + STATUS_INTERVAL
        self._fire()

    def _fire(self) -> None:
        assert self._loop is not None
        if self.interval and self.alive():
            self.notifier.send("WATCHDOG=1")
        now = self._loop.time()
        if now >= self._next_status:
            self._next_status = now + STATUS_INTERVAL
            self.notifier.refresh_status(self.lifecycle.phase)
        self._handle = self._loop.call_later(self._tick, self._fire)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
