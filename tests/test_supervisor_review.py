"""``dropins --workers``: what a review of the supervisor found wrong, each with its test.

- a worker started later (a crashed one's replacement) runs the application file the
  supervisor last checked, not an edit on disk that a reload refused or nobody reloaded yet;
- a worker whose event loop blocks (no heartbeat) is killed and replaced;
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from _config_helpers import http_get
from _runner_helpers import Dropins, assert_no_traceback, connect
from conftest import get_free_port, run_dropins, write_tree
from test_supervisor_workers import WAIT, ask_pid, line_after, workers_of

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="--workers is POSIX only")


def site_toml(port: int, folder: str) -> str:
    return (f'[runner]\nworkers = 1\nshutdown-timeout = 5\n\n[services.site]\ncommand = "web"\n'
            f'path = "{folder}"\nno-access-log = true\n'
            f'listen = "tcp:{port}:interface=127.0.0.1"\n')


def kill_the_worker(server: Dropins) -> None:
    """kill -9 the only worker and wait for its replacement to be ready."""
    (victim,) = workers_of(server.process.pid, 1)
    start = len(server.lines)
    os.kill(victim, signal.SIGKILL)
    line_after(server, start, rf"worker 1 pid {victim} killed by SIGKILL")
    line_after(server, start, r"worker 1 pid \d+ ready")


def test_a_replacement_worker_runs_the_checked_file_not_the_disk(tmp_path: Path) -> None:
    port = get_free_port()
    write_tree(tmp_path, {"one/index.html": "one\n", "two/index.html": "two\n",
                          "site.toml": site_toml(port, "one")})
    config = tmp_path / "site.toml"
    with Dropins("-c", str(config), cwd=tmp_path) as server:
        server.ready(WAIT)
        assert http_get(port) == (200, b"one\n")
        # an edit that a reload refuses: the workers keep the checked version
        config.write_text('[services.site]\ncommand = "no-such-command"\n')
        start = len(server.lines)
        server.signal(signal.SIGHUP)
        line_after(server, start, r"restart \(SIGHUP\) refused, nothing restarts")
        kill_the_worker(server)
        assert http_get(port) == (200, b"one\n")
        # a valid edit that nobody reloaded: the same
        config.write_text(site_toml(port, "two"))
        kill_the_worker(server)
        assert http_get(port) == (200, b"one\n")
        # SIGHUP: now the edit is checked, and it is what the workers run
        start = len(server.lines)
        server.signal(signal.SIGHUP)
        line_after(server, start, r"restarted 1 workers \(SIGHUP\)")
        assert http_get(port) == (200, b"two\n")
        assert server.stop(WAIT) == 0
    assert "failed to start" not in server.stderr
    assert_no_traceback(server.stderr)


#: Answers "pid N"; a line "block" blocks the worker's event loop for good.
BLOCKING_APP = '''
import os
import time

from dropins import Application, StreamServerService


async def answer(reader, writer):
    if (await reader.readline()).strip() == b"block":
        time.sleep(3600)
    writer.write(f"pid {os.getpid()}\\n".encode())
    await writer.drain()


application = Application()
StreamServerService(os.environ["LISTEN"], answer).set_parent(application)
'''


def test_a_worker_whose_loop_blocks_is_killed_and_replaced(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app.py": BLOCKING_APP})
    address = f"tcp:{get_free_port()}:interface=127.0.0.1"
    with Dropins("--workers", "1", "--worker-timeout", "2", "--app", "app.py", cwd=tmp_path,
                 env={"LISTEN": address}) as server:
        (served,) = server.ready(WAIT)
        (stuck,) = workers_of(server.process.pid, 1)
        assert ask_pid(served) == stuck
        start = len(server.lines)
        with connect(served) as blocker:
            blocker.sendall(b"block\n")
            line_after(server, start, rf"worker 1 pid {stuck} has not answered for \d+ s "
                                      r"\(its event loop is blocked\); killing it")
        line_after(server, start, rf"worker 1 pid {stuck} killed by SIGKILL; starting a new one")
        line_after(server, start, r"worker 1 pid \d+ ready")
        (fresh,) = workers_of(server.process.pid, 1)
        assert fresh != stuck and ask_pid(served) == fresh
        assert server.stop(WAIT) == 0
    assert_no_traceback(server.stderr)


def test_worker_timeout_goes_with_workers(tmp_path: Path) -> None:
    result = run_dropins("--worker-timeout", "5", "echo", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("dropins: error: --worker-timeout goes with --workers N: it "
                             "replaces a worker whose event loop is stuck\n")
