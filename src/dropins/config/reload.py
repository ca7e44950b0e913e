"""Applying a re-read application file to the running Application (SIGHUP).

A service is *unchanged* when its command or factory and its resolved values are the same;
it keeps running, open connections included.  The others are worked out by name: removed ones
stop, added ones start, changed ones restart.  Every new service is made before anything is
stopped, so a file whose service cannot even be made changes nothing; a changed service's old
instance is stopped before the new one binds (they usually share the port).  A new service
that then fails to start is reported, the rest of the reload still goes on, and the next
reload tries it again; a changed one's old instance is started again meanwhile.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from dropins.config.build import make_service
from dropins.config.resolve import AppConfig

__all__ = ["Plan", "apply_reload"]

log = logging.getLogger("dropins.config")


class Plan:
    """Which services a reload stops, starts, restarts and keeps, by name, in file order."""

    def __init__(self, old: AppConfig, new: AppConfig) -> None:
        self.removed = [name for name in old.services if name not in new.services]
        self.added = [name for name in new.services if name not in old.services]
        self.changed = [name for name in new.services if name in old.services
                        and new.services[name].identity() != old.services[name].identity()]
        self.unchanged = [name for name in new.services if name in old.services
                          and name not in self.changed]

    def summary(self, failed: dict[str, str] | None = None) -> str:
        """``restarted site; started jobs; unchanged echo`` (empty groups left out)."""
        failed = failed or {}
        groups = [("restarted", [n for n in self.changed if n not in failed]),
                  ("started", [n for n in self.added if n not in failed]),
                  ("stopped", self.removed), ("unchanged", self.unchanged)]
        parts = [f"{verb} {', '.join(names)}" for verb, names in groups if names]
        parts += list(failed.values())
        return "; ".join(parts) or "no services"


async def apply_reload(application: Any, old: AppConfig, new: AppConfig) -> tuple[Plan,
                                                                                  dict[str, str]]:
    """Change ``application`` (running ``old``) to run ``new``; return the plan and the
    services that failed to start, with why.  ``BuildError`` if a new service cannot be made
    (then nothing has changed)."""
    plan = Plan(old, new)
    folder = os.path.dirname(os.path.abspath(new.path))
    made = {name: make_service(new.services[name], folder)
            for name in new.services if name in plan.added or name in plan.changed}
    running = {child.name: child for child in application}
    for name in reversed([*old.services]):
        if (name in plan.removed or name in plan.changed) and name in running:
            await application.stop_child(running[name])
    failed: dict[str, str] = {}
    for name, service in made.items():
        try:
            await application.start_child(service)
        except Exception as error:  # ConfigService names the service in its errors
            if name in plan.changed:
                failed[name] = await _restart_old(application, old, new, name, error)
            else:
                failed[name] = str(error)
                del new.services[name]  # not running: the next reload starts it as if added
            log.error("%s", failed[name])
    application.order_children(list(new.services))
    return plan, failed


async def _restart_old(application: Any, old: AppConfig, new: AppConfig, name: str,
                       error: Exception) -> str:
    """Start the old version of changed service ``name`` again after its new one failed.

    The old one was stopped to free its port for the new one; without this a reload whose
    new version cannot bind would leave neither running.  ``new`` then records the old
    spec, so the next reload sees the service as changed and tries the new one again.
    """
    try:
        service = make_service(old.services[name], os.path.dirname(os.path.abspath(old.path)))
        await application.start_child(service)
    except Exception as again:
        del new.services[name]
        return f"{error}; the old {name} could not start again either: {again}"
    new.services[name] = old.services[name]
    return f"kept the old {name}: new one failed: {error}"
