"""SIGHUP in a running instance: re-read the application file, and tell whoever asked.

The outcome of each reload is written, atomically (temporary file and ``os.replace``), to a
status file beside the pidfile (``PIDFILE.reload``): one JSON object with the instance's pid,
a generation number that counts this process's reloads, whether it succeeded and the summary
or reason.  ``dropins reload`` reads the generation, sends SIGHUP and waits for a status of
that pid with a greater generation, so it never takes an older outcome, or a previous
instance's, for its own.  Reloads never overlap: a SIGHUP during a reload makes one more
reload follow it (so a file saved meanwhile is read), and SIGHUPs that arrive together are
answered by one reload, which every waiting ``dropins reload`` then reports.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Reloader", "read_status", "status_path"]

log = logging.getLogger("dropins.runner")


def status_path(pidfile: str) -> str:
    return f"{pidfile}.reload"


def read_status(path: str) -> dict[str, Any] | None:
    """The status object in ``path``, or None if there is none (or it is unreadable)."""
    try:
        with open(path, encoding="utf-8") as file:
            status = json.load(file)
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def _write_status(path: str, status: dict[str, Any]) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(status, file)
        os.replace(temporary, path)
    except OSError as error:
        log.warning("cannot write the reload status %s: %s", path, error.strerror or error)


class Reloader:
    """Reloads ``application`` from its file on request, one reload at a time."""

    def __init__(self, application: Any, config: Any, config_path: str | None,
                 sets: list[str], pidfile: str | None, lifecycle: Any = None,
                 apply: Callable[[], Awaitable[tuple[bool, str]]] | None = None) -> None:
        self.application = application
        #: Replaces the in-place reload of the tree (the supervisor restarts its workers);
        #: returns (ok, summary) as ``_reload_once`` does.
        self.apply = apply
        #: a ``dropins.supervisor.lifecycle.Lifecycle``: RELOADING while a reload runs
        self.lifecycle = lifecycle
        self.config = config
        self.config_path = config_path
        self.sets = sets
        self.pidfile = pidfile
        self.generation = 0
        #: The outcome of the last reload: (ok, summary or reason)
        self.last: tuple[bool, str] | None = None
        self._task: asyncio.Future[None] | None = None
        self._again = False

    def request(self) -> None:
        """Reload soon (called in the loop, for SIGHUP)."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.ensure_future(self._run())

    async def reload(self) -> tuple[bool, str]:
        """Reload now and wait for the outcome (the admin's apply and rollback)."""
        self.request()
        task = self._task
        assert task is not None
        await asyncio.wait({task})
        assert self.last is not None
        return self.last

    async def cancel(self) -> None:
        """Stop a reload in progress (the process is stopping)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task})

    async def _run(self) -> None:
        try:
            await self._reload_until_settled()
        finally:
            self._move("RELOADING", "READY")

    def _move(self, from_name: str, to_name: str) -> None:
        """Move the lifecycle from one phase to another; from any other phase (still starting,
        already stopping) it stays where it is."""
        from dropins.supervisor.lifecycle import Phase

        if self.lifecycle is not None and self.lifecycle.phase is Phase[from_name]:
            self.lifecycle.enter(Phase[to_name])

    async def _reload_until_settled(self) -> None:
        while True:
            self._again = False
            self._move("READY", "RELOADING")
            ok, message = await self._reload_once()
            self.last = (ok, message)
            self.generation += 1
            if self.pidfile:
                _write_status(status_path(self.pidfile), {
                    "pid": os.getpid(), "generation": self.generation, "ok": ok,
                    "message": message})
            if not self._again:
                return

    async def _reload_once(self) -> tuple[bool, str]:
        if self.apply is not None:
            return await self.apply()
        if self.config is None or self.config_path is None:
            return False, "not started with -c FILE; SIGHUP reopened the log files only"
        from dropins.config.build import BuildError
        from dropins.config.reload import apply_reload
        from dropins.config.resolve import load_config
        from dropins.runner.config_app import config_context

        config, problems = load_config(self.config_path, config_context(), self.sets)
        if config is None or problems:
            more = f" ({len(problems) - 1} more)" if len(problems) > 1 else ""
            return self._refused(problems[0] + more)
        try:
            plan, failed = await apply_reload(self.application, self.config, config)
        except BuildError as error:
            return self._refused(str(error))
        if config.runner_argv != self.config.runner_argv:
            log.warning("reload: the [runner] options changed; they take effect when dropins "
                        "is restarted")
        self.config = config
        summary = plan.summary(failed)
        log.info("reloaded %s: %s", self.config_path, summary)
        return not failed, summary

    @staticmethod
    def _refused(reason: str) -> tuple[bool, str]:
        log.error("reload refused, nothing changed: %s", reason)
        return False, f"refused, nothing changed: {reason}"
