"""Verifying passwords without letting a flood of logins stall the service.

A password hash costs a tenth of a second of CPU by design, so two things keep a busy server
responsive:

* ``HashPool`` runs verifications on a few threads (the hashing libraries release the GIL) with
  a bounded number waiting: when it is full, a login is refused at once with ``LoginThrottled``
  instead of queueing behind hundreds of guesses, so the event loop and the users whose logins
  are remembered are never held up.
* ``RecentLogins`` remembers, for a short time, that a user's password was right, so that a
  client sending the same credentials with every request (HTTP Basic) costs one hash per
  ``lifetime``, not one per request.  It keeps a keyed digest (HMAC-SHA256 under a random key
  made at start) of the password and the stored hash, never the password; a changed hash in the
  file no longer matches, a removed user is refused before the cache is asked, and the cache is
  bounded in size.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from dropins.cred.errors import LoginThrottled

__all__ = ["HashPool", "RecentLogins", "default_pool"]

Result = TypeVar("Result")


class HashPool:
    """A few threads for password hashing, with at most ``max_waiting`` jobs queued."""

    def __init__(self, workers: int | None = None, max_waiting: int | None = None,
                 retry_after: float = 1.0) -> None:
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.max_waiting = 4 * self.workers if max_waiting is None else max_waiting
        self.retry_after = retry_after
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending = 0  # running + waiting; lowered when the job's future is done, so a
        #                    login cancelled while hashing counts until the hashing ends, and
        #                    one cancelled while queued (never run) stops counting at once

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, function: Callable[..., Result], *args: object) -> Result:
        """``function(*args)`` on a pool thread; LoginThrottled at once if the queue is full."""
        with self._lock:
            if self._pending >= self.workers + self.max_waiting:
                raise LoginThrottled(self.retry_after)
            self._pending += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers,
                                                    thread_name_prefix="dropins-hash")
            executor = self._executor
            try:
                future = executor.submit(function, *args)
            except RuntimeError:  # the executor was shut down at interpreter exit
                self._pending -= 1
                raise LoginThrottled(self.retry_after) from None
        # Outside the lock: the callback runs at once, in this thread, if the job is done.
        future.add_done_callback(self._finished)
        return await asyncio.wrap_future(future)

    def _finished(self, _future: object) -> None:
        """Called for every job, run or cancelled before it could run."""
        with self._lock:
            self._pending -= 1


_default_pool: HashPool | None = None


def default_pool() -> HashPool:
    """The pool that checkers share unless given their own (one per process)."""
    global _default_pool
    if _default_pool is None:
        _default_pool = HashPool()
    return _default_pool


class RecentLogins:
    """Which (user, password) pairs were verified right in the last ``lifetime`` seconds."""

    def __init__(self, lifetime: float = 30.0, size: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime = lifetime
        self.size = size
        self._clock = clock
        self._key = os.urandom(32)
        self._entries: dict[str, tuple[bytes, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def _digest(self, user: str, password: str, stored: str) -> bytes:
        message = f"{len(user)}:{user}{len(stored)}:{stored}{password}"
        return hmac.new(self._key, message.encode("utf-8", "surrogatepass"),
                        hashlib.sha256).digest()

    def recalls(self, user: str, password: str, stored: str) -> bool:
        """Whether this password was verified right against ``stored`` a moment ago."""
        entry = self._entries.get(user)
        if entry is None or not self.lifetime:
            return False
        digest, expires = entry
        if expires <= self._clock():
            self._entries.pop(user, None)
            return False
        return hmac.compare_digest(digest, self._digest(user, password, stored))

    def remember(self, user: str, password: str, stored: str) -> None:
        """Note a verified login (the oldest entries make room when the cache is full)."""
        if not self.lifetime or not self.size:
            return
        self._entries.pop(user, None)
        while len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]
        self._entries[user] = (self._digest(user, password, stored),
                               self._clock() + self.lifetime)

    def clear(self) -> None:
        self._entries.clear()
