"""How the runner's process ends: the pidfile kept to the very end, a stop deadline, a forced exit.

Three parties may end the process: the main thread returning (the interpreter then shuts down,
which joins every non-daemon thread the services left running), the stop deadline's thread
when stopping takes too long, and a second SIGINT.  ``ProcessEnd`` serialises them under one
lock, and holds on to what must last as long as the process:

- the pidfile is removed by an ``atexit`` callback, which runs only after the interpreter has
  joined those threads (a worker still sleeping keeps the process, so its pidfile stays), or
  just before a forced exit;
- the deadline, a daemon ``threading.Timer`` started by the first stop signal, is never
  disarmed: it bounds the interpreter's shutdown too, so ``--shutdown-timeout`` holds whatever
  threads a ``stop()`` leaves behind (exit status 1).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, NoReturn

from dropins.runner.daemon import NO_STATUS, StatusPipe
from dropins.runner.errors import FAILURE
from dropins.runner.log_drops import runner_record

if TYPE_CHECKING:
    from dropins.runner.pidfile import PidFile

log = logging.getLogger("dropins.runner")


def _threads_left() -> list[str]:
    """The names of the threads the interpreter would wait for at exit."""
    main = threading.main_thread()
    return [thread.name for thread in threading.enumerate()
            if thread is not main and not thread.daemon]


class ProcessEnd:
    """The pidfile, the stop deadline and the forced exit of one runner process."""

    def __init__(self) -> None:
        #: Where a daemon reports a deadline that passed before it was ready (set by the runner).
        self.status: StatusPipe = NO_STATUS
        self._pidfile: PidFile | None = None
        self._deadline: threading.Timer | None = None
        #: Held by whoever ends the process.  Reentrant: a signal handler may interrupt the main
        #: thread while it holds the lock (releasing the pidfile).
        self._lock = threading.RLock()

    def hold_pidfile(self, pidfile: PidFile) -> None:
        """Keep ``pidfile`` until the process ends (see the module's docstring)."""
        self._pidfile = pidfile
        atexit.register(self.release_pidfile)

    def release_pidfile(self) -> None:
        with self._lock:
            # No swap to None first: a second SIGINT landing here re-enters through
            # exit_at_once and must still find the pidfile to remove (release is idempotent).
            if self._pidfile is not None:
                self._pidfile.release()

    def start_deadline(self, seconds: float) -> None:
        """End the process with status 1 unless it has ended ``seconds`` from now (once)."""
        with self._lock:
            if self._deadline is not None:
                return
            self._deadline = threading.Timer(seconds, self._overran, (seconds,))
            self._deadline.name = "dropins-stop-deadline"
            self._deadline.daemon = True
            self._deadline.start()

    def _overran(self, seconds: float) -> NoReturn:
        """The deadline passed (in its thread): say so, naming the threads still running."""
        message = f"services did not stop within {seconds:g} seconds; exiting anyway"
        if threads := _threads_left():
            message += f" (threads still running: {', '.join(threads)})"
        self.status.failed(message)  # when stopped during the start: the launcher reports it
        self.exit_at_once(FAILURE, logged=message)

    def exit_at_once(self, status: int, logged: str | None = None) -> NoReturn:
        """Release the pidfile, log ``logged`` as an error if given, flush, and ``os._exit``.

        No interpreter shutdown: it would join the threads that services left behind, and the
        main thread may be stuck anyway.  Called from the deadline's thread too, so a log
        handler whose lock another thread holds (stuck writing into a full pipe) is skipped
        after a second rather than waited for.
        """
        self._lock.acquire()  # never released: the first caller ends the process
        self.release_pidfile()
        record = None
        if logged is not None and log.isEnabledFor(logging.ERROR):
            record = runner_record(logging.ERROR, logged)
        for handler in logging.getLogger().handlers:
            if handler.lock is not None and not handler.lock.acquire(timeout=1.0):
                continue
            try:
                if record is not None:
                    handler.handle(record)
                getattr(handler, "flush_now", handler.flush)()  # not deferred: no loop after
            except Exception:
                pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(status)
