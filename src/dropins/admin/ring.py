"""The admin's log ring: the last log lines of the process, in memory, bounded, live.

A ``logging.Handler`` on the root logger keeps the last ``size`` records as small dicts (a
sequence number, time, level, logger and message), so that ``/api/logs`` can answer a query
and ``/api/logs/stream`` can send new lines as they come.  The ring is bounded (a deque), so
a chatty application cannot grow the process; a slow SSE client's queue is bounded too, and
it is dropped rather than let fall behind without end.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from typing import Any

__all__ = ["LEVELS", "LogRing", "collect_early", "take_ring"]

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
#: Lines a live client may have waiting before it is dropped.
MAX_QUEUED = 1000


class LogRing(logging.Handler):
    """Keeps the last ``size`` log records and tells live subscribers of new ones."""

    def __init__(self, size: int = 5000) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: deque[dict[str, Any]] = deque(maxlen=size)
        self._sequence = 0
        self._guard = threading.Lock()
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Collect the process's records (again: no harm); live lines go out on ``loop``."""
        if loop is not None:
            self._loop = loop
        logging.getLogger().addHandler(self)

    def detach(self) -> None:
        logging.getLogger().removeHandler(self)
        for queue in list(self._subscribers):
            queue.put_nowait(None)
        self._subscribers.clear()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            message += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        with self._guard:
            self._sequence += 1
            line = {"seq": self._sequence, "time": record.created,
                    "level": record.levelname.lower(), "logger": record.name,
                    "message": message}
            self.lines.append(line)
        self.add(line)

    def add(self, line: dict[str, Any]) -> None:
        """Deliver ``line`` to the live subscribers (from any thread)."""
        loop = self._loop
        if loop is None or not self._subscribers:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(line)
        else:
            try:
                loop.call_soon_threadsafe(self._deliver, line)
            except RuntimeError:
                pass  # the loop is closed: the process is ending

    def _deliver(self, line: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.qsize() >= MAX_QUEUED:
                self._subscribers.discard(queue)
                queue.put_nowait(None)  # too slow: the stream ends, the client reconnects
            else:
                queue.put_nowait(line)

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        """A queue of new lines (None: the stream is over)."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._subscribers.discard(queue)

    def query(self, since: int = 0, level: str | None = None, pattern: Any = None,
              limit: int = 1000) -> list[dict[str, Any]]:
        """The lines after sequence number ``since``, at least ``level``, matching ``pattern``;
        the last ``limit`` of them."""
        least = LEVELS.get(level or "debug", 10)
        with self._guard:
            lines = list(self.lines)
        found = [line for line in lines if line["seq"] > since
                 and LEVELS.get(line["level"], 0) >= least
                 and (pattern is None or pattern.search(line["message"]))]
        return found[-limit:]


def matches(line: dict[str, Any], level: str | None, pattern: Any) -> bool:
    """Whether a live line passes a stream's filters."""
    return (LEVELS.get(line["level"], 0) >= LEVELS.get(level or "debug", 10)
            and (pattern is None or bool(pattern.search(line["message"]))))


_early: LogRing | None = None


def collect_early() -> LogRing:
    """Start collecting now, before the admin exists (the runner calls it as soon as logging is
    set up with ``--admin``): the lines of building the application then reach the ring."""
    global _early
    if _early is None:
        _early = LogRing()
        _early.attach(None)
    return _early


def take_ring() -> LogRing:
    """The ring ``collect_early`` started (once), else a new one."""
    global _early
    ring, _early = _early, None
    return ring if ring is not None else LogRing()
