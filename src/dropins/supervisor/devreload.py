"""``--reload``: restart the workers whenever the application's files change.

The supervisor keeps the listening sockets; only workers are replaced, by the rolling restart
(each new worker ready before an old one stops), so clients polling during a reload are never
refused.  A new worker that fails (a syntax error in the edited module) leaves the old ones
serving: the restart says why in the log, and the next save tries again.  Changes saved while
a restart runs make one more restart after it, never one per file.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import aclosing

from dropins.runner.errors import UsageError
from dropins.supervisor.supervisor import Supervisor
from dropins.supervisor.watching import (
    WatchError,
    WatchTargets,
    build_targets,
    describe_changes,
    watch_changes,
)

__all__ = ["DevReload", "ReloadingSupervisor"]

log = logging.getLogger("dropins.supervisor")

#: Restarts the workers for a reason (e.g. ``app.py changed``), which its log lines give;
#: False: the old ones were kept (the restart logged why).
Restart = Callable[[str], Awaitable[bool]]
#: The module files the workers imported now (after a restart, they may import new ones).
Sources = Callable[[], Awaitable[list[str]]]


class DevReload:
    """Watches ``targets`` from ``start()`` to ``stop()`` and calls ``restart`` on changes."""

    def __init__(self, targets: WatchTargets, restart: Restart,
                 sources: Sources | None = None) -> None:
        self.targets = targets
        self.restart = restart
        self.sources = sources
        self._stop = asyncio.Event()
        self._task: asyncio.Future[None] | None = None

    def start(self) -> None:
        if self.targets.empty:
            log.warning("reload: nothing to watch: the application imported no module of its "
                        "own; give --reload-dir DIR")
        else:
            log.info("reload: watching %s for changes", self.targets.describe())
        self._task = asyncio.ensure_future(self._watch())

    async def stop(self) -> None:
        """Stop watching (the process is stopping); a restart under way is cut short."""
        self._stop.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task})

    async def _watch(self) -> None:
        try:  # the supervisor imported what the workers did at first: learnt after restarts
            while not self._stop.is_set():
                watched = self.targets
                # aclosing: a cancelled watch ends its watcher threads at once, not at exit
                async with aclosing(watch_changes(watched, self._stop)) as batches:
                    async for changed in batches:
                        await self._restart(describe_changes(changed))
                        await self._learn_sources()
                        if self.targets != watched:
                            break  # watch again, with the modules the new code imports
        except Exception as error:  # never let a broken watch take the services down
            log.error("reload: stopped watching for changes: %s: %s",
                      type(error).__name__, error)

    async def _learn_sources(self) -> None:
        """Add the module files the workers imported to the targets (a worker imports the
        code afresh: an edit may import a module no earlier version did)."""
        if self.sources is None:
            return
        try:
            files = await self.sources()
        except Exception as error:  # a worker gone meanwhile: the next restart asks again
            log.debug("reload: cannot ask a worker for its modules: %s", error)
            return
        targets = self.targets.with_files(files)
        if targets != self.targets:
            added = len(targets.files - self.targets.files)
            log.info("reload: watching %s more (imported by the workers)",
                     "1 file" if added == 1 else f"{added} files")
            self.targets = targets

    async def _restart(self, what: str) -> None:
        """Restart for ``what`` changed; the restart logs its progress with that reason."""
        try:
            await self.restart(f"{what} changed")
        except Exception as error:  # a bug: say so, and go on watching
            log.error("reload: restarting the workers failed: %s: %s", type(error).__name__,
                      error)


class ReloadingSupervisor(Supervisor):
    """The supervisor of ``--reload``: it also restarts its workers when files change."""

    _dev_reload: DevReload | None = None

    async def _start_services(self) -> None:
        # This process built the tree (to bind its sockets): sys.modules holds the modules of
        # the application, which the workers import afresh.
        try:
            targets = build_targets(self.config_path, self.options.app,
                                    self.options.reload_dir or ())
        except WatchError as error:  # a --reload-dir removed since the start
            raise UsageError(str(error)) from None
        await super()._start_services()
        self._dev_reload = DevReload(targets, self.restart_workers, self._worker_sources)
        self._dev_reload.start()

    async def _worker_sources(self) -> list[str]:
        worker = next(worker for worker in self.workers if worker.ready)
        reply = await worker.request({"type": "sources"})
        return [str(path) for path in reply.get("files") or ()]

    async def _stop(self) -> int:
        if self._dev_reload is not None:
            await self._dev_reload.stop()
        return await super()._stop()
