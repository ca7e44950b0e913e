"""A deadline for stopping that holds whatever the services do: a watchdog thread.

A timeout kept by the event loop cannot bound a ``stop()`` that blocks the loop (a
``time.sleep``, a blocking call), and ``asyncio.wait_for`` even waits for a cancelled ``stop()``
that swallows ``CancelledError`` or awaits in a ``finally:``.  A thread is independent of both:
once the first stop signal has arrived it waits ``seconds`` and then calls ``expire()``, which
ends the process.

``lock`` is the runner's exit lock: whoever ends the process (this thread, a second Ctrl-C, the
main thread releasing the pidfile) holds it, so two of them never interleave, and a deadline
disarmed under it can no longer fire.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Deadline:
    """Calls ``expire()`` from a daemon thread ``seconds`` after ``start()``, unless disarmed."""

    def __init__(self, seconds: float, expire: Callable[[], object],
                 lock: threading.RLock) -> None:
        self.seconds = seconds
        self._expire = expire
        self._lock = lock
        self._disarmed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="dropins-stop-deadline",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        if self._disarmed.wait(self.seconds):
            return
        with self._lock:
            if not self._disarmed.is_set():
                self._expire()

    def disarm(self) -> None:
        with self._lock:
            self._disarmed.set()
