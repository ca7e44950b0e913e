"""Process signals while services run: stop gracefully, force on a second Ctrl-C, reload, reopen
logs.

- SIGTERM or SIGINT: ask for a graceful stop (``on_stop(signum)``); the runner then stops the
  service tree within ``--shutdown-timeout``, or cancels ``start()`` if it has not finished.
- A second SIGINT while stopping: ``on_force`` (the operator insists; exit at once), even
  while a ``stop()`` blocks the event loop (``time.sleep``) and after the loop has ended.
- SIGHUP: ``on_hangup`` (the runner reopens the log files and reloads an application file).
  Before the loop runs and after it has ended, the runner ignores SIGHUP
  (``run.ignore_sighup``), so that a logrotate run during a slow start or a slow exit does not
  kill the process.
- SIGUSR1: ``on_reopen`` only (logrotate renamed the log file; open it again), likewise
  ignored outside the loop.

Before the event loop runs (while the runner takes the pidfile and runs ``privileged_start()``),
``StartupSignals`` catches SIGTERM and SIGINT: a stop asked for then is handled like one during
``start()`` instead of SIGTERM's default action killing the process and leaving the pidfile.
From then on (``SignalHandlers``) every handled signal keeps a plain ``signal.signal`` handler
until the process ends; while the loop runs, it hands the signal over to the loop.
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
    ``SignalHandlers.install`` replaces these handlers with its own.
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
    """The runner's handlers from the start of the event loop until the process ends.

    Each signal has one plain ``signal.signal`` handler for the rest of the process's life
    (``loop.add_signal_handler`` would not do: removing it, as closing the loop does, restores
    the default action, and a SIGTERM then killed the process while the interpreter still
    waited for the services' threads).  While the loop runs, a handler only hands the signal to
    it (``call_soon_threadsafe``), so the work runs in the loop, never inside arbitrary code;
    after ``loop_ended()`` a stop signal is acted on in the handler itself and SIGHUP is ignored.
    A SIGINT that follows any stop signal forces at once, even while a ``stop()`` blocks the loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 on_stop: Callable[[signal.Signals], None],
                 on_force: Callable[[], None], on_reopen: Callable[[], None],
                 on_hangup: Callable[[], None] | None = None) -> None:
        self._loop: asyncio.AbstractEventLoop | None = loop
        self._on_stop = on_stop
        self._on_force = on_force
        self._on_reopen = on_reopen
        self._on_hangup_in_loop = on_hangup or on_reopen
        self._asked = False  # a stop signal arrived (set at once, in the handler)
        self._stopping = False  # ``on_stop`` was called

    def install(self) -> None:
        for name, handler in [*((name, self._on_stop_signal) for name in STOP_SIGNALS),
                              ("SIGHUP", self._on_hangup), ("SIGUSR1", self._on_usr1)]:
            signum = getattr(signal, name, None)
            if signum is not None:
                try:
                    signal.signal(signum, handler)
                except (OSError, ValueError):  # not the main thread (dropins used as a library)
                    pass

    def loop_ended(self) -> None:
        """The loop is about to close: act on stop signals directly from now on."""
        self._loop = None

    def _on_stop_signal(self, signum: int, _frame: object) -> None:
        received = signal.Signals(signum)
        if received == signal.SIGINT and self._asked:
            self._force()
            return
        self._asked = True
        loop = self._loop
        if loop is None:
            self.stop_requested(received)
        else:
            loop.call_soon_threadsafe(self.stop_requested, received)

    def _on_hangup(self, _signum: int, _frame: object) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._on_hangup_in_loop)

    def _on_usr1(self, _signum: int, _frame: object) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._on_reopen)

    def stop_requested(self, signum: signal.Signals) -> None:
        """Act on ``signum`` as if it had just arrived (also for one caught before install)."""
        self._asked = True
        if not self._stopping:
            self._stopping = True
            log.info("received %s; stopping", signum.name)
            self._on_stop(signum)
        else:
            log.info("received %s again; already stopping", signum.name)

    def _force(self) -> None:
        log.warning("received SIGINT again; exiting without waiting for services")
        self._on_force()
