"""``FailureThrottle``: at most so many failed logins per client address (token buckets).

Each address has a bucket of ``burst`` tokens that refills at ``per_second``; a failed login
takes a token, and an address whose bucket is empty is told to come back later without its
login being checked at all, so that guessing from one address costs the server nothing once
the bucket is empty.  Successful logins take nothing.  The table of addresses is bounded:
buckets that have refilled are forgotten first, then the oldest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

__all__ = ["FailureThrottle"]


class FailureThrottle:
    def __init__(self, burst: int = 10, per_second: float = 0.5, max_addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError("burst must be at least 1 and per_second positive")
        self.burst = burst
        self.per_second = per_second
        self.max_addresses = max_addresses
        self._clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # address: (tokens, when)

    def _tokens(self, address: Hashable, now: float) -> float:
        tokens, when = self._buckets.get(address, (self.burst, now))
        return min(float(self.burst), tokens + (now - when) * self.per_second)

    def retry_after(self, address: Hashable) -> float:
        """0 if ``address`` may try to log in now, else the seconds until it may."""
        tokens = self._tokens(address, self._clock())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.per_second

    def failed(self, address: Hashable) -> None:
        """Take a token from ``address``'s bucket."""
        now = self._clock()
        tokens = max(0.0, self._tokens(address, now) - 1)
        self._buckets.pop(address, None)
        if len(self._buckets) >= self.max_addresses:
            self._forget_some(now)
        self._buckets[address] = (tokens, now)

    def _forget_some(self, now: float) -> None:
        full = [key for key in self._buckets if self._tokens(key, now) >= self.burst]
        for key in full:
            del self._buckets[key]
        keep = self.max_addresses * 9 // 10  # room for a while: no scan at every failure
        for key in list(self._buckets)[: max(0, len(self._buckets) - keep)]:
            del self._buckets[key]
