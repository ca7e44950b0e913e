"""``dropins reload --pidfile PATH``: make a running ``-c FILE`` instance re-read its file.

It sends SIGHUP to the instance that holds the pidfile's lock and waits for the outcome in the
status file beside the pidfile (see ``dropins.runner.reloading``): exit 0 and the summary
(``restarted site; started jobs; unchanged echo``) when the reload was applied, 1 and the
reason when it was refused or a service failed to start, 2 when nothing runs there.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence

from dropins.options import OneLineErrorParser
from dropins.runner.pidfile import is_locked, read_pid
from dropins.runner.reloading import read_status, status_path
from dropins.runner.stop_command import seconds_argument

POLL_SECONDS = 0.05


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=prog, description="Make a dropins instance started with "
                                "-c FILE --pidfile PATH re-read FILE, and report the outcome.")
    parser.add_argument("--pidfile", required=True, metavar="PATH",
                        help="The pidfile the instance was started with.")
    parser.add_argument("--timeout", type=seconds_argument, default=60.0, metavar="SECONDS",
                        help="How long to wait for the outcome (default: 60).")
    return parser


def _generation(path: str, pid: int) -> int:
    status = read_status(path)
    if status is None or status.get("pid") != pid:
        return 0
    generation = status.get("generation")
    return generation if isinstance(generation, int) else 0


def main(argv: Sequence[str], prog: str = "dropins reload") -> int:
    args = build_parser(prog).parse_args(list(argv))
    path = os.path.abspath(args.pidfile)
    try:
        running = os.path.isfile(path) and is_locked(path)
    except OSError as error:
        sys.stderr.write(f"{prog}: error: cannot read pidfile {path}: "
                         f"{error.strerror or error}\n")
        return 2
    pid = read_pid(path) if running else None
    if pid is None:
        sys.stderr.write(f"{prog}: error: nothing runs there: no live instance holds "
                         f"{path}\n")
        return 2
    status_file = status_path(path)
    before = _generation(status_file, pid)
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        sys.stderr.write(f"{prog}: error: nothing runs there: pid {pid} has exited\n")
        return 2
    except PermissionError:
        sys.stderr.write(f"{prog}: error: cannot signal pid {pid}: permission denied "
                         "(run as its user)\n")
        return 1
    deadline = time.monotonic() + args.timeout
    while _generation(status_file, pid) <= before:
        if time.monotonic() >= deadline or not is_locked(path):
            sys.stderr.write(f"{prog}: error: no outcome from pid {pid} within "
                             f"{args.timeout:g} seconds\n")
            return 1
        time.sleep(POLL_SECONDS)
    status = read_status(status_file) or {}
    message = str(status.get("message", ""))
    if status.get("ok"):
        sys.stdout.write(f"{message}\n")
        return 0
    sys.stderr.write(f"{prog}: error: {message}\n")
    return 1
