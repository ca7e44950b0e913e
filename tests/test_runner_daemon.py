"""Daemon mode end to end: status pipe, locked pidfile, `dropins stop`, stale pidfiles."""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _runner_helpers import assert_no_traceback, connect, process_gone, recv_exactly
from conftest import run_dropins

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="--daemon is POSIX only")

LOOPBACK_ANY = "tcp:0:interface=127.0.0.1"


@pytest.fixture
def rundir(tmp_path: Path) -> Iterator[Path]:
    """A run directory; any daemon whose pidfile is left there is killed afterwards."""
    yield tmp_path
    for pidfile in tmp_path.rglob("*.pid"):
        text = pidfile.read_text().strip()
        if text.isdigit() and int(text) != os.getpid():
            try:
                os.kill(int(text), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def start_daemon(rundir: Path, *extra: str, command: tuple[str, ...] = ("echo", "--listen",
                                                                         LOOPBACK_ANY)):
    return run_dropins("--daemon", "--pidfile", "run.pid", "--logfile", "run.log", *extra,
                       *command, cwd=rundir, timeout=30)


def ready_address(rundir: Path) -> str:
    match = re.search(r"ready: \S+ listening on (\S+)", (rundir / "run.log").read_text())
    assert match, (rundir / "run.log").read_text()
    return match.group(1)


def test_daemon_start_refuse_second_and_stop(rundir: Path) -> None:
    started = start_daemon(rundir)
    # the launcher returns only once the service is ready, so everything is in place already
    assert started.returncode == 0, started.stderr
    pid = int((rundir / "run.pid").read_text())
    assert started.stdout == f"dropins: started pid {pid}\n" and started.stderr == ""
    assert pid != os.getpid()
    address = ready_address(rundir)
    with connect(address) as sock:
        sock.sendall(b"daemon\n")
        assert recv_exactly(sock, 7) == b"daemon\n"

    second = start_daemon(rundir)
    assert second.returncode == 1
    assert second.stderr == (f"dropins: error: already running (pid {pid} holds pidfile "
                             f"{rundir / 'run.pid'}); stop it with 'dropins stop --pidfile "
                             f"{rundir / 'run.pid'}'\n")
    assert int((rundir / "run.pid").read_text()) == pid  # untouched by the refused start

    stopped = run_dropins("stop", "--pidfile", "run.pid", cwd=rundir, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped pid {pid}" in stopped.stderr
    assert process_gone(pid)  # `stop` returned only after the daemon had exited
    assert not (rundir / "run.pid").exists()
    log = (rundir / "run.log").read_text()
    assert "received SIGTERM; stopping" in log and log.rstrip().endswith("stopped")
    assert_no_traceback(log)

    again = run_dropins("stop", "--pidfile", "run.pid", cwd=rundir)  # stopping twice is fine
    assert again.returncode == 0, again.stderr
    assert again.stderr == f"dropins stop: not running (no pidfile at {rundir / 'run.pid'})\n"


@pytest.mark.parametrize("stale", ["dead", "live-unrelated"])
def test_stale_pidfile_never_blocks_a_start(rundir: Path, stale: str) -> None:
    if stale == "dead":
        import subprocess

        finished = subprocess.Popen([sys.executable, "-c", "pass"])
        finished.wait(timeout=30)
        stale_pid = finished.pid
    else:
        stale_pid = os.getpid()  # alive, but holds no lock: a recycled PID
    (rundir / "run.pid").write_text(f"{stale_pid}\n")

    status = run_dropins("stop", "--pidfile", "run.pid", cwd=rundir)
    assert status.returncode == 0 and "not running" in status.stderr  # and nobody was signalled

    started = start_daemon(rundir)
    assert started.returncode == 0, started.stderr
    pid = int((rundir / "run.pid").read_text())
    assert pid != stale_pid
    stopped = run_dropins("stop", "--pidfile", "run.pid", cwd=rundir, timeout=60)
    assert stopped.returncode == 0 and process_gone(pid)


def test_startup_failure_is_the_launchers_exit_status(rundir: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        endpoint = f"tcp:{blocker.getsockname()[1]}:interface=127.0.0.1"
        result = start_daemon(rundir, command=("echo", "--listen", endpoint))
    assert result.returncode == 1
    assert result.stderr == f"dropins: error: cannot listen on {endpoint}: address already in use\n"
    assert not (rundir / "run.pid").exists()  # the daemon released its pidfile on the way out
    assert f"cannot listen on {endpoint}" in (rundir / "run.log").read_text()


def test_daemon_that_dies_silently_is_reported(rundir: Path) -> None:
    (rundir / "app.py").write_text(
        "import os\n"
        "from dropins import Service, Application\n"
        "class Dies(Service):\n"
        "    async def start(self):\n"
        "        os._exit(3)\n"
        "application = Application()\n"
        "Dies().set_parent(application)\n")
    result = start_daemon(rundir, "--app", "app.py", command=())
    assert result.returncode == 1
    assert result.stderr == ("dropins: error: the daemon exited during startup without a "
                             "report; see run.log\n")


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root")
def test_privileged_bind_then_drop_to_nobody(rundir: Path) -> None:
    import pwd
    import random

    nobody = pwd.getpwnam("nobody")
    os.chmod(rundir, 0o777)  # the unprivileged daemon removes its pidfile on the way out

    candidates = random.sample(range(600, 1024), 20)  # privileged ports, bound before dropping
    for port in candidates:  # another process may take a free-looking port: try a few
        started = start_daemon(rundir, "--uid", "nobody",
                               command=("echo", "--listen", f"tcp:{port}:interface=127.0.0.1"))
        if "address already in use" not in started.stderr:
            break
    assert started.returncode == 0, started.stderr
    pid = int((rundir / "run.pid").read_text())
    status = Path(f"/proc/{pid}/status").read_text()
    uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.MULTILINE)
    gids = re.search(r"^Gid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.MULTILINE)
    assert uids and set(uids.groups()) == {str(nobody.pw_uid)}
    assert gids and set(gids.groups()) == {str(nobody.pw_gid)}
    groups = re.search(r"^Groups:(.*)$", status, re.MULTILINE)
    assert groups and set(groups.group(1).split()) == {
        str(gid) for gid in os.getgrouplist("nobody", nobody.pw_gid)}, status
    with connect(f"tcp:127.0.0.1:{port}") as sock:
        sock.sendall(b"low\n")
        assert recv_exactly(sock, 4) == b"low\n"
    stopped = run_dropins("stop", "--pidfile", "run.pid", cwd=rundir, timeout=60)
    assert stopped.returncode == 0 and process_gone(pid)


def test_unknown_user_is_a_usage_error(rundir: Path) -> None:
    result = start_daemon(rundir, "--uid", "no-such-user-dropins")
    assert result.returncode == 2
    assert result.stderr.startswith("dropins: error: unknown user 'no-such-user-dropins'")
    assert not (rundir / "run.pid").exists()


def test_numeric_uid_without_passwd_entry_needs_gid(rundir: Path) -> None:
    """Without a group the switch would keep root's group 0 and supplementary groups."""
    result = start_daemon(rundir, "--uid", "54321")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--gid" in result.stderr
    assert result.stderr.startswith("dropins: error: --uid 54321 has no passwd entry")
    assert not (rundir / "run.pid").exists()


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root")
def test_numeric_uid_and_gid_leave_no_root_group(rundir: Path) -> None:
    from _runner_helpers import Dropins

    with Dropins("--uid", "54321", "--gid", "54321", "echo", "--listen", LOOPBACK_ANY,
                 cwd=rundir) as dropins:
        dropins.ready()
        status = Path(f"/proc/{dropins.process.pid}/status").read_text()
        assert dropins.stop() == 0
    for field in ("Uid", "Gid"):
        ids = re.search(rf"^{field}:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.MULTILINE)
        assert ids and set(ids.groups()) == {"54321"}, status
    groups = re.search(r"^Groups:(.*)$", status, re.MULTILINE)
    assert groups and groups.group(1).split() == ["54321"], status


def test_stop_waits_within_its_timeout(rundir: Path) -> None:
    started = start_daemon(rundir, "--shutdown-timeout", "30")
    assert started.returncode == 0, started.stderr
    pid = int((rundir / "run.pid").read_text())
    with connect(ready_address(rundir)) as sock:  # an open connection delays the stop
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
        began = time.monotonic()
        result = run_dropins("stop", "--pidfile", "run.pid", "--timeout", "0.5", cwd=rundir)
        assert time.monotonic() - began < 10
        assert result.returncode == 1
        assert f"pid {pid} did not exit within 0.5 seconds" in result.stderr
    # the client is gone now: the daemon finishes stopping by itself
    assert process_gone(pid)


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root")
def test_app_file_identity_is_applied(rundir: Path) -> None:
    import pwd

    from _runner_helpers import Dropins

    nobody = pwd.getpwnam("nobody")
    (rundir / "app.py").write_text(
        "from dropins import Application, StreamServerService\n"
        "from dropins.servers.inetd import Echo\n"
        f"application = Application(uid={nobody.pw_uid})\n"
        "StreamServerService('tcp:0:interface=127.0.0.1', Echo).set_parent(application)\n")
    with Dropins("--app", "app.py", cwd=rundir) as dropins:
        dropins.ready()
        status = Path(f"/proc/{dropins.process.pid}/status").read_text()
        uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.MULTILINE)
        assert uids and set(uids.groups()) == {str(nobody.pw_uid)}
        assert dropins.stop() == 0


def test_rundir_and_umask_apply_to_relative_paths(rundir: Path) -> None:
    (rundir / "sub").mkdir()
    started = start_daemon(rundir, "--rundir", "sub", "--umask", "077")
    assert started.returncode == 0, started.stderr
    pidfile, logfile = rundir / "sub" / "run.pid", rundir / "sub" / "run.log"
    assert pidfile.exists() and logfile.exists() and not (rundir / "run.pid").exists()
    assert logfile.stat().st_mode & 0o077 == 0  # created under --umask 077
    pid = int(pidfile.read_text())
    stopped = run_dropins("stop", "--pidfile", str(pidfile), timeout=60)
    assert stopped.returncode == 0 and process_gone(pid)


@pytest.mark.parametrize(("given", "umask"), [((), 0o027), (("--umask", "022"), 0o022)])
def test_daemon_umask_defaults_to_027(rundir: Path, given: tuple[str, ...], umask: int) -> None:
    """Files a daemon creates are not world-readable unless --umask says so (twistd: 077)."""
    old_umask = os.umask(0o022)  # what the daemon would inherit from a typical shell
    try:
        started = start_daemon(rundir, *given)
    finally:
        os.umask(old_umask)
    assert started.returncode == 0, started.stderr
    pid = int((rundir / "run.pid").read_text())
    try:
        status = Path(f"/proc/{pid}/status").read_text() if sys.platform == "linux" else ""
        assert (rundir / "run.log").stat().st_mode & 0o777 == 0o666 & ~umask
        assert (rundir / "run.pid").stat().st_mode & 0o777 == 0o644 & ~umask
        if status:
            assert re.search(r"^Umask:\s+(\d+)", status, re.MULTILINE).group(1) == f"{umask:04o}"
    finally:
        stopped = run_dropins("stop", "--pidfile", "run.pid", cwd=rundir, timeout=60)
    assert stopped.returncode == 0 and process_gone(pid)


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to drop "
                    "privileges to nobody")
def test_sighup_after_privilege_drop_keeps_the_old_log(rundir: Path) -> None:
    """The log folder is root's: once running as nobody, the renamed log cannot be recreated.
    Logging must go on in the renamed file, with one line saying why and how to fix it."""
    import grp
    import pwd

    from _runner_helpers import Dropins

    os.chmod(rundir, 0o755)  # root-owned, not writable by nobody
    log, renamed = rundir / "x.log", rundir / "x.log.1"
    with Dropins("--uid", "nobody", "--logfile", str(log), "echo", "--listen", LOOPBACK_ANY,
                 cwd=rundir) as dropins:
        deadline = time.monotonic() + 20
        while "ready: echo" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline and dropins.process.poll() is None, dropins.stderr
            time.sleep(0.05)
        log.rename(renamed)
        dropins.signal(signal.SIGHUP)
        while "cannot reopen log file" not in renamed.read_text():
            assert time.monotonic() < deadline and dropins.process.poll() is None, dropins.stderr
            time.sleep(0.05)
        assert dropins.stop() == 0
    assert dropins.stderr == "", "a logging error reached standard error"
    assert not log.exists()
    text = renamed.read_text()
    errors = [line for line in text.splitlines() if "cannot reopen log file" in line]
    assert len(errors) == 1, text
    assert f"{log}: Permission denied" in errors[0] and "runs as user nobody" in errors[0]
    group = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
    assert f"'create 0640 nobody {group}'" in errors[0] and "'copytruncate'" in errors[0]
    assert "received SIGTERM; stopping" in text and text.rstrip().endswith("stopped")


def _stop_as_unprivileged_user(argv: list[str]) -> tuple[int, str]:
    """Run ``dropins stop`` in this interpreter as a user without root's rights: in a forked
    child switched to nobody when we are root (the interpreter under /root could not even be
    started as nobody), in process otherwise.  Returns (exit status, standard error)."""
    import io

    from dropins.runner import stop_command

    if os.getuid() != 0:
        saved, sys.stderr = sys.stderr, io.StringIO()
        try:
            return stop_command.main(argv), sys.stderr.getvalue()
        finally:
            sys.stderr = saved
    import pwd

    nobody = pwd.getpwnam("nobody")
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        status = 99
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            sys.stderr = io.TextIOWrapper(os.fdopen(write_fd, "wb"), encoding="utf-8")
            status = stop_command.main(argv)
            sys.stderr.flush()
        finally:
            os._exit(status)
    os.close(write_fd)
    chunks = []
    deadline = time.monotonic() + 20
    with os.fdopen(read_fd, "rb") as pipe:
        while chunk := pipe.read(4096):
            chunks.append(chunk)
            assert time.monotonic() < deadline
    _, wait_status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(wait_status), b"".join(chunks).decode()


def test_stop_fails_when_the_pidfile_cannot_be_read(rundir: Path) -> None:
    locked = rundir / "locked"
    locked.mkdir()
    (locked / "run.pid").write_text(f"{os.getpid()}\n")
    os.chmod(locked, 0)  # neither nobody nor a normal user may look inside
    try:
        status, err = _stop_as_unprivileged_user(["--pidfile", str(locked / "run.pid")])
    finally:
        os.chmod(locked, 0o700)
    assert status == 1
    assert err == (f"dropins stop: error: cannot read pidfile {locked / 'run.pid'}: Permission "
                   "denied (run as the instance's user or root)\n")


def test_stop_refuses_a_path_that_is_not_a_pidfile(rundir: Path) -> None:
    (rundir / "folder").mkdir()
    result = run_dropins("stop", "--pidfile", "folder", cwd=rundir)
    assert result.returncode == 1
    assert result.stderr == (f"dropins stop: error: {rundir / 'folder'} is not a pidfile (not a "
                             "regular file); give the --pidfile the instance was started with\n")
    (rundir / "file").write_text("")
    result = run_dropins("stop", "--pidfile", "file/run.pid", cwd=rundir)
    assert result.returncode == 1
    assert result.stderr.startswith(f"dropins stop: error: cannot read pidfile "
                                    f"{rundir / 'file' / 'run.pid'}: Not a directory")


LOGS_A_LOT = """
    import logging

    from dropins import Application, Service


    class Chatty(Service):
        async def start(self):
            await super().start()
            for index in range(300):
                logging.getLogger("app").info("line %03d %s", index, "x" * 60)


    application = Application()
    Chatty().set_parent(application)
    """


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to drop "
                    "privileges to nobody")
def test_size_rotation_refused_after_privilege_drop_loses_no_line(rundir: Path) -> None:
    """The log folder is root's: once running as nobody, rotation cannot rename the log.  Every
    line must still reach the log, with one line saying rotation is off and how to fix it."""
    from _runner_helpers import Dropins

    os.chmod(rundir, 0o755)  # root-owned, not writable by nobody
    (rundir / "app.py").write_text(textwrap.dedent(LOGS_A_LOT))
    log = rundir / "x.log"
    with Dropins("--uid", "nobody", "--logfile", str(log), "--log-max-bytes", "2k", "--app",
                 "app.py", cwd=rundir) as dropins:
        deadline = time.monotonic() + 20
        while "ready: " not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline and dropins.process.poll() is None, dropins.stderr
            time.sleep(0.05)
        assert dropins.stop() == 0
    assert dropins.stderr == "", "a logging error reached standard error"
    assert sorted(item.name for item in rundir.iterdir()) == ["app.py", "x.log"]
    text = log.read_text()
    assert all(f"line {index:03d} " in text for index in range(300)), text
    errors = [line for line in text.splitlines() if "log rotation is off" in line]
    assert len(errors) == 1, text
    assert f"cannot rotate {log}: Permission denied" in errors[0]
    assert "runs as user nobody" in errors[0] and "logrotate" in errors[0]
    assert "received SIGTERM; stopping" in text and text.rstrip().endswith("stopped")


def test_a_second_status_report_is_a_no_op_while_the_first_is_written() -> None:
    """The stop deadline's thread and the main thread may both report: the first report is
    the only one written, the descriptor is closed once, and the second report does not wait."""
    import threading

    from dropins.runner.daemon import StatusPipe

    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        while True:
            os.write(write_fd, b"x" * 4096)  # fill the pipe: the first report's write blocks
    except BlockingIOError:
        pass
    os.set_blocking(write_fd, True)
    status = StatusPipe(write_fd)
    first = threading.Thread(target=status.ready, daemon=True)
    first.start()
    deadline = time.monotonic() + 10
    while status.pending:  # until the first report has taken the descriptor
        assert time.monotonic() < deadline and first.is_alive()
        time.sleep(0.01)
    second = threading.Thread(target=status.failed, args=("services did not stop",),
                              daemon=True)
    second.start()
    second.join(timeout=10)
    assert not second.is_alive()  # did not write into the full pipe, nor wait for the lock
    with os.fdopen(read_fd, "rb") as reader:
        data = reader.read()  # drains the pipe; EOF once the first report closed its end
    first.join(timeout=10)
    assert data.lstrip(b"x") == f"ready {os.getpid()}\n".encode()
