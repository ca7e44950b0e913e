"""``dropins --workers N`` end to end: real supervisor and worker processes on real sockets.

One supervisor is shared by the tests that only look at it or change it and put it back (kill a
worker, SIGTTIN/SIGTTOU, a rolling restart); the others start their own.  Every server answers
a line with the PID of the process that accepted the connection, so a test sees which worker
served it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from _runner_helpers import Dropins, assert_no_traceback, connect, process_gone
from conftest import get_free_port, run_dropins, write_tree

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="--workers is POSIX only")

#: Answers each connection's first line with "pid N" (N: the process that accepted it).
PID_SERVER = '''
import os

from dropins import Application, StreamServerService


async def answer(reader, writer):
    await reader.readline()
    writer.write(f"pid {os.getpid()}\\n".encode())
    await writer.drain()


def make_service(listen="tcp:0:interface=127.0.0.1"):
    return StreamServerService(listen, answer)
'''

APP = '''
import os
from dropins import Application
from pidserver import make_service

if os.environ.get("DROPINS_WORKER") and os.path.exists("refuse-workers"):
    raise RuntimeError("refusing to start: refuse-workers exists")
if os.environ.get("DROPINS_WORKER") and os.path.exists("slow-workers"):
    import time
    time.sleep(60)

application = Application()
make_service(os.environ.get("LISTEN", "tcp:0:interface=127.0.0.1")).set_parent(application)
'''

#: Every worker fails to start (the supervisor only binds, it never starts the tree).
FAILING_APP = '''
from dropins import Application, Service


class Database(Service):
    async def start(self):
        raise RuntimeError("no database at db.example:5432")


application = Application()
Database("db").set_parent(application)
'''

WAIT = 30.0
T = TypeVar("T")


def ask_pid(address: str) -> int:
    with connect(address) as sock:
        sock.sendall(b"who\n")
        answer = sock.makefile("rb").readline()
    match = re.fullmatch(rb"pid (\d+)\n", answer)
    assert match, answer
    return int(match.group(1))


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from every thread of it)."""
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as listing:
            found.update(int(child) for child in listing.read().split())
    return {child for child in found if not _is_zombie(child)}


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def wait_until(condition: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def line_after(dropins: Dropins, start: int, pattern: str, timeout: float = WAIT) -> re.Match[str]:
    """The first stderr line after the first ``start`` lines that matches ``pattern``."""
    regex = re.compile(pattern)

    def found() -> re.Match[str] | None:
        for line in list(dropins.lines[start:]):
            if match := regex.search(line):
                return match
        assert dropins.process.poll() is None, dropins.stderr
        return None

    return wait_until(found, f"{pattern!r} in:\n{dropins.stderr}", timeout)


def pids_answering(address: str, expected: set[int], timeout: float = WAIT) -> set[int]:
    """Connect until every one of ``expected`` answered (or ``timeout`` ran out).

    Bounded in time rather than in tries: on a loaded machine the worker that accepted last
    stays the quickest to wake for many connections in a row, and a short pause between tries
    lets the others in."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    tries = 0
    while time.monotonic() < deadline:
        seen.add(ask_pid(address))
        if expected <= seen:
            break
        tries += 1
        if tries > 100:
            time.sleep(0.01)
    return seen


def app_folder(root: Path) -> Path:
    return write_tree(root, {"pidserver.py": PID_SERVER, "app.py": APP,
                             "failing.py": FAILING_APP})


class Running:
    """A supervisor started for the tests, with what they need to know of it."""

    def __init__(self, dropins: Dropins, address: str, root: Path) -> None:
        self.dropins = dropins
        self.root = root  # the app's folder, its working directory
        self.address = address
        self.pid = dropins.process.pid

    def workers(self, count: int = 2) -> set[int]:
        return workers_of(self.pid, count)


def workers_of(pid: int, count: int = 2) -> set[int]:
    """The worker PIDs of supervisor ``pid``, once there are ``count`` of them."""
    def found() -> set[int] | None:
        pids = children(pid)
        return pids if len(pids) == count else None

    return wait_until(found, f"{count} workers of {pid}")


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = app_folder(tmp_path_factory.mktemp("workers"))
    with Dropins("--workers", "2", "--shutdown-timeout", "5", "--app", "app.py",
                 cwd=root, env={"PYTHONPATH": str(root)}) as dropins:
        try:
            (address,) = dropins.ready(WAIT)
            yield Running(dropins, address, root)
            assert dropins.stop(WAIT) == 0, dropins.stderr
            assert_no_traceback(dropins.stderr)
        finally:
            for pid in children(dropins.process.pid) if dropins.process.poll() is None else ():
                os.kill(pid, signal.SIGKILL)


def test_workers_answer_on_one_port(supervisor: Running) -> None:
    workers = supervisor.workers()
    assert supervisor.pid not in workers
    assert pids_answering(supervisor.address, workers) == workers
    # every line a worker logs names it
    for pid in workers:
        assert re.search(rf"\[worker [12] pid {pid}\] worker ready", supervisor.dropins.stderr)


def test_a_burst_of_connections_is_spread_over_the_workers(supervisor: Running) -> None:
    """64 connections queued at once on the shared socket: each worker accepts one per
    wake-up, so both get a fair part (before, the first awake took the whole backlog)."""
    workers = supervisor.workers()
    for pid in workers:  # both asleep while the backlog fills: it is all queued at once
        os.kill(pid, signal.SIGSTOP)
    try:
        sockets = [connect(supervisor.address, timeout=WAIT) for _ in range(64)]
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    try:
        for sock in sockets:
            sock.sendall(b"who\n")
        served: dict[int, int] = {}
        for sock in sockets:
            match = re.fullmatch(rb"pid (\d+)\n", sock.makefile("rb").readline())
            assert match
            pid = int(match.group(1))
            served[pid] = served.get(pid, 0) + 1
    finally:
        for sock in sockets:
            sock.close()
    assert set(served) == workers, served
    assert min(served.values()) >= 8, served


def test_a_killed_worker_is_replaced(supervisor: Running) -> None:
    before = supervisor.workers()
    victim = min(before)
    start = len(supervisor.dropins.lines)
    os.kill(victim, signal.SIGKILL)
    line_after(supervisor.dropins, start, rf"worker \d pid {victim} killed by SIGKILL; "
                                          "starting a new one")
    line_after(supervisor.dropins, start, r"worker \d pid \d+ ready")
    after = supervisor.workers()
    assert victim not in after and len(after & before) == 1
    assert pids_answering(supervisor.address, after) == after


def test_sigttin_adds_a_worker_and_sigttou_removes_one(supervisor: Running) -> None:
    before = supervisor.workers()
    start = len(supervisor.dropins.lines)
    supervisor.dropins.signal(signal.SIGTTIN)
    line_after(supervisor.dropins, start, r"worker 3 pid \d+ ready")
    three = supervisor.workers(3)
    assert before < three
    assert pids_answering(supervisor.address, three) == three
    start = len(supervisor.dropins.lines)
    supervisor.dropins.signal(signal.SIGTTOU)
    retired = int(line_after(supervisor.dropins, start,
                             r"worker 3 pid (\d+) exited with status 0").group(1))
    assert supervisor.workers(2) == three - {retired}


def test_rolling_restart_under_a_polling_client(supervisor: Running) -> None:
    before = supervisor.workers()
    answers: list[int] = []
    failures: list[str] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                answers.append(ask_pid(supervisor.address))
            except (OSError, AssertionError) as error:
                failures.append(repr(error))

    client = threading.Thread(target=poll, daemon=True)
    client.start()
    try:
        wait_until(lambda: len(answers) > 20, "answers before the restart")
        start = len(supervisor.dropins.lines)
        supervisor.dropins.signal(signal.SIGHUP)
        line_after(supervisor.dropins, start, r"restarted 2 workers \(SIGHUP\)")
        after = supervisor.workers()
        served_after = len(answers)
        wait_until(lambda: len(answers) > served_after + 20, "answers after the restart")
    finally:
        done.set()
        client.join(WAIT)
    assert failures == []
    assert not before & after
    assert set(answers) <= before | after and after & set(answers)
    lines = "\n".join(supervisor.dropins.lines[start:])
    # one at a time: each new worker was ready before an old one was told to stop
    order = re.findall(r"worker (\d) pid (\d+) (ready|exited)", lines)
    assert [kind for _number, _pid, kind in order][:2] == ["ready", "exited"], lines


def test_a_failing_new_worker_aborts_the_rolling_restart(supervisor: Running) -> None:
    before = supervisor.workers()
    refuse = supervisor.root / "refuse-workers"
    refuse.write_text("")
    try:
        start = len(supervisor.dropins.lines)
        supervisor.dropins.signal(signal.SIGHUP)
        line_after(supervisor.dropins, start, r"restart \(SIGHUP\) aborted: new worker \d failed: "
                   r"app\.py.*RuntimeError: refusing to start: refuse-workers exists; "
                   r"the old workers keep serving")
    finally:
        refuse.unlink()
    assert supervisor.workers() == before
    assert pids_answering(supervisor.address, before) == before
    # a failed restart is no failed start: nothing was retried, nothing counted
    assert "trying again" not in "\n".join(supervisor.dropins.lines[start:])


def test_giving_up_after_repeated_start_failures(tmp_path: Path) -> None:
    root = app_folder(tmp_path)
    result = run_dropins("--workers", "2", "--app", "failing.py", cwd=root, timeout=60)
    assert result.returncode == 1, result.stderr
    assert_no_traceback(result.stderr)
    last = result.stderr.splitlines()[-1]
    assert re.fullmatch(r"dropins: error: workers keep failing to start \(5 times in a row\); "
                        r"the last one said: service 'db' failed to start: "
                        r"no database at db\.example:5432", last), result.stderr
    assert "trying again in" in result.stderr  # with a back-off in between


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "invalid count '0': give a whole number >= 1"),
    (["--workers", "-2"], "invalid count '-2': give a whole number >= 1"),
    (["--reuse-port"], "--reuse-port goes with --workers N"),
])
def test_bad_worker_options_are_usage_errors(tmp_path: Path, args: list[str],
                                             message: str) -> None:
    root = app_folder(tmp_path)
    result = run_dropins(*args, "--app", "app.py", cwd=root, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr


def listening_sockets(port: int) -> int:
    """How many sockets listen on 127.0.0.1:``port`` (from /proc/net/tcp)."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    local = f"0100007F:{port:04X}"
    return sum(1 for row in rows if row[1] == local and row[3] == "0A")


def test_reuse_port_gives_each_worker_its_own_socket(tmp_path: Path) -> None:
    root = app_folder(tmp_path)
    with Dropins("--workers", "2", "--reuse-port", "--app", "app.py", cwd=root,
                 env={"PYTHONPATH": str(root)}) as dropins:
        (address,) = dropins.ready(WAIT)
        running = Running(dropins, address, root)
        workers = running.workers()
        port = int(address.rsplit(":", 1)[1])
        assert listening_sockets(port) == 2  # one per worker; the supervisor's only holds it
        assert pids_answering(address, workers) == workers
        assert dropins.stop(WAIT) == 0, dropins.stderr


SHOP = '''
[runner]
workers = 2
shutdown-timeout = 5

[services.pids]
factory = "pidserver:make_service"
listen = "tcp:{port}:interface=127.0.0.1"
'''


def test_daemon_pidfile_stop_and_reload_with_workers(tmp_path: Path) -> None:
    root = app_folder(tmp_path)
    port = get_free_port()
    (root / "shop.toml").write_text(SHOP.format(port=port))
    started = run_dropins("--daemon", "--pidfile", "run.pid", "--logfile", "run.log",
                          "-c", "shop.toml", cwd=root, timeout=60)
    pid = int((root / "run.pid").read_text()) if (root / "run.pid").exists() else None
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout == f"dropins: started pid {pid}\n"
        assert pid is not None
        address = f"tcp:127.0.0.1:{port}"
        workers = workers_of(pid)
        assert pids_answering(address, workers) == workers

        reloaded = run_dropins("reload", "--pidfile", "run.pid", cwd=root, timeout=60)
        assert reloaded.returncode == 0, reloaded.stderr
        assert "restarted 2 workers" in reloaded.stdout + reloaded.stderr
        wait_until(lambda: not children(pid) & workers, "the old workers gone")

        (root / "shop.toml").write_text(SHOP.format(port=port) + "\n[services.bad]\n")
        refused = run_dropins("reload", "--pidfile", "run.pid", cwd=root, timeout=60)
        assert refused.returncode == 1 and "refused, nothing restarts" in refused.stderr, (
            refused.stdout + refused.stderr)

        stopped = run_dropins("stop", "--pidfile", "run.pid", cwd=root, timeout=60)
        assert stopped.returncode == 0, stopped.stderr
        assert process_gone(pid)
        log = (root / "run.log").read_text()
        assert re.search(r"\[worker 1 pid \d+\] worker ready", log), log
        assert "restart (SIGHUP) refused, nothing restarts" in log
        assert_no_traceback(log)
    finally:
        if pid is not None and not process_gone(pid, 0):
            os.killpg(os.getpgid(pid), signal.SIGKILL)


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                    reason="needs systemd-socket-activate (Debian: systemd)")
def test_socket_activation_hands_the_passed_socket_to_the_workers(tmp_path: Path) -> None:
    root = app_folder(tmp_path)
    port = get_free_port()
    env = {"PYTHONPATH": str(root), "LISTEN": "systemd:domain=INET:index=0"}
    with Dropins("-l", f"127.0.0.1:{port}", "-E", "LISTEN", "-E", "PYTHONPATH", sys.executable,
                 "-m", "dropins", "--workers", "2", "--app", "app.py", cwd=root, env=env,
                 executable="systemd-socket-activate") as activator:
        address = f"tcp:127.0.0.1:{port}"
        # systemd-socket-activate starts dropins on the first connection, then execs it
        wait_until(lambda: listening_sockets(port) == 1, "the activation socket")
        first = ask_pid(address)
        activator.ready(WAIT)
        workers = workers_of(activator.process.pid)
        assert first in workers
        assert pids_answering(address, workers) == workers
        assert activator.stop(WAIT) == 0, activator.stderr


def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    root = app_folder(tmp_path)
    with Dropins("--workers", "2", "--app", "app.py", cwd=root,
                 env={"PYTHONPATH": str(root)}) as dropins:
        dropins.ready(WAIT)
        workers = workers_of(dropins.process.pid)
        dropins.process.kill()
        dropins.wait(WAIT)
        try:
            assert all(process_gone(pid) for pid in workers)
        finally:
            for pid in workers:
                if not process_gone(pid, 0):
                    os.kill(pid, signal.SIGKILL)


def test_a_stop_while_the_workers_start_ends_them_all(tmp_path: Path) -> None:
    root = app_folder(tmp_path)
    (root / "slow-workers").write_text("")
    with Dropins("--workers", "2", "--app", "app.py", cwd=root,
                 env={"PYTHONPATH": str(root)}) as dropins:
        dropins.wait_for_line(r"worker 2 pid \d+ starting")
        workers = workers_of(dropins.process.pid)
        dropins.signal(signal.SIGTERM)
        assert dropins.wait(WAIT) == 143, dropins.stderr
        assert dropins.lines[-1] == ("dropins: error: stopped by SIGTERM before the services had "
                                     "started"), dropins.stderr
        assert all(process_gone(pid) for pid in workers)


def test_giving_up_while_running_when_replacements_keep_failing(tmp_path: Path) -> None:
    root = app_folder(tmp_path)
    with Dropins("--workers", "2", "--app", "app.py", cwd=root,
                 env={"PYTHONPATH": str(root)}) as dropins:
        dropins.ready(WAIT)
        workers = workers_of(dropins.process.pid)
        (root / "refuse-workers").write_text("")
        os.kill(min(workers), signal.SIGKILL)
        assert dropins.wait(WAIT) == 1, dropins.stderr
        assert dropins.lines[-1] == (
            "dropins: error: workers keep failing to start (5 times in a row); the last one "
            "said: app.py:6: RuntimeError: refusing to start: refuse-workers exists"), (
            dropins.stderr)
        assert all(process_gone(pid) for pid in workers)  # the healthy one was stopped too


STUCK_STOP = '''
import time
from dropins import Application, Service


class Stuck(Service):
    async def stop(self):
        time.sleep(60)  # blocks the worker's loop: only its own deadline ends it


application = Application()
Stuck("stuck").set_parent(application)
'''


def test_a_worker_that_overruns_the_shutdown_timeout_makes_the_exit_status_1(
        tmp_path: Path) -> None:
    write_tree(tmp_path, {"stuck.py": STUCK_STOP})
    with Dropins("--workers", "1", "--shutdown-timeout", "1", "--app", "stuck.py",
                 cwd=tmp_path) as dropins:
        dropins.ready(WAIT)
        assert dropins.stop(WAIT) == 1, dropins.stderr
        assert re.search(r"\[worker 1 pid \d+\] services did not stop within 3 seconds; "
                         "exiting anyway", dropins.stderr), dropins.stderr


def test_a_relative_config_with_rundir_reaches_the_workers(tmp_path: Path) -> None:
    root = app_folder(tmp_path / "app")
    run = tmp_path / "run"
    run.mkdir()
    port = get_free_port()
    (root / "shop.toml").write_text(SHOP.format(port=port).replace("workers = 2", "workers = 1"))
    with Dropins("--rundir", str(run), "-c", "app/shop.toml", cwd=tmp_path,
                 env={"PYTHONPATH": str(root)}) as dropins:
        dropins.ready(WAIT)
        (worker,) = workers_of(dropins.process.pid, 1)
        assert Path(f"/proc/{worker}/cwd").resolve() == run.resolve()
        assert ask_pid(f"tcp:127.0.0.1:{port}") == worker
        assert dropins.stop(WAIT) == 0, dropins.stderr


def _nobody_can_run_python() -> bool:
    try:
        return subprocess.run([sys.executable, "-c", "import dropins"], user="nobody",
                              capture_output=True, timeout=60).returncode == 0
    except (OSError, KeyError):
        return False


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root")
def test_workers_run_as_the_uid_on_a_privileged_port(tmp_path: Path) -> None:
    if not _nobody_can_run_python():
        pytest.skip("the user nobody cannot run this interpreter here (its folder is private)")
    import pwd
    import random

    nobody = pwd.getpwnam("nobody")
    root = app_folder(tmp_path)
    os.chmod(root, 0o755)
    for port in random.sample(range(600, 1024), 20):  # bound by the supervisor, as root
        env = {"PYTHONPATH": str(root), "LISTEN": f"tcp:{port}:interface=127.0.0.1"}
        with Dropins("--workers", "2", "--uid", "nobody", "--app", "app.py", cwd=root,
                     env=env) as dropins:
            try:
                dropins.ready(WAIT)
            except AssertionError:
                if "address already in use" in dropins.stderr:
                    continue
                raise
            workers = workers_of(dropins.process.pid)
            for pid in {dropins.process.pid, *workers}:
                status = Path(f"/proc/{pid}/status").read_text()
                uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.MULTILINE)
                assert uids and set(uids.groups()) == {str(nobody.pw_uid)}
            assert pids_answering(f"tcp:127.0.0.1:{port}", workers) == workers
            assert dropins.stop(WAIT) == 0, dropins.stderr
            return
    pytest.fail("no free privileged port among 20 tried")
