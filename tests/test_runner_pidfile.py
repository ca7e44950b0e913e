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
