"""What systemd and ``--health`` hear from a supervisor of workers: one view of them all.

* live: every ready worker's loop sent a heartbeat lately (``Supervisor.live()``); while the
  workers start and while they stop the supervisor's own loop answering is enough, since a
  worker still importing its code sends no heartbeat yet.
* ready: the supervisor's phase is READY (every worker started) and every worker's ``ready()``
  hooks pass, asked over the control channel (``ready`` request).
* metrics: each worker's samples (``samples`` request), merged: the tree's summed over the
  workers, the process samples kept apart by a ``worker`` label (the supervisor's own as
  ``worker="supervisor"``).  Users manage no ``PROMETHEUS_MULTIPROC_DIR``: the data travels as
  plain JSON on the channel the supervisor already has.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from dropins.supervisor.lifecycle import Phase
from dropins.supervisor.metrics import merge_samples, process_samples
from dropins.supervisor.observe import Observers

__all__ = ["SupervisorView", "supervisor_observers"]

log = logging.getLogger("dropins.supervisor")

#: How long a worker may take to answer a health or metrics request.
REQUEST_TIMEOUT = 5.0


class SupervisorView:
    """The health view (see ``dropins.supervisor.health``) of a ``Supervisor``."""

    def __init__(self, supervisor: Any) -> None:
        self.supervisor = supervisor
        self.lifecycle = supervisor.lifecycle

    def live_problem(self) -> str | None:
        if self.lifecycle.phase in (Phase.STARTING, Phase.STOPPING) or self.supervisor.live():
            return None
        now = time.monotonic()
        stale = [f"{worker.label}: no heartbeat for {now - worker.last_heartbeat:.1f} s"
                 for worker in self.supervisor.workers if worker.ready]
        return "; ".join(stale) or "no worker is ready"

    def alive(self) -> bool:
        """For the watchdog: systemd restarts the unit when this stays false."""
        return self.live_problem() is None

    async def ready_problem(self) -> str | None:
        workers = list(self.supervisor.workers)
        if len(workers) < self.supervisor.count or not all(w.ready for w in workers):
            return f"{sum(w.ready for w in workers)} of {self.supervisor.count} workers ready"
        replies = await asyncio.gather(*(w.request({"type": "ready"}, REQUEST_TIMEOUT)
                                         for w in workers), return_exceptions=True)
        for worker, reply in zip(workers, replies, strict=True):
            if isinstance(reply, BaseException):
                return f"{worker.label} did not answer: {type(reply).__name__}: {reply}"
            if reply.get("problem"):
                return f"{worker.label}: {reply['problem']}"
        return None

    async def samples(self) -> list[dict[str, Any]]:
        workers = [worker for worker in self.supervisor.workers if worker.ready]
        replies = await asyncio.gather(*(w.request({"type": "samples"}, REQUEST_TIMEOUT)
                                         for w in workers), return_exceptions=True)
        groups = []
        for worker, reply in zip(workers, replies, strict=True):
            if isinstance(reply, BaseException):
                log.warning("metrics: %s did not answer: %s", worker.label, reply)
            else:
                groups.append(reply.get("samples", []))
        ready = {"name": "dropins_workers_ready", "type": "gauge", "labels": {},
                 "help": "Worker processes serving now.", "value": len(workers)}
        return [*merge_samples(groups), ready, *process_samples({"worker": "supervisor"})]

    def describe(self) -> str:
        workers = [worker for worker in self.supervisor.workers if worker.ready]
        connections = sum(worker.connections for worker in workers)
        return (f"{len(workers)} worker{'' if len(workers) == 1 else 's'}, "
                f"{connections} open connection{'' if connections == 1 else 's'}")


def supervisor_observers(supervisor: Any) -> Observers:
    view = SupervisorView(supervisor)
    return Observers(supervisor.lifecycle, view, supervisor.options.health, view.describe,
                     view.alive)
