"""Everything that watches a running instance from outside: systemd and ``--health``.

``Observers`` gathers the notifier, the watchdog and the health server for whoever runs the
tree (the single-process runner, or the supervisor of workers), so that the runner only calls
``privileged_start()``, ``start()`` and ``stop()`` at the right moments: the health server
binds with the services (before privileges are dropped) and starts *before* them, so that
``/readyz`` says 503 during start-up; it stops *after* them, so that it says 503 until the end.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any

from dropins.supervisor.lifecycle import Lifecycle
from dropins.supervisor.notify import Notifier, Watchdog, watchdog_interval

__all__ = ["Observers", "check_health_endpoint", "open_connections"]


def open_connections(application: Any) -> int:
    """Open connections of every stream server in the tree."""
    from dropins.supervisor.metrics import walk

    return sum(getattr(service, "connections_open", 0) for service in walk(application))


def check_health_endpoint(text: str) -> None:
    """Raise ``ValueError`` with a one-line reason if ``--health`` cannot work."""
    import importlib.util

    from dropins.service.endpoints import parse_endpoint

    if importlib.util.find_spec("httptools") is None:
        raise ValueError("--health needs httptools: pip install 'dropins[metrics]'")
    try:
        parse_endpoint(text)
    except ValueError as error:
        raise ValueError(f"--health {text}: {error}") from error


class Observers:
    """The notifier, watchdog and health server of one running instance."""

    def __init__(self, lifecycle: Lifecycle, view: Any, health: str | None,
                 describe: Callable[[], str], alive: Callable[[], bool] = lambda: True,
                 environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.notifier = Notifier.from_environ(environ, describe)
        lifecycle.add_listener(self.notifier.phase_changed)
        self.watchdog = Watchdog(self.notifier, lifecycle, watchdog_interval(environ), alive)
        self.health = None
        if health is not None:
            from dropins.supervisor.health import HealthServer

            self.health = HealthServer(health, view)

    @classmethod
    def for_process(cls, lifecycle: Lifecycle, application: Any,
                    health: str | None) -> Observers:
        from dropins.supervisor.health import ProcessView

        def describe() -> str:
            count = open_connections(application)
            return f"{count} open connection{'' if count == 1 else 's'}"

        return cls(lifecycle, ProcessView(application, lifecycle), health, describe)

    def privileged_start(self) -> None:
        if self.health is not None:
            self.health.privileged_start()

    async def start(self) -> None:
        self.watchdog.start(asyncio.get_running_loop())
        if self.health is not None:
            await self.health.start()

    async def stop(self) -> None:
        if self.health is not None:
            await self.health.stop()
        self.watchdog.stop()
        self.notifier.close()
