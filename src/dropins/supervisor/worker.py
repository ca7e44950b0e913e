"""The worker side of ``dropins --workers N``: the runner's flow, on sockets it inherited.

A worker is ``python -m dropins`` with the supervisor's own arguments and ``DROPINS_WORKER`` set
in its environment, so it parses and builds the same tree (fresh imports: what the development
reload relies on).  It differs from a single process only where the supervisor took over:

- no daemon, pidfile, ``--uid/--gid``, ``--rundir``, log file, syslog or ``--health``
  (``worker_options``): the supervisor detached, holds the pidfile, dropped privileges before
  spawning, starts it in the run directory, writes every log line and serves the health
  endpoint for all workers;
- its log records go to standard error as one marked JSON line each (``WorkerLogFormatter``),
  which the supervisor re-logs with the worker named;
- ``privileged_start()`` takes the listening sockets described in ``DROPINS_WORKER_SOCKETS``
  (``dropins.service.inherited``) instead of binding;
- it reports on the control channel (``DROPINS_WORKER_CONTROL``): ``ready``, ``failed``, a
  ``heartbeat`` every second from a loop timer (with its open connections, for systemd's
  STATUS=), and replies to requests (``samples`` and ``ready`` for ``--health``).  A closed channel
  means the supervisor died: the worker then stops itself.

Adding a request type is one function: ``@request_handler("name")`` over
``def handle(runner, message) -> dict`` (or an ``async def``); its result is merged into the
reply.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

from dropins.runner.arguments import RunnerOptions
from dropins.runner.run import Runner
from dropins.supervisor.control import decode, encode

__all__ = ["ENV_CONFIG", "ENV_CONTROL", "ENV_SOCKETS", "ENV_WORKER", "LOG_MARK", "WorkerRunner",
           "request_handler", "worker_id", "worker_options"]

log = logging.getLogger("dropins.supervisor")

ENV_WORKER = "DROPINS_WORKER"
ENV_SOCKETS = "DROPINS_WORKER_SOCKETS"
ENV_CONTROL = "DROPINS_WORKER_CONTROL"
#: The descriptor of the application file's checked bytes (``spawning.PinnedConfig``).
ENV_CONFIG = "DROPINS_WORKER_CONFIG"
#: Starts each log record a worker writes on standard error (any other line is plain output).
LOG_MARK = "\x1edropins-log "
HEARTBEAT_SECONDS = 1.0

Handler = Callable[["WorkerRunner", dict[str, Any]], Any]
#: request type -> its handler (see the module's docstring)
REQUEST_HANDLERS: dict[str, Handler] = {}


def request_handler(kind: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        REQUEST_HANDLERS[kind] = handler
        return handler

    return register


@request_handler("ping")
def _ping(runner: WorkerRunner, message: dict[str, Any]) -> dict[str, Any]:
    """Who answers, and in which phase: for tests and for checking a worker is responsive."""
    return {"pid": os.getpid(), "worker": runner.worker_id, "phase": runner.lifecycle.phase.value}


@request_handler("samples")
def _samples(runner: WorkerRunner, message: dict[str, Any]) -> dict[str, Any]:
    """This worker's metrics samples, its process ones labelled with its number."""
    from dropins.supervisor.metrics import collect_samples

    return {"samples": collect_samples(runner.application, {"worker": str(runner.worker_id)})}


@request_handler("ready")
async def _ready(runner: WorkerRunner, message: dict[str, Any]) -> dict[str, Any]:
    """Why this worker's services are not ready (their ``ready()`` hooks), or None."""
    from dropins.supervisor.health import ready_problem

    return {"problem": await ready_problem(runner.application)}


@request_handler("services")
def _services(runner: WorkerRunner, message: dict[str, Any]) -> dict[str, Any]:
    """This worker's service tree, for the supervisor's ``--admin``."""
    from dropins.admin.tree import worker_tree

    return {"services": worker_tree(runner).describe()}


@request_handler("sources")
def _sources(runner: WorkerRunner, message: dict[str, Any]) -> dict[str, Any]:
    """The user's own Python files this worker imported: what ``--reload`` watches, which
    grows when an edit imports a new module."""
    from dropins.supervisor.watching import user_source_files

    return {"files": sorted(str(path) for path in user_source_files())}


def worker_id() -> int | None:
    """This process's worker number, or None when it is not a worker."""
    text = os.environ.get(ENV_WORKER, "")
    return int(text) if text.isdigit() else None


def worker_options(options: RunnerOptions) -> RunnerOptions:
    """``options`` without what the supervisor does for every worker (see the docstring)."""
    for name in ("daemon", "syslog", "reuse_port", "reload"):
        setattr(options, name, False)
    for name in ("pidfile", "logfile", "uid", "gid", "workers", "worker_timeout", "rundir",
                 "health", "reload_dir", "admin", "admin_auth", "admin_role"):
        setattr(options, name, None)
    options.insecure_admin = False
    options.log_max_bytes = 0
    return options


class WorkerLogFormatter(logging.Formatter):
    """A record as ``LOG_MARK`` + JSON (level, logger, time, message with any traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            message += "\n" + record.exc_text
        return LOG_MARK + json.dumps({"level": record.levelno, "logger": record.name,
                                      "created": record.created, "message": message})


def configure_worker_logging() -> None:
    """Send the root logger's records (level as configured) to stderr, for the supervisor;
    make prints reach it line by line too (a pipe is block-buffered)."""
    import sys

    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(line_buffering=True)

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(WorkerLogFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)


def take_pinned_config(path: str) -> None:
    """Read the application file ``path`` from the bytes the supervisor handed over (if it
    did), not from the disk: see ``spawning.PinnedConfig``."""
    text = os.environ.pop(ENV_CONFIG, "")
    if not text.isdigit():
        return
    from dropins.config.source import pin

    fd = int(text)
    try:
        raw = os.pread(fd, os.fstat(fd).st_size, 0)  # pread: the offset is shared
    finally:
        os.close(fd)
    pin(path, raw)


def take_inherited_sockets() -> None:
    """Offer the sockets described in the environment to the tree (before its
    ``privileged_start()``), and drop the variables so that nothing else reads them."""
    from dropins.service.inherited import offer

    text = os.environ.pop(ENV_SOCKETS, "[]")
    entries = [(str(description), [socket.socket(fileno=fd) for fd in fds])
               for description, fds in json.loads(text)]
    for _description, sockets in entries:
        for sock in sockets:
            sock.set_inheritable(False)  # pass_fds made it so: not for this worker's children
            sock.setblocking(False)
    offer(entries)


class WorkerChannel:
    """The worker's end of the control channel; sends from any thread, reads on the loop."""

    def __init__(self, fd: int) -> None:
        self._sock = socket.socket(fileno=fd)
        self._sock.set_inheritable(False)
        self._sock.settimeout(5.0)  # never block the loop for long on a stuck supervisor
        self._lock = threading.Lock()
        self._buffer = b""

    def send(self, message: dict[str, Any]) -> None:
        with self._lock:
            try:
                self._sock.sendall(encode(message))
            except OSError:
                pass  # the supervisor is gone; reading notices and stops this worker

    def listen(self, loop: asyncio.AbstractEventLoop,
               on_request: Callable[[dict[str, Any]], None]) -> None:
        def readable() -> None:
            try:
                data = self._sock.recv(65536)
            except (BlockingIOError, TimeoutError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(self._sock.fileno())
                log.warning("the supervisor went away; stopping")
                os.kill(os.getpid(), signal.SIGTERM)
                return
            self._buffer += data
            *lines, self._buffer = self._buffer.split(b"\n")
            for line in lines:
                message = decode(line)
                if message is not None:
                    on_request(message)

        loop.add_reader(self._sock.fileno(), readable)


class ChannelStatus:
    """What the runner reports through a daemon's status pipe, sent on the channel instead."""

    def __init__(self, channel: WorkerChannel) -> None:
        self._channel = channel
        self.pending = False  # the CLI prints a start failure; the supervisor logs that line

    def ready(self) -> None:
        self._channel.send({"type": "ready", "pid": os.getpid()})

    def failed(self, message: str) -> None:
        self._channel.send({"type": "failed", "message": " ".join(message.split())})


class WorkerRunner(Runner):
    """``Runner`` for one worker: reports on the channel, never daemonizes (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker_id = worker_id()
        self.channel = WorkerChannel(int(os.environ.pop(ENV_CONTROL)))
        self.status = ChannelStatus(self.channel)  # type: ignore[assignment]
        self._end.status = self.status
        self._requests: set[asyncio.Future[None]] = set()

    def run(self) -> int:
        return self._run_and_report()

    def _ready_message(self) -> str:
        return "worker ready"

    async def _serve(self, startup: Any) -> int:
        from dropins.service.inherited import discard_offered

        for description in discard_offered():  # privileged_start() took what it could use
            log.warning("an inherited socket for %s was not used: this worker's tree differs "
                        "from the supervisor's", description)
        loop = asyncio.get_running_loop()
        self.channel.listen(loop, self._on_request)
        self._beat(loop)
        return await super()._serve(startup)

    def _beat(self, loop: asyncio.AbstractEventLoop) -> None:
        from dropins.supervisor.observe import open_connections

        self.channel.send({"type": "heartbeat",
                           "connections": open_connections(self.application)})
        loop.call_later(HEARTBEAT_SECONDS, self._beat, loop)

    def _on_request(self, message: dict[str, Any]) -> None:
        task = asyncio.ensure_future(self._answer(message))
        self._requests.add(task)  # kept: the loop holds tasks weakly
        task.add_done_callback(self._requests.discard)

    async def _answer(self, message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"type": "reply", "id": message.get("id")}
        handler = REQUEST_HANDLERS.get(message["type"])
        try:
            if handler is None:
                raise LookupError(f"unknown request type {message['type']!r}")
            result = handler(self, message)
            if inspect.isawaitable(result):
                result = await result
            reply.update(result or {}, ok=True)
        except Exception as error:
            reply.update(ok=False, error=f"{type(error).__name__}: {error}")
        self.channel.send(reply)
