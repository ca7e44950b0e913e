"""The phases of a running instance, which systemd, health checks and logs all report.

One ``Lifecycle`` belongs to whatever runs the service tree: the single-process runner, or the
supervisor of worker processes.  It moves through ``STARTING -> READY -> (RELOADING -> READY)*
-> STOPPING``; listeners (the systemd notifier, the readiness endpoint) are told of each move,
in the order they were added, on the thread that made it (the event loop's).  Keeping the
phase in one place means every observer agrees on it: ``/readyz`` turns 503 in the same step
as systemd hears ``STOPPING=1``, before any listener is closed.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

__all__ = ["Lifecycle", "Phase"]

log = logging.getLogger("dropins.supervisor")


class Phase(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    RELOADING = "reloading"
    STOPPING = "stopping"


Listener = Callable[["Phase"], None]


class Lifecycle:
    """The current phase and who wants to hear of changes to it."""

    def __init__(self) -> None:
        self.phase = Phase.STARTING
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def enter(self, phase: Phase) -> None:
        """Move to ``phase`` (no-op if already there); a listener that fails is logged, never
        allowed to stop the others or the move itself."""
        if phase is self.phase:
            return
        self.phase = phase
        for listener in list(self._listeners):
            try:
                listener(phase)
            except Exception:
                log.exception("lifecycle listener %r failed on %s", listener, phase.value)

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY
