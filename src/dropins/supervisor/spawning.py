"""Starting one worker process and following it: its output, its channel, its exit.

A worker is a new interpreter (``sys.executable -m dropins`` and the supervisor's arguments),
never a fork: it imports the code fresh.  It gets the listening sockets and its end of the
control channel through ``pass_fds``; its environment names them and its number
(``DROPINS_WORKER``), and loses systemd's variables (the supervisor alone talks to systemd and
was the one the sockets were passed to).  Its standard output and error come back through
pipes: each marked line of standard error is a log record, re-logged here with the worker
named (``[worker 2 pid 4711] ...``); any other line (a print, a traceback) is logged as it is,
from standard output at INFO and from standard error at WARNING, except the ``dropins: error:``
line of a worker that failed to start, which the supervisor's line about that failure quotes
(logged twice, it read as two failures).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from dropins.supervisor.control import SupervisorChannel
from dropins.supervisor.inherited import HandedSockets
from dropins.supervisor.worker import ENV_CONFIG, ENV_CONTROL, ENV_SOCKETS, ENV_WORKER, LOG_MARK

__all__ = ["PinnedConfig", "Worker", "spawn_worker"]

log = logging.getLogger("dropins.supervisor")
output_log = logging.getLogger("dropins.worker")

#: What systemd hands the supervisor: a worker must neither notify nor take those sockets.
SYSTEMD_VARIABLES = ("NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
                     "WATCHDOG_USEC", "WATCHDOG_PID")
ERROR_PREFIX = "dropins: error: "


class Worker:
    """One worker process as the supervisor sees it."""

    def __init__(self, worker_id: int, process: asyncio.subprocess.Process,
                 channel_socket: socket.socket) -> None:
        self.id = worker_id
        self.process = process
        self.pid: int = process.pid
        self.started_at = time.monotonic()
        #: When the last heartbeat came (monotonic); the start time until the first one.
        self.last_heartbeat = self.started_at
        self.ready = False
        #: Its open connections, as of its last heartbeat.
        self.connections = 0
        #: Stopped on purpose (a stop, a rolling restart, SIGTTOU): not to be replaced.
        self.retiring = False
        #: Why it could not start: its ``failed`` message, else its last error line.
        self.error: str | None = None
        self.became_ready = asyncio.Event()
        self.channel = SupervisorChannel(channel_socket, self._on_message)
        self._tasks = [asyncio.ensure_future(self.channel.run()),
                       asyncio.ensure_future(self._pump(process.stdout, False)),
                       asyncio.ensure_future(self._pump(process.stderr, True))]
        self.exited = asyncio.ensure_future(self._wait())

    def __repr__(self) -> str:
        return f"<Worker {self.id} pid {self.pid}{' ready' if self.ready else ''}>"

    @property
    def label(self) -> str:
        return f"worker {self.id} pid {self.pid}"

    async def request(self, message: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Ask the worker (``message`` has a ``type``) and return its reply; see ``control``."""
        return await self.channel.request(message, timeout)

    def signal(self, signum: int) -> None:
        if self.process.returncode is None:
            try:
                self.process.send_signal(signum)
            except ProcessLookupError:
                pass

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "heartbeat":
            self.last_heartbeat = time.monotonic()
            connections = message.get("connections")
            self.connections = connections if isinstance(connections, int) else 0
        elif kind == "ready":
            self.last_heartbeat = time.monotonic()
            self.ready = True
            self.became_ready.set()
        elif kind == "failed":
            self.error = str(message.get("message") or "failed to start")

    async def _pump(self, stream: asyncio.StreamReader | None, is_stderr: bool) -> None:
        if stream is None:
            return
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line longer than the buffer: take it in pieces
                line = await stream.read(65536)
            if not line:
                return
            self._log_line(line.decode("utf-8", "replace").rstrip("\r\n"), is_stderr)

    def _log_line(self, text: str, is_stderr: bool) -> None:
        prefix = f"[{self.label}] "
        if is_stderr and text.startswith(LOG_MARK):
            try:
                entry = json.loads(text[len(LOG_MARK):])
                level, name = int(entry["level"]), str(entry["logger"])
                message, created = str(entry["message"]), float(entry["created"])
            except (ValueError, KeyError, TypeError):
                pass
            else:
                _relog(name, level, created, prefix, message, self.pid)
                return
        if is_stderr and text.startswith(ERROR_PREFIX) and not self.ready:
            # why it could not start: the supervisor's own line about it says so, once
            self.error = self.error or text[len(ERROR_PREFIX):]
            output_log.debug("%s%s", prefix, text)
            return
        output_log.log(logging.WARNING if is_stderr else logging.INFO, "%s%s", prefix, text)

    async def _wait(self) -> int:
        status = await self.process.wait()
        await asyncio.wait(self._tasks, timeout=5.0)  # the last lines, the last messages
        return status

    def describe_exit(self, status: int) -> str:
        if status < 0:
            import signal

            try:
                return f"killed by {signal.Signals(-status).name}"
            except ValueError:
                return f"killed by signal {-status}"
        return f"exited with status {status}"


def _relog(name: str, level: int, created: float, prefix: str, message: str, pid: int) -> None:
    """Log a worker's record through this process's handlers, every line prefixed (and with
    the worker's PID, which ``--log-format json`` shows)."""
    logger = logging.getLogger(name)
    text = "\n".join(prefix + line for line in message.split("\n"))
    record = logger.makeRecord(name, level, "(worker)", 0, "%s", (text,), None)
    record.created, record.msecs = created, (created - int(created)) * 1000
    record.process = pid
    logger.handle(record)


class PinnedConfig:
    """The application file as the supervisor last checked it, for the workers to read.

    Held in an unlinked temporary file that each worker inherits (its descriptor named by
    ``DROPINS_WORKER_CONFIG``): a worker started later (a crashed one's replacement, SIGTTIN)
    must run what the others run, not an edit on disk that a reload refused or that nobody
    reloaded yet.  A file, not an environment variable, since the text may be up to 1 MiB.
    """

    def __init__(self, raw: bytes) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (kept open while it is used)
        self._file.write(raw)
        self._file.flush()

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        self._file.close()


async def spawn_worker(worker_id: int, argv: list[str], sockets: HandedSockets,
                       on_exit: Callable[[Worker, int], None] | None = None,
                       cwd: str | None = None, config: PinnedConfig | None = None) -> Worker:
    """Start worker ``worker_id`` running ``dropins ARGV`` on ``sockets``, in ``cwd`` (None:
    this process's current directory), reading its application file from ``config``."""
    description, fds, own = sockets.for_worker()
    if config is not None:
        fds = [*fds, config.fileno()]
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    environment = {key: value for key, value in os.environ.items()
                   if key not in SYSTEMD_VARIABLES}
    environment.update({ENV_WORKER: str(worker_id), ENV_SOCKETS: description,
                        ENV_CONTROL: str(child_end.fileno())})
    if config is not None:
        environment[ENV_CONFIG] = str(config.fileno())
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dropins", *argv, cwd=cwd, env=environment,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, pass_fds=[*fds, child_end.fileno()])
    except BaseException:
        parent_end.close()
        raise
    finally:
        child_end.close()
        for sock in own:
            sock.close()
    worker = Worker(worker_id, process, parent_end)
    if on_exit is not None:
        worker.exited.add_done_callback(
            lambda done: on_exit(worker, done.result()) if not done.cancelled() else None)
    return worker
