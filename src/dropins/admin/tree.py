"""The service tree as the admin shows it, and the stop, start and restart it offers.

Only the top-level services (those of the application file, or the command's one) can be
stopped and started: they are what an operator names.  A stopped service stays in the tree
(``MultiService.stop_in_place``), so it can be started again and is not stopped twice when
the process ends.  ``since`` is when the admin saw the service reach its state.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

__all__ = ["ServiceTree", "UnknownService"]

log = logging.getLogger("dropins.admin")


class UnknownService(KeyError):
    """No top-level service by that name."""


class ServiceTree:
    """Describes and changes the top-level services of ``application``."""

    def __init__(self, application: Any, config: Any = None) -> None:
        self.application = application
        self.config = config  # the running AppConfig (-c FILE), for each service's command
        self._since: dict[int, tuple[bool, float]] = {}

    def describe(self) -> list[dict[str, Any]]:
        return [self._describe(child, [], top=True) for child in self.application]

    def _describe(self, service: Any, path: list[str], top: bool = False) -> dict[str, Any]:
        name = getattr(service, "name", None) or type(service).__name__
        running = bool(getattr(service, "running", False))
        since = self._since.get(id(service))
        if since is None or since[0] != running:
            since = (running, time.time())
            self._since[id(service)] = since
        spec = self.config.services.get(name) if top and self.config is not None else None
        kind = (spec.command or spec.factory) if spec is not None else type(service).__name__
        entry: dict[str, Any] = {
            "name": name, "path": "/".join([*path, name]), "kind": kind,
            "state": "running" if running else "stopped", "since": since[1],
            "endpoints": list(dict.fromkeys(_addresses(service))),
            "worker": os.getpid(), "controllable": top,
        }
        try:
            children = list(service)
        except TypeError:
            children = []
        entry["children"] = [self._describe(child, [*path, name]) for child in children]
        return entry

    def names(self) -> list[str]:
        return [child.name for child in self.application if child.name]

    def find(self, name: str) -> Any:
        for child in self.application:
            if child.name == name:
                return child
        raise UnknownService(name)

    async def act(self, name: str, action: str, user: str) -> dict[str, Any]:
        """Stop, start or restart top-level service ``name``; audited with ``user``."""
        service = self.find(name)
        log.info("admin: %s asked to %s service %r", user, action, name)
        if action in ("stop", "restart"):
            await self.application.stop_in_place(service)
        if action in ("start", "restart"):
            await self.application.start_in_place(service)
        log.info("admin: service %r is %s (%s by %s)", name,
                 "running" if service.running else "stopped", action, user)
        return next(entry for entry in self.describe() if entry["name"] == name)


def worker_tree(runner: Any) -> ServiceTree:
    """The tree of a worker process, kept on its runner (so ``since`` lasts)."""
    tree = getattr(runner, "_admin_tree", None)
    if tree is None:
        tree = ServiceTree(runner.application, runner.config)
        runner._admin_tree = tree
    return tree


def _addresses(service: Any) -> list[str]:
    """The listening addresses of ``service`` and everything below it."""
    found = list(getattr(service, "addresses", None) or [])
    try:
        children = list(service)
    except TypeError:
        return found
    for child in children:
        found += _addresses(child)
    return found
