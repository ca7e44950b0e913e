"""Process signals while services run: stop gracefully, force on a second Ctrl-C, reopen logs.

- SIGTERM or SIGINT: ask for a graceful stop (``on_stop(signum)``); the runner then stops the
  service tree within ``--shutdown-timeout``, or cancels ``start()`` if it has not finished.
- A second SIGINT while stopping: ``on_force`` (the operator insists; exit at once).
- SIGHUP: ``on_reopen`` (logrotate renamed the log file; open it again).  Before these handlers
  are installed the runner ignores SIGHUP (``run.ignore_sighup``), so that a logrotate run during a
  slow start does not kill the process.

Handlers run in the event loop (``loop.add_signal_handler``), never inside arbitrary code.  On
Windows, where that is not available, SIGINT (and SIGBREAK) fall back to ``signal.signal`` with a
thread-safe hand-over to the loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

log = logging.getLogger("dropins.runner")


class SignalHandlers:
    """Installs the runner's handlers on ``loop``; ``uninstall()`` restores the defaults."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 on_stop: Callable[[signal.Signals], None],
                 on_force: Callable[[], None], on_reopen: Callable[[], None]) -> None:
        self._loop = loop
        self._on_stop = on_stop
        self._on_force = on_force
        self._on_reopen = on_reopen
        self._stopping = False
        self._installed: list[signal.Signals] = []
        self._fallback: dict[signal.Signals, object] = {}

    def _stop_requested(self, signum: signal.Signals) -> None:
        if not self._stopping:
            self._stopping = True
            log.info("received %s; stopping", signum.name)
            self._on_stop(signum)
        elif signum == signal.SIGINT:
            log.warning("received SIGINT again; exiting without waiting for services")
            self._on_force()
        else:
            log.info("received %s again; already stopping", signum.name)

    def _reopen_requested(self) -> None:
        self._on_reopen()

    def install(self) -> None:
        wanted: list[tuple[str, Callable[[], None] | None]] = [
            ("SIGTERM", None), ("SIGINT", None), ("SIGBREAK", None),
            ("SIGHUP", self._reopen_requested)]
        for name, action in wanted:
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            callback: Callable[..., None] = action or self._stop_requested
            args = () if action else (signum,)
            try:
                self._loop.add_signal_handler(signum, callback, *args)
            except NotImplementedError:  # Windows event loops
                self._install_fallback(signum, callback, args)
            else:
                self._installed.append(signum)

    def _install_fallback(self, signum: signal.Signals, callback: Callable[..., None],
                          args: tuple[object, ...]) -> None:
        def handler(_signum: int, _frame: object) -> None:
            self._loop.call_soon_threadsafe(callback, *args)

        try:
            self._fallback[signum] = signal.signal(signum, handler)
        except (OSError, ValueError):  # not the main thread, or not settable here
            pass

    def uninstall(self) -> None:
        for signum in self._installed:
            self._loop.remove_signal_handler(signum)
        self._installed.clear()
        for signum, previous in self._fallback.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        self._fallback.clear()
