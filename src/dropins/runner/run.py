"""Running a service tree as a process: the runner's flow from options to exit status.

The order matters and is the point of this module:

1. ``prepare()``: ignore SIGHUP until the handlers are installed, change to ``--rundir``, set
   ``--umask`` (027 by default with ``--daemon``), check the event loop, open the log and
   resolve ``--uid/--gid``, so that mistakes are usage errors before anything starts.  The
   command's options are parsed and its service built after this (relative paths in its
   options are relative to the run directory, and what parsing them logs goes to the
   configured log).
2. ``run()``: detach if ``--daemon`` (the launcher then waits on the status pipe),
   take the pidfile lock, ``privileged_start()`` (bind ports), drop privileges, then on the
   event loop ``start()``, log the ready line, report success through the status pipe and wait
   for SIGTERM/SIGINT; then ``stop()`` and return 0.  A stop asked for during
   ``privileged_start()`` or ``start()`` cuts it short (exit 130 or 143, never "ready").  From
   the first stop signal a watchdog thread (``deadline``) gives the services
   ``--shutdown-timeout`` plus a grace; past that it ends the process with ``os._exit`` and
   status 1, whatever ``stop()`` does (blocks the loop, swallows cancellation) and whatever
   threads it leaves behind.

Every foreseeable failure becomes a ``RunnerError`` with a one-line message; in a daemon it is
also logged and sent through the status pipe so that the launcher prints it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from dropins.runner.arguments import RunnerOptions
from dropins.runner.daemon import NO_STATUS, StatusPipe
from dropins.runner.errors import (
    FAILURE,
    INTERRUPTED,
    TERMINATED,
    RunnerError,
    UsageError,
    one_line,
)
from dropins.runner.privileges import Identity

if TYPE_CHECKING:
    import asyncio

    from dropins.runner.deadline import Deadline
    from dropins.runner.signals import StartupSignals
    from dropins.service import Application

log = logging.getLogger("dropins.runner")

#: The file-mode mask of a daemon unless --umask says otherwise: a daemon inherits whatever mask
#: its launcher had, often 022, and its logs should not be world-readable.  Not twistd's 077,
#: which also hides the files from the service's own group (the log readers, usually).
DAEMON_UMASK = 0o027

#: Extra seconds granted after --shutdown-timeout for servers to close what they cut off.
SHUTDOWN_GRACE = 2.0


def ignore_sighup() -> None:
    """Ignore SIGHUP until ``SignalHandlers.install`` takes it over (no-op where it is absent).

    Its default action terminates the process: a logrotate ``postrotate`` that signals the
    pidfile's PID while the services are still starting would otherwise kill them.  Here, not in
    ``signals`` (which imports asyncio), because ``prepare`` also serves ``COMMAND --help``.
    """
    import signal

    sighup = getattr(signal, "SIGHUP", None)
    if sighup is not None:
        try:
            signal.signal(sighup, signal.SIG_IGN)
        except (OSError, ValueError):  # not the main thread (dropins used as a library)
            pass


def prepare(options: RunnerOptions) -> Identity:
    """Apply the process settings that must precede building the service; resolve the identity."""
    ignore_sighup()  # a SIGHUP before the handlers are installed must not kill the process
    if options.rundir:
        try:
            os.chdir(options.rundir)
        except OSError as error:
            raise UsageError(f"cannot change to --rundir {options.rundir}: "
                             f"{error.strerror or one_line(error)}")
    umask = DAEMON_UMASK if options.umask is None and options.daemon else options.umask
    if umask is not None:
        os.umask(umask)
    loop_factory(options.loop)  # fail early when uvloop is missing
    from dropins.runner.logs import configure_logging

    # Before the command's options are parsed and its service built: what they log (a warning
    # about --auth memory:, a weak htpasswd entry) goes where --logfile/--syslog/--log-format say.
    configure_logging(options)
    if options.uid is None and options.gid is None:
        return Identity()
    from dropins.runner.privileges import resolve_identity

    return resolve_identity(options.uid, options.gid)


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event-loop factory for ``--loop`` (None: asyncio's default)."""
    if name != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:
        raise UsageError("--loop uvloop needs the uvloop package: pip install 'dropins[uvloop]'")
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def as_application(service: Any, options: RunnerOptions, identity: Identity) -> Application:
    """``service`` as the root Application, with the runner's options applied over it.

    Only the options actually given override what an Application (from an ``--app`` file or
    a service maker) set itself: ``--uid``/``--gid`` its uid/gid, ``--shutdown-timeout`` its
    shutdown timeout.  A service that is not an Application gets a new one with the defaults.
    """
    from dropins.service import Application

    if isinstance(service, Application):
        application = service
    else:
        application = Application()
        application.add_service(service)
    if identity.uid is not None:
        application.uid = identity.uid
    if identity.gid is not None:
        application.gid = identity.gid
    if options.shutdown_timeout is not None:
        application.shutdown_timeout = options.shutdown_timeout
    return application


def effective_identity(application: Any, identity: Identity) -> Identity:
    """The runner's ``--uid/--gid`` if given, else what an ``--app`` file's Application asks."""
    if identity.uid is not None or identity.gid is not None:
        return identity
    uid, gid = getattr(application, "uid", None), getattr(application, "gid", None)
    if uid is None and gid is None:
        return identity
    if os.name == "nt":
        raise UsageError("the application sets uid/gid, which Windows does not support")
    from dropins.runner.privileges import resolve_identity

    return resolve_identity(uid, gid)


def startup_message(error: BaseException) -> str:
    """The one line for a start failure: a ListenError anywhere in the chain says it best."""
    from dropins.service import ListenError

    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ListenError):
            return str(cause)
        cause = cause.__cause__
    return one_line(error)


def iter_addresses(service: Any) -> Iterator[str]:
    """The real listening addresses of every service in the tree, depth first."""
    addresses = getattr(service, "addresses", None)
    if addresses:
        yield from addresses
    try:
        children = list(service)
    except TypeError:
        return
    for child in children:
        yield from iter_addresses(child)


def ready_line(label: str, application: Any) -> str:
    addresses = list(dict.fromkeys(iter_addresses(application)))
    if addresses:
        return f"ready: {label} listening on {', '.join(addresses)}"
    return f"ready: {label} started"


class Runner:
    """Runs one Application as this process, reporting through ``status`` when detached."""

    def __init__(self, options: RunnerOptions, label: str, application: Application,
                 identity: Identity) -> None:
        self.options = options
        self.label = label
        self.application = application
        self.identity = identity
        self.status: StatusPipe = NO_STATUS
        self._pidfile: Any = None
        self._stop_event: asyncio.Event | None = None
        self._stop_signal: int | None = None
        #: Held by whoever ends the process: the main thread releasing the pidfile, the stop
        #: deadline's thread, a second Ctrl-C.  Reentrant: a signal handler may interrupt the
        #: main thread while it holds the lock.
        self._exit_lock = threading.RLock()
        self._deadline: Deadline | None = None

    def run(self) -> int:
        """The whole life of the process after the service was built; returns the exit status.

        Logging is already configured (``prepare``).
        """
        if self.options.daemon:
            from dropins.runner.daemon import daemonize
            from dropins.runner.logs import DEFAULT_DAEMON_LOGFILE

            self.status = daemonize(self.options.logfile or DEFAULT_DAEMON_LOGFILE)
        try:
            return self._run_and_report()
        finally:
            with self._exit_lock:
                if self._pidfile is not None:
                    self._pidfile.release()
                    self._pidfile = None
                if self._deadline is not None:  # everything stopped, executor threads too
                    self._deadline.disarm()

    def _run_and_report(self) -> int:
        try:
            status = self._run()
        except RunnerError as error:
            self._report_failure(error.message)
            raise
        except BaseException as error:
            self._report_failure(one_line(error) if isinstance(error, Exception)
                                 else "interrupted during startup")
            raise
        return status

    def _report_failure(self, message: str) -> None:
        """Log the failure where the log goes (unless that is the terminal, where the CLI prints
        it anyway) and tell the launcher of a daemon."""
        if self.status.pending or self.options.syslog or self.options.logfile not in (None, "-"):
            log.error("%s", message)
        self.status.failed(message)

    def _run(self) -> int:
        # Also imports asyncio, before dropping privileges: the new user may not read the stdlib.
        from dropins.runner.signals import StartupSignals, StopBeforeStart

        startup = StartupSignals()  # a stop asked for from here on is never a silent death
        startup.install()
        if self.options.pidfile:
            from dropins.runner.pidfile import PidFile

            pidfile = PidFile(self.options.pidfile)
            pidfile.acquire()
            self._pidfile = pidfile
        try:
            with startup.interruptible():
                self.application.privileged_start()
        except StopBeforeStart as stop:
            self._stop_signal = stop.signum
            raise self._stopped_before_start() from None
        except Exception as error:
            raise RunnerError(startup_message(error)) from error
        import asyncio

        if self.identity.uid is not None or self.identity.gid is not None:
            from dropins.runner.privileges import drop_privileges

            drop_privileges(self.identity)
        runner = asyncio.Runner(loop_factory=loop_factory(self.options.loop))
        try:
            return runner.run(self._serve(startup))
        finally:
            runner.close()  # waits for the executor's threads: still under the stop deadline

    async def _serve(self, startup: StartupSignals) -> int:
        import asyncio

        from dropins.runner.logs import reopen_log_files
        from dropins.runner.signals import SignalHandlers

        self._stop_event = asyncio.Event()
        handlers = SignalHandlers(asyncio.get_running_loop(), on_stop=self._stop_requested,
                                  on_force=self._force_exit, on_reopen=reopen_log_files)
        handlers.install()
        if startup.received is not None:  # between privileged_start() and now: stop at once
            handlers.stop_requested(startup.received)
        try:
            await self._start()
            log.info("%s", ready_line(self.label, self.application))
            self.status.ready()
            await self._stop_event.wait()
            return await self._stop()
        finally:
            handlers.uninstall()

    def _stop_requested(self, signum: int) -> None:
        """The first SIGTERM/SIGINT: stop, against a deadline no service can hold up."""
        from dropins.runner.deadline import Deadline

        self._stop_signal = signum
        assert self._stop_event is not None
        self._stop_event.set()
        self._deadline = Deadline(self.application.shutdown_timeout + SHUTDOWN_GRACE,
                                  self._stop_overran, self._exit_lock)
        self._deadline.start()

    def _stop_overran(self) -> NoReturn:
        """The stop deadline passed (in its thread): say so, and leave with status 1.

        ``os._exit``, without interpreter shutdown: that would join the threads the services
        left behind, and the main thread may be stuck anyway.
        """
        assert self._deadline is not None
        message = (f"services did not stop within {self._deadline.seconds:g} seconds; "
                   "exiting anyway")
        self.status.failed(message)  # when stopped during the start: the launcher reports it
        self._exit_at_once(FAILURE, logged=message)

    async def _start(self) -> None:
        """``application.start()`` as a task, cancelled if a stop is asked for meanwhile.

        A stop during the start raises ``RunnerError`` with ``INTERRUPTED`` (SIGINT) or
        ``TERMINATED`` (SIGTERM): the services never were ready, so neither is the exit a
        success nor may a daemon's launcher report one.
        """
        import asyncio

        assert self._stop_event is not None
        starting = asyncio.ensure_future(self.application.start())
        stop_asked = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait({starting, stop_asked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_asked.cancel()
        if starting.done():
            try:
                starting.result()
            except Exception as error:
                raise RunnerError(startup_message(error)) from error
            return
        starting.cancel()  # the services already started are stopped by the cancelled start()
        await asyncio.wait({starting})  # not wait_for: the stop deadline bounds this
        if not starting.cancelled() and (failure := starting.exception()) is not None:
            log.error("while cancelling the start: %s", one_line(failure))
        raise self._stopped_before_start()

    def _stopped_before_start(self) -> RunnerError:
        """The error for a stop signal that came before every service had started."""
        import signal

        name = signal.Signals(self._stop_signal).name if self._stop_signal else "a signal"
        status = INTERRUPTED if self._stop_signal == signal.SIGINT else TERMINATED
        return RunnerError(f"stopped by {name} before the services had started", status)

    async def _stop(self) -> int:
        """Stop the tree; no timeout here, the stop deadline's thread bounds it (see above)."""
        await self.application.stop()
        log.info("stopped")
        return 0

    def _force_exit(self) -> None:
        """A second SIGINT: leave now, with the pidfile removed and the log flushed."""
        self._exit_at_once(INTERRUPTED)

    def _exit_at_once(self, status: int, logged: str | None = None) -> NoReturn:
        """Release the pidfile, log ``logged`` as an error if given, flush, and ``os._exit``.

        No interpreter shutdown: it would join the threads that services left behind.  Called
        from the deadline's thread too, so a log handler whose lock another thread holds (stuck
        writing into a full pipe) is skipped after a second rather than waited for.
        """
        self._exit_lock.acquire()  # never released: the first caller ends the process
        if self._pidfile is not None:
            self._pidfile.release()
            self._pidfile = None
        record = None
        if logged is not None and log.isEnabledFor(logging.ERROR):
            record = logging.LogRecord(log.name, logging.ERROR, __file__, 0, logged, None, None)
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
