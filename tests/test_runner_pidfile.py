"""The locked pidfile: liveness by lock, never by PID, so stale files never block a start."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dropins.runner.errors import RunnerError
from dropins.runner.pidfile import PidFile, is_locked, read_pid

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX locking semantics")

HOLDER = textwrap.dedent("""
    import sys, time
    from dropins.runner.pidfile import PidFile
    pidfile = PidFile(sys.argv[1])
    pidfile.acquire()
    print("locked", flush=True)
    sys.stdin.readline()   # hold the lock until told to go
    pidfile.release()
""")


def test_acquire_writes_pid_and_release_removes(tmp_path: Path) -> None:
    path = tmp_path / "run.pid"
    pidfile = PidFile(path)
    pidfile.acquire()
    assert read_pid(path) == os.getpid()
    pidfile.release()
    assert not path.exists()
    pidfile.release()  # releasing twice is harmless


def test_stale_pidfile_with_dead_pid_is_taken_over(tmp_path: Path) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait(timeout=30)
    path = tmp_path / "run.pid"
    path.write_text(f"{finished.pid}\n")  # a process that has exited
    with PidFile(path):
        assert read_pid(path) == os.getpid()


def test_stale_pidfile_with_live_unrelated_pid_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "run.pid"
    path.write_text(f"{os.getppid()}\n")  # a live process that holds no lock
    assert not is_locked(path)
    with PidFile(path):
        assert read_pid(path) == os.getpid()


def test_garbage_pidfile_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "run.pid"
    path.write_bytes(b"\x00\xffnot a pid")
    assert read_pid(path) is None
    with PidFile(path):
        assert read_pid(path) == os.getpid()


def test_live_holder_refuses_second_acquire(tmp_path: Path) -> None:
    path = tmp_path / "run.pid"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert is_locked(path)
        with pytest.raises(RunnerError) as caught:
            PidFile(path).acquire()
        message = caught.value.message
        assert f"already running (pid {holder.pid} holds pidfile {path})" in message
        assert "dropins stop --pidfile" in message
        assert read_pid(path) == holder.pid  # the refused attempt did not touch the file
    finally:
        holder.communicate("go\n", timeout=30)
    assert not is_locked(path) and not path.exists()


def test_unwritable_location_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(RunnerError, match=r"cannot open pidfile .*missing"):
        PidFile(tmp_path / "missing" / "run.pid").acquire()


def test_symlink_at_the_pidfile_path_is_refused_and_its_target_untouched(
        tmp_path: Path) -> None:
    """The pidfile folder often belongs to the service user: a link planted there must not make
    a runner started as root truncate and overwrite the file it points to."""
    from conftest import run_dropins

    victim = tmp_path / "victim.conf"
    victim.write_text("precious\n")
    (tmp_path / "run.pid").symlink_to(victim)
    result = run_dropins("--pidfile", "run.pid", "echo", "--listen",
                         "tcp:0:interface=127.0.0.1", cwd=tmp_path, timeout=30)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"dropins: error: refusing pidfile {tmp_path / 'run.pid'}: "
                                    "it is a symbolic link")
    assert victim.read_text() == "precious\n"
    assert (tmp_path / "run.pid").is_symlink()


def test_fifo_at_the_pidfile_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.pid"
    os.mkfifo(path)
    with pytest.raises(RunnerError, match=r"refusing pidfile .*: it is not a regular file"):
        PidFile(path).acquire()
    assert path.exists()


def test_pidfile_on_a_full_disk_is_a_one_line_error_and_leaves_no_file(tmp_path: Path) -> None:
    from _runner_helpers import fill_up, small_filesystem
    from conftest import run_dropins

    with small_filesystem(tmp_path / "disk") as disk:
        fill_up(disk)
        result = run_dropins("--pidfile", str(disk / "run.pid"), "echo", "--listen",
                             "tcp:0:interface=127.0.0.1", timeout=30)
        assert result.returncode == 1
        assert result.stderr == (f"dropins: error: cannot write pidfile {disk / 'run.pid'}: "
                                 "No space left on device\n")
        assert not (disk / "run.pid").exists()
