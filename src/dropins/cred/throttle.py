"""``FailureThrottle``: at most so many password guesses per client, counted before hashing.

Two token buckets limit guessing from one client:

* one per (address, user name): ``burst`` guesses, refilled at ``per_second``.  Keying on the
  user as well means that behind a reverse proxy, where every client has the proxy's address,
  someone guessing alice's password does not lock bob out;
* one per address, a looser ceiling (``address_burst``, ``address_per_second``) that stops one
  address from trying a few passwords for each of many user names.

A login *takes* a token from both buckets before its password is checked, and the login is
refused at once (HTTP 429) when either is empty, so parallel guesses are counted as they
arrive, not when their answers come back half a second later, and a flood costs the server no
hash once the buckets are empty.  A login that succeeds, or that could not be checked at all
(the hashing queue was full), gives its tokens back: only wrong passwords use them up.

The tables are bounded: buckets that have refilled are forgotten first, then the oldest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

__all__ = ["FailureThrottle", "TokenBuckets"]


class TokenBuckets:
    """A bounded table of token buckets, one per key, each ``burst`` tokens at most."""

    def __init__(self, burst: float, per_second: float, max_keys: int) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError("burst must be at least 1 and per_second positive")
        self.burst = burst
        self.per_second = per_second
        self.max_keys = max_keys
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key: (tokens, when)

    def __len__(self) -> int:
        return len(self._buckets)

    def tokens(self, key: Hashable, now: float) -> float:
        tokens, when = self._buckets.get(key, (self.burst, now))
        return min(float(self.burst), tokens + (now - when) * self.per_second)

    def wait(self, key: Hashable, now: float) -> float:
        """0 if ``key`` has a token now, else the seconds until it has one."""
        tokens = self.tokens(key, now)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.per_second

    def add(self, key: Hashable, now: float, change: float) -> None:
        """Take (``change`` < 0) or give back tokens, within 0 and ``burst``."""
        tokens = min(float(self.burst), max(0.0, self.tokens(key, now) + change))
        self._buckets.pop(key, None)
        if tokens >= self.burst:
            return  # a full bucket is the same as none
        if len(self._buckets) >= self.max_keys:
            self._forget_some(now)
        self._buckets[key] = (tokens, now)

    def _forget_some(self, now: float) -> None:
        full = [key for key in self._buckets if self.tokens(key, now) >= self.burst]
        for key in full:
            del self._buckets[key]
        keep = self.max_keys * 9 // 10  # room for a while: no scan at every failure
        for key in list(self._buckets)[: max(0, len(self._buckets) - keep)]:
            del self._buckets[key]


class FailureThrottle:
    """Guesses per (address, user) and per address; see the module's docstring."""

    def __init__(self, burst: int = 10, per_second: float = 0.5, address_burst: int = 20,
                 address_per_second: float = 1.0, max_addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._per_user = TokenBuckets(burst, per_second, max_addresses)
        self._per_address = TokenBuckets(address_burst, address_per_second, max_addresses)
        self._clock = clock

    def attempt(self, address: Hashable, user: str) -> float:
        """Take a token for a login of ``user`` from ``address``: 0 if taken, else the
        seconds to wait before trying again (and nothing is taken)."""
        now = self._clock()
        wait = max(self._per_user.wait((address, user), now),
                   self._per_address.wait(address, now))
        if not wait:
            self._per_user.add((address, user), now, -1)
            self._per_address.add(address, now, -1)
        return wait

    def give_back(self, address: Hashable, user: str) -> None:
        """Return the token of an ``attempt`` whose password was right, or never checked."""
        now = self._clock()
        self._per_user.add((address, user), now, +1)
        self._per_address.add(address, now, +1)
