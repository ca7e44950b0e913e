"""Process signals while services run: stop gracefully, force on a second Ctrl-C, reopen logs.

- SIGTERM or SIGINT: ask for a graceful stop (``on_stop(signum)``); the runner then stops the
  service tree within ``--shutdown-timeout``, or cancels ``start()`` if it has not finished.
- A second SIGINT while stopping: ``on_force`` (the operator insists; exit at once).  From the
  first stop on, SIGINT has a plain ``signal.signal`` handler rather than a loop callback: it
  runs in the main thread even while a ``stop()`` blocks the event loop (``time.sleep``).
- SIGHUP: ``on_reopen`` (logrotate renamed the log file; open it again).  Before these handlers
  are installed the runner ignores SIGHUP (``run.ignore_sighup``), so that a logrotate run during a
  slow start does not kill the process.

Before the event loop runs (while the runner takes the pidfile and runs ``privileged_start()``),
``StartupSignals`` catches SIGTERM and SIGINT: a stop asked for then is handled like one during
``start()`` instead of SIGTERM's default action killing the process and leaving the pidfile.

Once the loop runs, handlers run in it (``loop.add_signal_handler``), never inside arbitrary
code, except the forcing SIGINT (which only exits).  On Windows, where that is not available,
SIGINT (and SIGBREAK) fall back to ``signal.signal`` with a thread-safe hand-over to the loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("dropins.runner")


STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGBREAK")


class StopBeforeStart(BaseException):
    """Raised by ``StartupSignals`` inside ``privileged_start()`` to cut it short.

    A ``BaseException``, like ``KeyboardInterrupt``, so that a service's ``except Exception``
    does not swallow it.
    """

    def __init__(self, signum: signal.Signals) -> None:
        super().__init__(signum.name)
        self.signum = signum


class StartupSignals:
    """Remembers a SIGTERM/SIGINT that arrives before ``SignalHandlers`` are installed.

    Within ``interruptible()`` (the synchronous ``privileged_start()``, which may block) the
    signal also raises ``StopBeforeStart`` at once.  Elsewhere it is only remembered, so that
    the pidfile is never left half-written: ``interruptible()`` raises for a signal already
    received, and the runner hands one received after it to ``SignalHandlers.stop_requested``.
    The event loop's handlers replace these when installed (``loop.add_signal_handler``).
    """

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._interrupting = False

    def install(self) -> None:
        for name in STOP_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None:
                try:
                    signal.signal(signum, self._handle)
                except (OSError, ValueError):  # not the main thread (dropins used as a library)
                    pass

    def _handle(self, signum: int, _frame: object) -> None:
        if self.received is None:
            self.received = signal.Signals(signum)
        if self._interrupting:
            self._interrupting = False
            raise StopBeforeStart(self.received)

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """Let a stop signal interrupt the block (raising ``StopBeforeStart``)."""
        if self.received is not None:
            raise StopBeforeStart(self.received)
        self._interrupting = True
        try:
            yield
        finally:
            self._interrupting = False


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

    def stop_requested(self, signum: signal.Signals) -> None:
        """Act on ``signum`` as if it had just arrived (also for one caught before install)."""
        if not self._stopping:
            self._stopping = True
            self._take_sigint_directly()  # first: the next SIGINT may come at any moment
            log.info("received %s; stopping", signum.name)
            self._on_stop(signum)
        elif signum == signal.SIGINT:
            self._force()
        else:
            log.info("received %s again; already stopping", signum.name)

    def _force(self, *_signal_args: object) -> None:
        log.warning("received SIGINT again; exiting without waiting for services")
        self._on_force()

    def _take_sigint_directly(self) -> None:
        """Handle the next SIGINT in a plain signal handler, which a blocked loop cannot delay.

        The loop's handler stays registered: a SIGINT that arrived just before this, still
        waiting in the loop's wake-up pipe, then reaches ``stop_requested`` and forces too.
        """
        try:
            previous = signal.signal(signal.SIGINT, self._force)
        except (OSError, ValueError):  # not the main thread (dropins used as a library)
            return
        if signal.SIGINT not in self._installed:  # else the loop's removal restores the default
            self._fallback.setdefault(signal.SIGINT, previous)

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
            callback: Callable[..., None] = action or self.stop_requested
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
