"""``TimerService``: call a function every ``interval`` seconds while the service runs.

Calls never overlap: the next one is due ``interval`` seconds after the previous one was due,
and a call that overruns makes the next one start at once rather than piling up.  An exception
is logged with its traceback and the timer goes on.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from dropins.service.base import DEFAULT_SHUTDOWN_TIMEOUT, Service, root_setting

__all__ = ["TimerService"]

logger = logging.getLogger("dropins.service")


class TimerService(Service):
    """Call ``function(*args)`` (sync or async) every ``interval`` seconds.

    With ``now=True`` (the default) the first call happens as soon as the service starts.
    ``stop()`` cancels the wait; a call in progress gets the shutdown timeout to finish and is
    cancelled after that.
    """

    def __init__(self, interval: float, function: Callable[..., Any], *args: Any,
                 now: bool = True, name: str | None = None) -> None:
        super().__init__(name)
        if not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        self.interval = float(interval)
        self.function = function
        self.args = args
        self.now = now
        self.calls = 0
        self._task: asyncio.Task[None] | None = None
        self._calling = False

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name is not None else ""
        return f"<TimerService{label} every {self.interval:g} s: {self.function!r}>"

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        task, self._task = self._task, None
        if task is None or task.done():
            return
        if self._calling:
            timeout = float(root_setting(self, "shutdown_timeout", DEFAULT_SHUTDOWN_TIMEOUT))
            done, _ = await asyncio.wait([task], timeout=timeout)
            if done:
                return
            logger.warning("%r: cancelling a call still running after %.3g s", self, timeout)
        task.cancel()
        await asyncio.wait([task], timeout=1.0)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + (0.0 if self.now else self.interval)
        while self.running or self._task is not None:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._task is None:  # stopped while sleeping past a cancellation point
                return
            self._calling = True
            try:
                await self._call()
            finally:
                self._calling = False
            due = max(due + self.interval, loop.time())

    async def _call(self) -> None:
        self.calls += 1
        try:
            result = self.function(*self.args)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("error in timer %r", self)
