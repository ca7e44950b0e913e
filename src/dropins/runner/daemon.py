"""Detaching into the background (double fork), with a status pipe back to the launcher.

The launching process does not exit as soon as it has forked: it waits on a pipe until the
daemon reports that every service has started (its PID is printed, exit 0) or why it could not
start (the message is printed and the exit status is 1).  Scripts and service managers can
therefore trust the launcher's exit status, and a port in use is reported on the terminal, not
only in a log file.
If the daemon dies before reporting, the pipe closes empty and the launcher says so.

POSIX only; ``os.fork``/``os.setsid`` are looked up at call time so this module imports on
Windows.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import NoReturn

from dropins.runner.errors import FAILURE

_READY = b"ready "
_ERROR = b"error "


class StatusPipe:
    """The daemon's end of the pipe: report ``ready()`` or ``failed(message)``, once.

    The main thread and the stop deadline's thread may both report (a start cut short that then
    overran): the descriptor is taken under a lock, so only the first report is written and the
    descriptor is closed exactly once (closing it twice could close an unrelated descriptor that
    reused its number).  Later reports are no-ops and never wait for a write in progress.
    """

    def __init__(self, fd: int | None) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def _send(self, payload: bytes) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.write(fd, payload)
        except OSError:  # the launcher was killed; nobody is listening any more
            pass
        finally:
            os.close(fd)

    def ready(self) -> None:
        self._send(_READY + f"{os.getpid()}\n".encode("ascii"))

    def failed(self, message: str) -> None:
        self._send(_ERROR + " ".join(message.split()).encode("utf-8", "replace") + b"\n")

    @property
    def pending(self) -> bool:
        """True until ``ready()`` or ``failed()`` was called (foreground runs: never pending)."""
        return self._fd is not None


#: What the foreground runner uses: reports go nowhere.
NO_STATUS = StatusPipe(None)


def _launcher_exit(read_fd: int, child: int, logfile: str) -> NoReturn:
    """In the launching process: wait for the daemon's report and exit accordingly."""
    chunks = []
    while True:
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    try:
        os.waitpid(child, 0)  # reap the intermediate process, which exits at once
    except ChildProcessError:
        pass
    report = b"".join(chunks)
    if report.startswith(_READY):
        pid = report[len(_READY):].decode("ascii", "replace").strip()
        sys.stdout.write(f"dropins: started pid {pid}\n")
        sys.stdout.flush()
        raise SystemExit(0)
    if report.startswith(_ERROR):
        message = report[len(_ERROR):].decode("utf-8", "replace").strip()
    else:
        message = f"the daemon exited during startup without a report; see {logfile}"
    sys.stderr.write(f"dropins: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(FAILURE)


def _redirect_standard_streams() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def daemonize(logfile: str) -> StatusPipe:
    """Detach; return the status pipe in the daemon.  The launcher never returns (it exits).

    ``logfile`` is only named in the launcher's message when the daemon dies without a word.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    child = os.fork()  # type: ignore[attr-defined,unused-ignore]
    if child:
        os.close(write_fd)
        _launcher_exit(read_fd, child, logfile)
    os.close(read_fd)
    os.setsid()  # type: ignore[attr-defined,unused-ignore]
    if os.fork():  # type: ignore[attr-defined,unused-ignore]
        os._exit(0)  # the session leader goes; the daemon can never regain a terminal
    _redirect_standard_streams()
    return StatusPipe(write_fd)
