"""``dropins --workers N``: one supervisor process, N worker processes serving the same sockets.

The supervisor is a ``Runner`` whose "services" are worker processes: it detaches, takes the
pidfile, binds every endpoint of the tree (``privileged_start()``) and drops privileges as a
single process would, then spawns the workers (``spawning``) instead of starting the tree, and
moves its ``Lifecycle`` through the same phases.  Then:

- a worker that dies is replaced at once; one that dies before it is ready is replaced after
  an exponential back-off, and after ``MAX_START_FAILURES`` such failures in a row the
  supervisor gives up (exit 1, the last worker's error);
- SIGTTIN adds a worker, SIGTTOU retires one (never the last);
- a ready worker that sent no heartbeat for ``--worker-timeout`` seconds (its event loop is
  stuck in a blocking call) is killed with SIGKILL and so replaced: without systemd's watchdog
  nobody else would notice, and with it the other workers need not restart with the unit;
- SIGTERM/SIGINT: every worker gets SIGTERM and drains within ``--shutdown-timeout``; those
  still running after the grace are killed (exit 1); else the exit status is 0;
- SIGHUP (and ``restart_workers()``): a rolling restart, after re-reading and checking the
  application file; one worker at a time, the new one ready before the old one stops.  A new
  worker that fails aborts it (the old workers keep serving) and never counts toward giving up.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from dropins.runner.errors import FAILURE, RunnerError
from dropins.runner.run import SHUTDOWN_GRACE, Runner, ready_line
from dropins.supervisor.inherited import HandedSockets
from dropins.supervisor.spawning import PinnedConfig, Worker, spawn_worker

__all__ = ["Supervisor"]

log = logging.getLogger("dropins.supervisor")

MAX_START_FAILURES = 5
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 10.0
#: How long a new worker of a rolling restart may take to be ready.
START_TIMEOUT = 60.0
#: How a worker told to stop may end without that being a failure: by itself, or by the stop
#: signal (a second one, from the terminal's Ctrl-C to the whole group, can land as it exits),
#: or stopped before it had started (130, 143).
STOPPED_STATUSES = (0, -signal.SIGTERM, -signal.SIGINT, 130, 143)
#: Seconds past a worker's own stop deadline before the supervisor kills it.
WORKER_EXIT_MARGIN = 1.0
#: A ready worker whose last heartbeat is older than this is not live.
LIVE_SECONDS = 3.0
#: A ready worker silent this long (``--worker-timeout``) is killed and replaced.
WORKER_TIMEOUT = 30.0
#: How often the supervisor looks for silent workers: a quarter of the timeout (7.5 s by
#: default, so that the idle supervisor wakes up for it rarely), within these bounds.
SILENCE_CHECKS = (0.5, 10.0)


class Supervisor(Runner):
    """Runs ``options.workers`` worker processes of ``dropins ARGV`` (see the module)."""

    def __init__(self, options: Any, label: str, application: Any, identity: Any,
                 config: Any, argv: list[str]) -> None:
        super().__init__(options, label, application, identity, config)
        #: The workers' arguments (``cli.worker_arguments``); they start in this process's
        #: current directory, which needs no access check (the ``--uid`` user may not be
        #: allowed into the directory dropins was started from).
        self.argv = argv
        self.count: int = options.workers
        #: The workers serving now, by id (a rolling restart's new one joins once ready).
        self.workers: list[Worker] = []
        self._others: set[Worker] = set()  # retiring, or on trial in a rolling restart
        self._sockets: HandedSockets | None = None
        #: The application file as last checked, which every worker reads (not the disk's).
        self._pinned: PinnedConfig | None = None
        self._failures = 0
        self._gave_up: str | None = None
        self._changed: asyncio.Event | None = None
        self._restarting: asyncio.Lock | None = None
        self._ready_text = ""
        self._tasks: set[asyncio.Future[Any]] = set()  # kept: the loop holds tasks weakly
        self._silence_timer: asyncio.TimerHandle | None = None
        self._last_check = 0.0

    # ---- what the runner asks for -----------------------------------------------------------

    def _make_observers(self) -> Any:
        from dropins.supervisor.aggregate import supervisor_observers

        return supervisor_observers(self)  # systemd and --health hear of every worker

    def _make_admin(self) -> Any:
        if self.options.admin is None:
            return None
        from dropins.admin.parts import make_admin

        return make_admin(self.options, self.application, self.config, self.config_path, self)

    def _stop_deadline(self) -> float:
        # the workers' own deadline first, then the wait for stragglers killed after it
        return self._workers_deadline() + SHUTDOWN_GRACE + 1.0

    def _workers_deadline(self) -> float:
        """How long the workers get to end after SIGTERM: a little more than their own stop
        deadline, so that one that overruns says so itself before it is killed."""
        return super()._stop_deadline() + WORKER_EXIT_MARGIN

    def _ready_message(self) -> str:
        return self._ready_text

    def _reload_applier(self) -> Any:
        async def apply() -> tuple[bool, str]:
            return await self._restart("SIGHUP")

        return apply

    async def _start_services(self) -> None:
        """Spawn the workers and wait until every one is ready (or the supervisor gives up)."""
        from dropins.service.inherited import bound_sockets

        self._changed, self._restarting = asyncio.Event(), asyncio.Lock()
        self._ready_text = ready_line(self.label, self.application)
        self._sockets = HandedSockets(bound_sockets(self.application), self.options.reuse_port)
        self._pin(self.config)
        self._install_signals()
        self._check_silence()
        try:
            for _ in range(self.count):
                await self._spawn()
            while self._gave_up is None and not (
                    len(self.workers) >= self.count and all(w.ready for w in self.workers)):
                self._changed.clear()
                await self._changed.wait()
        except BaseException:
            await self._stop_workers()
            raise
        if self._gave_up is not None:
            await self._stop_workers()
            raise RunnerError(self._gave_up, FAILURE)
        log.info("%d workers ready: pids %s", len(self.workers),
                 ", ".join(str(w.pid) for w in self.workers))

    async def _stop(self) -> int:
        if self._reloader is not None:
            await self._reloader.cancel()
        status = await self._stop_workers()
        if self._gave_up is not None:
            raise RunnerError(self._gave_up, FAILURE)
        log.info("stopped")
        return status

    # ---- the public face, for health, metrics and the development reload -------------------

    def live(self) -> bool:
        """Every ready worker's loop has sent a heartbeat lately (and there is one)."""
        now = time.monotonic()
        ready = [worker for worker in self.workers if worker.ready]
        return bool(ready) and all(now - w.last_heartbeat <= LIVE_SECONDS for w in ready)

    async def restart_workers(self, reason: str) -> bool:
        """A rolling restart (see the module); False when refused or a new worker failed."""
        from dropins.supervisor.lifecycle import Phase

        moved = self.lifecycle.phase is Phase.READY
        if moved:
            self.lifecycle.enter(Phase.RELOADING)
        try:
            ok, _summary = await self._restart(reason)
        finally:
            if moved and self.lifecycle.phase is Phase.RELOADING:
                self.lifecycle.enter(Phase.READY)
        return ok

    # ---- spawning and replacing --------------------------------------------------------------

    def _background(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _free_id(self) -> int:
        taken = {worker.id for worker in self.workers}
        return next(number for number in range(1, len(taken) + 2) if number not in taken)

    async def _spawn(self, worker_id: int | None = None, trial: bool = False) -> Worker:
        assert self._sockets is not None
        worker = await spawn_worker(worker_id or self._free_id(), self.argv,
                                    self._sockets, self._exited, config=self._pinned)
        (self._others.add if trial else self.workers.append)(worker)
        log.info("%s starting", worker.label)
        self._background(self._watch_ready(worker))
        return worker

    async def _watch_ready(self, worker: Worker) -> None:
        await worker.became_ready.wait()
        log.info("%s ready", worker.label)
        if worker in self.workers:
            self._failures = 0
        self._notify()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _stopping(self) -> bool:
        from dropins.supervisor.lifecycle import Phase

        return self.lifecycle.phase is Phase.STOPPING or self._gave_up is not None

    def _exited(self, worker: Worker, status: int) -> None:
        """A worker's process ended: replace it unless that was meant (see the module)."""
        self._others.discard(worker)
        replaced = worker in self.workers
        if replaced:
            self.workers.remove(worker)
        self._notify()
        how = worker.describe_exit(status)
        if not replaced or worker.retiring or self._stopping():
            # a rolling restart's new worker: the restart's own line gives its error
            error = worker.error if replaced and not worker.ready else None
            log.info("%s %s%s", worker.label, how, f": {error}" if error else "")
            return
        if worker.ready:
            log.warning("%s %s; starting a new one", worker.label, how)
            self._background(self._replace(0.0))
            return
        self._start_failed(f"{worker.label} failed to start", worker.error or how)

    def _start_failed(self, what: str, error: str) -> None:
        """Count a failed start; try again after a back-off, or give up after too many."""
        self._failures += 1
        if self._failures >= MAX_START_FAILURES:
            self._give_up(f"workers keep failing to start ({self._failures} times in a row); "
                          f"the last one said: {error}")
            return
        delay = min(FIRST_BACKOFF * 2 ** (self._failures - 1), MAX_BACKOFF)
        log.error("%s: %s; trying again in %.3g s", what, error, delay)
        self._background(self._replace(delay))

    async def _replace(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._stopping() or len(self.workers) >= self.count:
            return
        try:
            await self._spawn()
        except OSError as error:  # out of processes or descriptors: a failed start too
            self._start_failed("cannot start a worker", error.strerror or str(error))

    def _give_up(self, message: str) -> None:
        from dropins.supervisor.lifecycle import Phase

        log.error("%s", message)
        self._gave_up = message
        if self.lifecycle.phase is not Phase.STARTING:  # else _start_services raises it
            self.lifecycle.enter(Phase.STOPPING)
            self._end.start_deadline(self._stop_deadline())
            if self._stop_event is not None:
                self._stop_event.set()
        self._notify()

    async def _stop_workers(self) -> int:
        """SIGTERM to every worker, SIGKILL to those still running past the deadline; 0 when
        every one ended by itself with status 0."""
        if self._silence_timer is not None:
            self._silence_timer.cancel()
            self._silence_timer = None
        everyone = [*self.workers, *self._others]
        for worker in everyone:
            worker.retiring = True
            worker.signal(signal.SIGTERM)
        status = 0
        if everyone:
            _done, late = await asyncio.wait([worker.exited for worker in everyone],
                                            timeout=self._workers_deadline())
            for worker in everyone:
                if worker.exited in late:
                    log.error("%s did not stop in time; killing it", worker.label)
                    worker.signal(signal.SIGKILL)
                    status = FAILURE
                elif worker.exited.result() not in STOPPED_STATUSES:
                    status = FAILURE
            if late:
                await asyncio.wait(late, timeout=SHUTDOWN_GRACE)
        if self._sockets is not None:
            for sock in self._sockets.sockets():
                sock.close()
        self._pin(None)
        return status

    def _check_silence(self) -> None:
        """Kill every ready worker silent for ``--worker-timeout`` (see the module); again in
        a quarter of that."""
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        timeout = self.options.worker_timeout or WORKER_TIMEOUT
        every = min(max(timeout / 4, SILENCE_CHECKS[0]), SILENCE_CHECKS[1])
        # after a stall of this process's own loop, heartbeats may wait unread: not this round
        stalled = self._last_check and now - self._last_check > 3 * every
        self._last_check = now
        for worker in [] if stalled or self._stopping() else list(self.workers):
            silent = now - worker.last_heartbeat
            if worker.ready and not worker.retiring and silent > timeout:
                log.error("%s has not answered for %.0f s (its event loop is blocked); "
                          "killing it", worker.label, silent)
                worker.signal(signal.SIGKILL)
                worker.last_heartbeat = now  # said once: it is reaped and replaced shortly
        self._silence_timer = loop.call_later(every, self._check_silence)

    def _pin(self, config: Any) -> None:
        """Hand ``config``'s bytes (None: nothing) to the workers started from now on."""
        if self._pinned is not None:
            self._pinned.close()  # the workers started with it have their own descriptor
        self._pinned = PinnedConfig(config.raw) if config is not None and config.raw else None

    # ---- signals that change the number of workers ------------------------------------------

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()

        def handler(signum: int, _frame: object) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._resize, signum)

        for name in ("SIGTTIN", "SIGTTOU"):
            signum = getattr(signal, name, None)
            if signum is not None:
                signal.signal(signum, handler)

    def _resize(self, signum: int) -> None:
        if self._stopping():
            return
        if signum == signal.SIGTTIN:
            self.count += 1
            log.info("SIGTTIN: %d workers now", self.count)
            self._background(self._replace(0.0))
        elif self.count > 1:
            self.count -= 1
            log.info("SIGTTOU: %d workers now", self.count)
            if len(self.workers) > self.count:
                worker = max(self.workers, key=lambda w: w.id)
                self.workers.remove(worker)
                self._others.add(worker)
                worker.retiring = True
                worker.signal(signal.SIGTERM)
        else:
            log.info("SIGTTOU: keeping the last worker")

    # ---- rolling restart ---------------------------------------------------------------------

    async def _restart(self, reason: str) -> tuple[bool, str]:
        assert self._restarting is not None
        async with self._restarting:
            if self._stopping():
                return False, "refused: stopping"
            refusal = self._reread()
            if refusal is not None:
                log.error("restart (%s) refused, nothing restarts: %s", reason, refusal)
                return False, f"refused, nothing restarts: {refusal}"
            log.info("restarting %d workers one at a time (%s)", len(self.workers), reason)
            for old in sorted(self.workers, key=lambda w: w.id):
                if self._stopping():
                    return False, "aborted: stopping"
                if old not in self.workers:
                    continue  # it died meanwhile and was replaced by a fresh one
                failure = await self._replace_one(old)
                if failure is not None:
                    message = f"new worker {old.id} failed: {failure}; the old workers keep serving"
                    log.error("restart (%s) aborted: %s", reason, message)
                    return False, f"aborted: {message}"
            summary = f"restarted {len(self.workers)} workers"
            log.info("%s (%s)", summary, reason)
            return True, summary

    async def _replace_one(self, old: Worker) -> str | None:
        """Start old's successor; once it is ready, retire old.  The failure, or None."""
        new = await self._spawn(old.id, trial=True)
        ready = asyncio.ensure_future(new.became_ready.wait())
        await asyncio.wait([ready, new.exited], timeout=START_TIMEOUT,
                           return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if not new.ready or new.exited.done() or self._stopping():
            new.retiring = True
            new.signal(signal.SIGTERM)
            if new.exited.done():
                return new.error or new.describe_exit(new.exited.result())
            return new.error or ("stopping" if self._stopping() else
                                 f"not ready within {START_TIMEOUT:g} s")
        self._others.discard(new)
        if old in self.workers:
            self.workers[self.workers.index(old)] = new
            self._others.add(old)
        else:
            self.workers.append(new)
        old.retiring = True
        old.signal(signal.SIGTERM)
        return None

    def _reread(self) -> str | None:
        """Re-read and check the application file, bind what its tree adds; the refusal."""
        if self.config_path is None or self.config is None:
            return None
        from dropins.config.build import BuildError, build_application
        from dropins.config.resolve import load_config
        from dropins.runner.config_app import config_context
        from dropins.runner.run import startup_message
        from dropins.service.inherited import bound_sockets, discard_offered, offer

        config, problems = load_config(self.config_path, config_context(),
                                       list(self.options.set or ()))
        if config is None or problems:
            return problems[0] + (f" ({len(problems) - 1} more)" if len(problems) > 1 else "")
        try:
            tree = build_application(config)
        except BuildError as error:
            return str(error)
        assert self._sockets is not None
        offer(self._sockets.entries)  # what the new tree shares with the old one, it takes
        try:
            tree.privileged_start()
        except Exception as error:
            old = {id(sock) for sock in self._sockets.sockets()}
            for _description, sockets in bound_sockets(tree):
                for sock in sockets:
                    if id(sock) not in old:
                        sock.close()
            discard_offered(close=False)  # nothing changes: the old sockets stay in use
            return startup_message(error)
        discard_offered()  # the old tree's sockets the new one has no use for
        self._sockets = HandedSockets(bound_sockets(tree), self.options.reuse_port)
        if config.runner_argv != self.config.runner_argv:
            log.warning("restart: the [runner] options changed; they take effect when dropins "
                        "is restarted")
        self.config = config
        self._pin(config)
        return None
