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
   the first stop signal a watchdog thread (``process_end``) gives the process
   ``--shutdown-timeout`` plus a grace to end; past that it ends it with ``os._exit`` and
   status 1, whatever ``stop()`` does (blocks the loop, swallows cancellation) and whatever
   threads it leaves behind for the interpreter's shutdown to wait for.  The signal handlers
   and the pidfile likewise last until the process ends, not until ``run()`` returns.

Every foreseeable failure becomes a ``RunnerError`` with a one-line message; in a daemon it is
also logged and sent through the status pipe so that the launcher prints it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from dropins.runner.arguments import RunnerOptions
from dropins.runner.daemon import NO_STATUS, StatusPipe
from dropins.runner.early_signals import ignore_sighup
from dropins.runner.errors import INTERRUPTED, TERMINATED, RunnerError, UsageError, one_line
from dropins.runner.privileges import Identity
from dropins.runner.process_end import ProcessEnd

if TYPE_CHECKING:
    import asyncio

    from dropins.runner.signals import StartupSignals
    from dropins.service import Application
    from dropins.supervisor.observe import Observers

log = logging.getLogger("dropins.runner")

#: The file-mode mask of a daemon unless --umask says otherwise: a daemon inherits whatever mask
#: its launcher had, often 022, and its logs should not be world-readable.  Not twistd's 077,
#: which also hides the files from the service's own group (the log readers, usually).
DAEMON_UMASK = 0o027

#: Extra seconds granted after --shutdown-timeout for servers to close what they cut off.
SHUTDOWN_GRACE = 2.0


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
    if options.health is not None:
        from dropins.supervisor.observe import check_health_endpoint

        try:
            check_health_endpoint(options.health)
        except ValueError as error:
            raise UsageError(str(error)) from None
    if options.admin is not None or options.admin_auth or options.admin_role:
        from dropins.admin.server import check_admin_options

        try:
            check_admin_options(options, make_checkers=False)
        except ValueError as error:
            raise UsageError(str(error)) from None
    elif options.insecure_admin:
        raise UsageError("--insecure-admin goes with --admin ENDPOINT: it configures the admin")
    if options.reload:
        from dropins.supervisor.watching import WatchError, check_directories, require_watchfiles

        try:
            require_watchfiles()
            check_directories(options.reload_dir or ())
        except WatchError as error:
            raise UsageError(str(error))
    from dropins.runner.logs import configure_logging

    # Before the command's options are parsed and its service built: what they log (a warning
    # about --auth memory:, a weak htpasswd entry) goes where --logfile/--syslog/--log-format say.
    configure_logging(options)
    if options.admin is not None:  # the admin's log view starts with the first line
        from dropins.admin.ring import collect_early

        collect_early()
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
                 identity: Identity, config: Any = None) -> None:
        self.options = options
        #: The application file's checked config (``-c FILE``), which SIGHUP reloads.
        self.config = config
        self.config_path = os.path.abspath(options.config) if options.config else None
        self._reloader: Any = None
        self.label = label
        self.application = application
        self.identity = identity
        self.status: StatusPipe = NO_STATUS
        self._stop_event: asyncio.Event | None = None
        self._stop_signal: int | None = None
        self._end = ProcessEnd()
        from dropins.supervisor.lifecycle import Lifecycle

        #: STARTING -> READY -> (RELOADING -> READY)* -> STOPPING, for systemd and health checks
        self.lifecycle = Lifecycle()
        #: systemd notify and watchdog, and the --health server: they watch self.lifecycle
        self.observers = self._make_observers()
        #: the --admin server (its reloader is set once the loop runs)
        self.admin = self._make_admin()

    def run(self) -> int:
        """The whole life of the process after the service was built; returns the exit status.

        Logging is already configured (``prepare``).  What outlives the return (the pidfile,
        the signal handlers, the stop deadline) lasts until the process ends: the interpreter's
        shutdown still waits for the threads the services left running.
        """
        if self.options.daemon:
            from dropins.runner.daemon import daemonize
            from dropins.runner.logs import DEFAULT_DAEMON_LOGFILE

            self.status = daemonize(self.options.logfile or DEFAULT_DAEMON_LOGFILE)
            self._end.status = self.status
        return self._run_and_report()

    def _run_and_report(self) -> int:
        try:
            status = self._run()
        except BaseException as error:
            # A failed start may leave threads behind that the interpreter's exit would wait
            # for without end (holding the pidfile): the stop deadline bounds that wait too.
            self._end.start_deadline(self.application.shutdown_timeout + SHUTDOWN_GRACE)
            if isinstance(error, RunnerError):
                self._report_failure(error.message)
            else:
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
            self._end.hold_pidfile(pidfile)
        try:
            with startup.interruptible():
                self.observers.privileged_start()
                if self.admin is not None:
                    self.admin.privileged_start()
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
            runner.close()  # waits for the executor's threads: under the stop deadline

    async def _serve(self, startup: StartupSignals) -> int:
        import asyncio

        from dropins.runner.logs import reopen_log_files
        from dropins.runner.reloading import Reloader
        from dropins.runner.signals import SignalHandlers
        from dropins.supervisor.lifecycle import Phase

        self._stop_event = asyncio.Event()
        self._reloader = Reloader(self.application, self.config, self.config_path,
                                  list(self.options.set or ()), self.options.pidfile,
                                  self.lifecycle, apply=self._reload_applier())

        def hangup() -> None:
            from dropins.service.base import hangup_services

            reopen_log_files()
            hangup_services(self.application)
            self._reloader.request()

        handlers = SignalHandlers(asyncio.get_running_loop(), on_stop=self._stop_requested,
                                  on_force=self._force_exit, on_reopen=reopen_log_files,
                                  on_hangup=hangup)
        handlers.install()
        if self.admin is not None:
            self.admin.parts.editor.reloader = self._reloader
        if startup.received is not None:  # between privileged_start() and now: stop at once
            handlers.stop_requested(startup.received)
        try:
            await self.observers.start()  # /readyz answers 503 while the services start
            if self.admin is not None:
                await self.admin.start()  # the log ring gets the start-up lines
            await self._start()
            log.info("%s", self._ready_message())
            self.status.ready()
            self.lifecycle.enter(Phase.READY)
            await self._stop_event.wait()
            return await self._stop()
        finally:
            if self.admin is not None:
                await self.admin.stop()
            await self.observers.stop()  # after the services: /readyz says 503 to the end
            handlers.loop_ended()  # they go on without the loop until the process ends

    def _stop_requested(self, signum: int) -> None:
        """The first SIGTERM/SIGINT: stop, against a deadline no service can hold up."""
        from dropins.supervisor.lifecycle import Phase

        self._stop_signal = signum
        assert self._stop_event is not None
        self.lifecycle.enter(Phase.STOPPING)  # readiness fails before any listener closes
        self._stop_event.set()
        self._end.start_deadline(self._stop_deadline())

    def _make_observers(self) -> Observers:
        """What reports on this instance (systemd, --health); a supervisor reports on its
        workers instead."""
        from dropins.supervisor.observe import Observers

        return Observers.for_process(self.lifecycle, self.application, self.options.health)

    def _make_admin(self) -> Any:
        """The ``--admin`` server of this process, or None."""
        if self.options.admin is None:
            return None
        from dropins.admin.parts import make_admin

        return make_admin(self.options, self.application, self.config, self.config_path)

    def _stop_deadline(self) -> float:
        """Seconds the process has to end after the first stop signal."""
        return self.application.shutdown_timeout + SHUTDOWN_GRACE

    def _ready_message(self) -> str:
        return ready_line(self.label, self.application)

    def _reload_applier(self) -> Callable[[], Awaitable[tuple[bool, str]]] | None:
        """What a SIGHUP applies instead of reloading the tree in place (None: the tree);
        the supervisor of workers restarts them instead."""
        return None

    async def _start_services(self) -> None:
        """Start what this process runs: the tree here, worker processes in a supervisor."""
        await self.application.start()

    async def _start(self) -> None:
        """``application.start()`` as a task, cancelled if a stop is asked for meanwhile.

        A stop during the start raises ``RunnerError`` with ``INTERRUPTED`` (SIGINT) or
        ``TERMINATED`` (SIGTERM): the services never were ready, so neither is the exit a
        success nor may a daemon's launcher report one.
        """
        import asyncio

        assert self._stop_event is not None
        starting = asyncio.ensure_future(self._start_services())
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
        if self._reloader is not None:
            await self._reloader.cancel()
        await self.application.stop()
        log.info("stopped")
        return 0

    def _force_exit(self) -> None:
        """A second SIGINT: leave now, with the pidfile removed and the log flushed."""
        self._end.exit_at_once(INTERRUPTED)
