"""systemd notify: READY/RELOADING/STOPPING in order, the watchdog only while the loop runs."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from _observe_helpers import NotifySocket, write_steered_app
from _runner_helpers import Dropins, assert_no_traceback
from dropins.supervisor.notify import notify_address, watchdog_interval

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="sd_notify is POSIX")



def test_ready_reloading_stopping_in_order_and_no_watchdog_while_the_loop_blocks(
        tmp_path: Path, notify_socket: NotifySocket) -> None:
    app, triggers = write_steered_app(tmp_path)
    (triggers / "go").touch()
    (triggers / "release").touch()
    env = {"NOTIFY_SOCKET": notify_socket.name, "WATCHDOG_USEC": "200000",
           "TEST_TRIGGERS": str(triggers)}
    with Dropins("--app", str(app), env=env) as dropins:
        ready = notify_socket.wait_for("READY")
        assert notify_socket.messages[ready]["MAINPID"] == str(dropins.process.pid)
        assert notify_socket.messages[ready]["STATUS"] == "ready: 0 open connections"
        first_watchdog = notify_socket.wait_for("WATCHDOG", "1", after=ready)
        notify_socket.wait_for("WATCHDOG", "1", after=first_watchdog + 1)  # and again

        dropins.signal(signal.SIGHUP)
        reloading = notify_socket.wait_for("RELOADING", "1", after=ready)
        usec = int(notify_socket.messages[reloading]["MONOTONIC_USEC"])
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert 0 < now - usec < 60_000_000  # the same clock as systemd's, a moment ago
        ready_again = notify_socket.wait_for("READY", "1", after=reloading)

        dropins.signal(signal.SIGUSR2)  # the app blocks its loop for 1.5 s (~15 intervals)
        begin = notify_socket.wait_for("X-BLOCK-BEGIN", after=ready_again)
        end = notify_socket.wait_for("X-BLOCK-END", after=begin)
        assert not [m for m in notify_socket.messages[begin:end] if "WATCHDOG" in m]
        notify_socket.wait_for("WATCHDOG", "1", after=end)  # resumes with the loop

        assert dropins.stop() == 0
    stopping = notify_socket.wait_for("STOPPING", "1")
    assert notify_socket.messages[stopping]["STATUS"] == "stopping: 0 open connections"
    assert notify_socket.kinds() == ["READY", "RELOADING", "READY", "X-BLOCK-BEGIN",
                                    "X-BLOCK-END", "STOPPING"]
    assert_no_traceback(dropins.stderr)


def test_abstract_socket_and_a_watchdog_meant_for_another_process(tmp_path: Path) -> None:
    name = f"@dropins-test-{os.getpid()}-{time.monotonic_ns()}"
    notify_socket = NotifySocket(name)
    try:
        env = {"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "50000", "WATCHDOG_PID": "1"}
        with Dropins("web", "--path", str(tmp_path), "--listen", "tcp:0:interface=127.0.0.1",
                     env=env) as dropins:
            dropins.ready()
            notify_socket.wait_for("READY", "1")
            time.sleep(0.3)  # six watchdog intervals in which nothing may be sent
            assert dropins.stop() == 0
        notify_socket.wait_for("STOPPING", "1")
        assert not [m for m in notify_socket.messages if "WATCHDOG" in m]
        assert notify_socket.kinds() == ["READY", "STOPPING"]
    finally:
        notify_socket.close()


def test_an_unreachable_notify_socket_never_fails_the_run(tmp_path: Path) -> None:
    env = {"NOTIFY_SOCKET": str(tmp_path / "nobody-listens"), "WATCHDOG_USEC": "100000"}
    with Dropins("--log-level", "debug", "web", "--path", str(tmp_path), "--listen",
                 "tcp:0:interface=127.0.0.1", env=env) as dropins:
        dropins.ready()
        assert dropins.stop() == 0
    assert dropins.stderr.count("cannot notify systemd") == 1  # once, at debug level
    assert_no_traceback(dropins.stderr)


@pytest.mark.parametrize(("value", "expected"), [
    ("@name", b"\0name"), ("/run/systemd/notify", "/run/systemd/notify"), ("", None),
    ("vsock:2:1234", None), (None, None)])
def test_notify_address(value: str | None, expected: object) -> None:
    assert notify_address(value) == expected


def test_watchdog_interval_is_half_the_timeout_and_only_for_this_process() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "4000000"}) == 2.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}) == 2
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({}) is None
