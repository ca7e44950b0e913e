"""The service tree of ``--workers N``: the admin runs in the supervisor and asks each worker.

Every worker builds the same tree, so the services are listed once per worker (``worker`` is
the worker's pid), from a ``services`` request on the control channel the supervisor already
has.  Stopping and starting a service inside workers is refused for now (409): the listening
sockets are shared with the supervisor, so a service stopped in one worker would still have
its port bound; configuration changes (apply, rollback) restart the workers one at a time.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["WorkersTree"]

log = logging.getLogger("dropins.admin")

#: How long a worker may take to describe its services.
REQUEST_TIMEOUT = 5.0


class WorkersTree:
    """Describes the services of every worker of ``supervisor``."""

    def __init__(self, supervisor: Any) -> None:
        self.supervisor = supervisor

    async def describe(self) -> list[dict[str, Any]]:
        workers = [worker for worker in self.supervisor.workers if worker.ready]
        replies = await asyncio.gather(*(w.request({"type": "services"}, REQUEST_TIMEOUT)
                                         for w in workers), return_exceptions=True)
        entries: list[dict[str, Any]] = []
        for worker, reply in zip(workers, replies, strict=True):
            if isinstance(reply, BaseException) or not isinstance(reply, dict):
                log.warning("admin: %s did not describe its services: %s", worker.label, reply)
                continue
            for entry in reply.get("services", []):
                entry["controllable"] = False
                entries.append(entry)
        return entries

    def names(self) -> list[str]:
        return [child.name for child in self.supervisor.application if child.name]

    async def act(self, name: str, action: str, user: str) -> dict[str, Any]:
        from dropins.admin.api import ApiError
        from dropins.admin.tree import UnknownService

        if name not in self.names():
            raise UnknownService(name)
        log.warning("admin: refused %s of service %r by %s: not with --workers", action, name,
                    user)
        raise ApiError(409, f"cannot {action} {name!r} inside workers (their sockets are "
                            "shared with the supervisor); apply a configuration change, which "
                            "restarts the workers one at a time, or run without --workers")

    def workers(self) -> list[dict[str, Any]]:
        return [{"label": worker.label, "pid": worker.pid, "ready": worker.ready,
                 "connections": worker.connections} for worker in self.supervisor.workers]
