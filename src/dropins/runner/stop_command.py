"""``dropins stop --pidfile PATH``: stop a running instance and wait until it has exited.

Liveness is the pidfile's lock, as for starting: the PID is signalled only while a process
holds the lock, so a stale file whose PID was recycled by an unrelated process never gets that
process killed.  The command returns once the lock is released (the instance has exited), or
fails after ``--timeout``.  Stopping an instance that is not running (no pidfile, or a stale
one) succeeds with a note, as service managers expect, so stopping twice is not an error; a
pidfile that cannot be read, or an instance that does not exit in time, is.
"""

from __future__ import annotations

import argparse
import os
import signal
import stat
import sys
import time
from collections.abc import Sequence

from dropins.options import OneLineErrorParser
from dropins.runner.pidfile import is_locked, read_pid

POLL_SECONDS = 0.05


def seconds_argument(text: str) -> float:
    """argparse type for a positive, finite number of seconds (also used by ``reload``)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}: give e.g. 30")
    return value


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=prog, description="Stop a dropins instance started with "
                                "--pidfile, and wait until it has exited.")
    parser.add_argument("--pidfile", required=True, metavar="PATH",
                        help="The pidfile the instance was started with.")
    parser.add_argument("--timeout", type=seconds_argument, default=30.0, metavar="SECONDS",
                        help="How long to wait for the instance to exit (default: 30).")
    return parser


def _fail(prog: str, message: str) -> int:
    sys.stderr.write(f"{prog}: error: {message}\n")
    return 1


def _wait_for_pid(path: str, deadline: float) -> int | None:
    """The PID in ``path``; a starting instance may not have written it yet, so retry briefly."""
    while True:
        pid = read_pid(path)
        if pid is not None or time.monotonic() >= deadline:
            return pid
        time.sleep(POLL_SECONDS)


def main(argv: Sequence[str], prog: str = "dropins stop") -> int:
    args = build_parser(prog).parse_args(list(argv))
    path = os.path.abspath(args.pidfile)
    try:
        is_file = stat.S_ISREG(os.stat(path).st_mode)
        running = is_file and is_locked(path)
    except FileNotFoundError:  # never started, or already stopped (which removes the file)
        sys.stderr.write(f"{prog}: not running (no pidfile at {path})\n")
        return 0
    except OSError as error:  # e.g. a folder on the way that this user may not enter
        return _fail(prog, f"cannot read pidfile {path}: {error.strerror or error}"
                           " (run as the instance's user or root)")
    if not is_file:
        return _fail(prog, f"{path} is not a pidfile (not a regular file); give the --pidfile "
                           "the instance was started with")
    if not running:
        sys.stderr.write(f"{prog}: not running (pidfile {path} is stale: no process holds it)\n")
        return 0
    deadline = time.monotonic() + args.timeout
    pid = _wait_for_pid(path, min(deadline, time.monotonic() + 2.0))
    if pid is None:
        return _fail(prog, f"pidfile {path} holds no process id")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it exited between our check and the signal: what we wanted
    except PermissionError:
        return _fail(prog, f"cannot signal pid {pid}: permission denied (run as its user)")
    while is_locked(path):
        if time.monotonic() >= deadline:
            return _fail(prog, f"pid {pid} did not exit within {args.timeout:g} seconds; "
                               "try again with a longer --timeout")
        time.sleep(POLL_SECONDS)
    sys.stderr.write(f"{prog}: stopped pid {pid}\n")
    return 0
