"""Signals at awkward moments: during a slow start, during privileged_start, and a stop that
leaves a thread behind.  Every run is a real `dropins --app` process, bounded in time."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from _runner_helpers import Dropins, assert_no_traceback, process_gone
from conftest import clean_env, write_tree

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SLOW_START = """
    import asyncio
    import logging

    from dropins import Application, Service

    log = logging.getLogger("app")


    class First(Service):
        async def start(self):
            await super().start()
            log.info("first started")

        async def stop(self):
            await super().stop()
            log.info("first stopped")


    class Slow(Service):
        async def start(self):
            log.info("slow starting")
            await asyncio.sleep(30)
            await super().start()


    application = Application()
    First().set_parent(application)
    Slow().set_parent(application)
    """

SLOW_PRIVILEGED_START = """
    import pathlib
    import time

    from dropins import Application, Service


    class SlowBind(Service):
        def privileged_start(self):
            pathlib.Path("binding").write_text("")
            time.sleep(2)


    application = Application()
    SlowBind().set_parent(application)
    """

STOP_LEAVES_A_THREAD = """
    import asyncio
    import time

    from dropins import Application, Service


    class Stuck(Service):
        async def stop(self):
            await super().stop()
            await asyncio.get_running_loop().run_in_executor(None, time.sleep, 30)


    application = Application()
    Stuck().set_parent(application)
    """


START_SWALLOWS_CANCEL = """
    import asyncio
    import logging

    from dropins import Application, Service

    log = logging.getLogger("app")


    class Stubborn(Service):
        async def start(self):
            log.info("stubborn starting")
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                log.info("cancellation swallowed")
                await asyncio.sleep(60)


    application = Application()
    Stubborn().set_parent(application)
    """


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.05)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_signal_during_start_cancels_it(tmp_path: Path, signum: signal.Signals,
                                             status: int) -> None:
    write_tree(tmp_path, {"app.py": SLOW_START})
    with Dropins("--pidfile", "run.pid", "--app", "app.py", cwd=tmp_path) as dropins:
        dropins.wait_for_line("slow starting")
        dropins.signal(signum)
        assert dropins.wait(timeout=15) == status
    assert "ready:" not in dropins.stderr
    assert "first stopped" in dropins.stderr  # what had started was stopped again
    assert dropins.stderr.splitlines()[-1] == (
        f"dropins: error: stopped by {signum.name} before the services had started")
    assert not (tmp_path / "run.pid").exists()
    assert_no_traceback(dropins.stderr)


def test_sigterm_during_start_is_a_failure_for_the_daemon_launcher(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app.py": SLOW_START})
    log, pidfile = tmp_path / "run.log", tmp_path / "run.pid"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "dropins", "--daemon", "--pidfile", "run.pid", "--logfile",
         "run.log", "--app", "app.py"], cwd=tmp_path, env=clean_env(None),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = None
    try:
        wait_for(lambda: "slow starting" in (log.read_text() if log.exists() else ""),
                 "'slow starting' in the log")
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
        _out, err = launcher.communicate(timeout=20)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.communicate(timeout=20)
        if pid is not None and not process_gone(pid, timeout=10):
            os.kill(pid, signal.SIGKILL)
    assert launcher.returncode == 1
    assert err == "dropins: error: stopped by SIGTERM before the services had started\n"
    assert process_gone(pid)
    text = log.read_text()
    assert "ready:" not in text and "first stopped" in text
    assert not pidfile.exists()


def test_sighup_during_privileged_start_does_not_kill(tmp_path: Path) -> None:
    """logrotate may signal the pidfile's PID while the services are still binding."""
    write_tree(tmp_path, {"app.py": SLOW_PRIVILEGED_START})
    with Dropins("--pidfile", "run.pid", "--app", "app.py", cwd=tmp_path) as dropins:
        wait_for(lambda: (tmp_path / "binding").exists() or dropins.process.poll() is not None,
                 "privileged_start")
        dropins.signal(signal.SIGHUP)
        dropins.ready()
        assert dropins.stop() == 0
    assert_no_traceback(dropins.stderr)


def test_stop_timeout_bounds_the_exit_despite_a_stuck_thread(tmp_path: Path) -> None:
    """A stop() stuck in a default-executor thread: asyncio would wait for the thread when
    closing, and the interpreter again at exit; the runner leaves after the timeout instead."""
    write_tree(tmp_path, {"app.py": STOP_LEAVES_A_THREAD})
    with Dropins("--shutdown-timeout", "1", "--pidfile", "run.pid", "--app", "app.py",
                 cwd=tmp_path) as dropins:
        dropins.ready()
        dropins.signal(signal.SIGTERM)
        assert dropins.wait(timeout=12) == 1  # 1 s + the 2 s grace, far below the 30 s sleep
    assert "services did not stop within 3 seconds; exiting anyway" in dropins.stderr
    assert not (tmp_path / "run.pid").exists()
    assert_no_traceback(dropins.stderr)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_signal_during_privileged_start_is_handled_as_during_start(
        tmp_path: Path, signum: signal.Signals, status: int) -> None:
    """The default SIGTERM action used to kill the process silently, leaving the pidfile."""
    write_tree(tmp_path, {"app.py": SLOW_PRIVILEGED_START})
    with Dropins("--pidfile", "run.pid", "--app", "app.py", cwd=tmp_path) as dropins:
        wait_for(lambda: (tmp_path / "binding").exists() or dropins.process.poll() is not None,
                 "privileged_start")
        dropins.signal(signum)
        assert dropins.wait(timeout=15) == status
    assert "ready:" not in dropins.stderr
    assert dropins.stderr.splitlines()[-1] == (
        f"dropins: error: stopped by {signum.name} before the services had started")
    assert not (tmp_path / "run.pid").exists()
    assert_no_traceback(dropins.stderr)


#: A service maker plugin, ``stuck``, whose service's stop() misbehaves as ``--how`` says.
STUCK_PLUGIN = {
    "dropins/plugins/stuck_plugin.py": """
        from dropins import ServiceMaker

        stuck = ServiceMaker("stuck", "stuck", "A service whose stop() never finishes")
        """,
    "stuck.py": """
        import asyncio
        import logging
        import time

        from dropins import Options as BaseOptions, Parameter, Service

        log = logging.getLogger("stuck")


        class Options(BaseOptions):
            how = Parameter(choices=["swallow-cancel", "await-in-finally", "block-the-loop"])


        class Stuck(Service):
            def __init__(self, how):
                super().__init__("stuck")
                self.how = how

            async def stop(self):
                await super().stop()
                log.info("stuck stopping: %s", self.how)
                if self.how == "block-the-loop":
                    time.sleep(60)
                elif self.how == "await-in-finally":
                    try:
                        await asyncio.sleep(60)
                    finally:
                        await asyncio.sleep(60)
                else:
                    for _ in range(60):
                        try:
                            await asyncio.sleep(1)
                        except asyncio.CancelledError:
                            log.info("cancellation swallowed")


        def make_service(options):
            return Stuck(options.how)
        """,
}


@pytest.mark.parametrize("how", ["swallow-cancel", "await-in-finally", "block-the-loop"])
def test_shutdown_timeout_holds_whatever_stop_does(tmp_path: Path, how: str) -> None:
    """asyncio.wait_for used to wait for a cancelled stop() to finish, and no loop timer can
    fire while stop() blocks the loop: exit 1 at the timeout + the 2 s grace, always."""
    write_tree(tmp_path, STUCK_PLUGIN)
    with Dropins("--shutdown-timeout", "1", "--pidfile", "run.pid", "stuck", "--how", how,
                 cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)}) as dropins:
        dropins.ready()
        dropins.signal(signal.SIGTERM)
        dropins.wait_for_line(f"stuck stopping: {how}")
        assert dropins.wait(timeout=15) == 1  # 3 s expected; the stop() itself lasts 60 s
    assert "services did not stop within 3 seconds; exiting anyway" in dropins.stderr
    assert not (tmp_path / "run.pid").exists()
    assert_no_traceback(dropins.stderr)


def test_second_sigint_exits_at_once_while_stop_blocks_the_loop(tmp_path: Path) -> None:
    write_tree(tmp_path, STUCK_PLUGIN)
    with Dropins("--shutdown-timeout", "60", "--pidfile", "run.pid", "stuck", "--how",
                 "block-the-loop", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)}) as dropins:
        dropins.ready()
        dropins.signal(signal.SIGINT)
        dropins.wait_for_line("stuck stopping: block-the-loop")
        dropins.signal(signal.SIGINT)
        assert dropins.wait(timeout=10) == 130  # not after the 60 s sleep or 62 s timeout
    assert "received SIGINT again; exiting without waiting for services" in dropins.stderr
    assert not (tmp_path / "run.pid").exists()
    assert_no_traceback(dropins.stderr)


def test_shutdown_timeout_holds_for_a_start_that_swallows_its_cancellation(
        tmp_path: Path) -> None:
    write_tree(tmp_path, {"app.py": START_SWALLOWS_CANCEL})
    with Dropins("--shutdown-timeout", "1", "--pidfile", "run.pid", "--app", "app.py",
                 cwd=tmp_path) as dropins:
        dropins.wait_for_line("stubborn starting")
        dropins.signal(signal.SIGTERM)
        dropins.wait_for_line("cancellation swallowed")
        assert dropins.wait(timeout=15) == 1
    assert "ready:" not in dropins.stderr
    assert "services did not stop within 3 seconds; exiting anyway" in dropins.stderr
    assert not (tmp_path / "run.pid").exists()
    assert_no_traceback(dropins.stderr)


#: stop() leaves a job running in the default executor, which closing the loop waits for; the
#: job says when stop() has long returned (the loop has ended by then).
STOP_LEAVES_AN_EXECUTOR_JOB = """
    import asyncio
    import logging
    import time

    from dropins import Application, Service


    def job():
        time.sleep(1)
        logging.getLogger("job").info("still sleeping after stop")
        time.sleep(60)


    class Leaves(Service):
        async def stop(self):
            await super().stop()
            asyncio.get_running_loop().run_in_executor(None, job)


    application = Application()
    Leaves().set_parent(application)
    """

#: stop() leaves a sleep running in the service's own executor, which only the interpreter's
#: shutdown waits for.
STOP_LEAVES_ITS_OWN_THREAD = """
    from concurrent.futures import ThreadPoolExecutor
    import time

    from dropins import Application, Service


    class Leaves(Service):
        async def stop(self):
            await super().stop()
            ThreadPoolExecutor(thread_name_prefix="left-behind").submit(time.sleep, 60)


    application = Application()
    Leaves().set_parent(application)
    """


def test_second_sigint_after_stop_returned_still_forces(tmp_path: Path) -> None:
    """The default handlers used to be back once stop() returned: the second SIGINT became a
    KeyboardInterrupt that waited for the executor's thread, after removing the pidfile."""
    write_tree(tmp_path, {"app.py": STOP_LEAVES_AN_EXECUTOR_JOB})
    with Dropins("--shutdown-timeout", "60", "--pidfile", "run.pid", "--app", "app.py",
                 cwd=tmp_path) as dropins:
        dropins.ready()
        dropins.signal(signal.SIGINT)
        dropins.wait_for_line("INFO job: still sleeping after stop$")
        assert (tmp_path / "run.pid").exists()  # still running: the pidfile stays
        dropins.signal(signal.SIGINT)
        assert dropins.wait(timeout=15) == 130  # not after the 60 s sleep
    assert "received SIGINT again; exiting without waiting for services" in dropins.stderr
    assert not (tmp_path / "run.pid").exists()
    assert_no_traceback(dropins.stderr)


def test_second_sigterm_after_stop_returned_does_not_kill(tmp_path: Path) -> None:
    """A second SIGTERM used to meet the default action: killed, silent, pidfile left."""
    write_tree(tmp_path, {"app.py": STOP_LEAVES_AN_EXECUTOR_JOB})
    with Dropins("--shutdown-timeout", "2", "--pidfile", "run.pid", "--app", "app.py",
                 cwd=tmp_path) as dropins:
        dropins.ready()
        dropins.signal(signal.SIGTERM)
        dropins.wait_for_line("INFO job: still sleeping after stop$")
        dropins.signal(signal.SIGTERM)
        dropins.wait_for_line("received SIGTERM again; already stopping")
        assert dropins.wait(timeout=20) == 1  # at 2 s + the 2 s grace, not after 60 s
    assert "services did not stop within 4 seconds; exiting anyway" in dropins.stderr
    assert not (tmp_path / "run.pid").exists()
    assert_no_traceback(dropins.stderr)


def test_sighup_after_stop_returned_does_not_kill(tmp_path: Path) -> None:
    """logrotate may signal while the process waits for a thread at exit: SIGHUP's default
    action used to be back by then, killing the process and leaving the pidfile."""
    write_tree(tmp_path, {"app.py": STOP_LEAVES_AN_EXECUTOR_JOB})
    with Dropins("--shutdown-timeout", "60", "--pidfile", "run.pid", "--app", "app.py",
                 cwd=tmp_path) as dropins:
        dropins.ready()
        dropins.signal(signal.SIGTERM)
        dropins.wait_for_line("INFO job: still sleeping after stop$")
        dropins.signal(signal.SIGHUP)
        dropins.signal(signal.SIGINT)  # the way out: forcing, not a death by SIGHUP
        assert dropins.wait(timeout=15) == 130
    assert not (tmp_path / "run.pid").exists()
    assert_no_traceback(dropins.stderr)


def test_shutdown_timeout_covers_threads_the_interpreter_waits_for(tmp_path: Path) -> None:
    """The deadline used to be disarmed before the interpreter joined the threads that stop()
    left behind: exit 0 after the whole sleep instead of 1 at the timeout + grace."""
    write_tree(tmp_path, {"app.py": STOP_LEAVES_ITS_OWN_THREAD})
    with Dropins("--shutdown-timeout", "1", "--pidfile", "run.pid", "--app", "app.py",
                 cwd=tmp_path) as dropins:
        dropins.ready()
        dropins.signal(signal.SIGTERM)
        assert dropins.wait(timeout=20) == 1  # 3 s expected; the thread sleeps 60 s
    assert re.search(r"ERROR dropins.runner: services did not stop within 3 seconds; exiting "
                     r"anyway \(threads still running: left-behind_0\)$", dropins.stderr,
                     re.MULTILINE), dropins.stderr
    assert not (tmp_path / "run.pid").exists()
    assert_no_traceback(dropins.stderr)


START_FAILS_LEAVING_A_THREAD = """
    import threading
    import time

    from dropins import Application, Service


    class Leaky(Service):
        async def start(self):
            threading.Thread(target=time.sleep, args=(60,), name="left-by-start").start()
            raise RuntimeError("boom")


    application = Application()
    Leaky().set_parent(application)
    """


def test_a_failed_start_that_leaves_a_thread_still_ends_at_the_deadline(tmp_path: Path) -> None:
    """Without a deadline, the interpreter's exit would wait 60 s for the thread, pidfile held."""
    write_tree(tmp_path, {"app.py": START_FAILS_LEAVING_A_THREAD})
    with Dropins("--shutdown-timeout", "1", "--pidfile", "run.pid", "--app", "app.py",
                 cwd=tmp_path) as dropins:
        assert dropins.wait(timeout=20) == 1
    assert "boom" in dropins.stderr
    assert "threads still running: left-by-start" in dropins.stderr
    assert not (tmp_path / "run.pid").exists()
    assert_no_traceback(dropins.stderr)


SLOW_PARSING_CLI = """
import sys
import time

import dropins.runner.arguments as arguments
from dropins.runner import cli

parse = arguments.parse_runner_options


def slow_parse(*args):
    print("parsing", flush=True)
    time.sleep(2)
    return parse(*args)


arguments.parse_runner_options = slow_parse
sys.exit(cli.main(sys.argv[1:]))
"""


def test_sighup_while_the_runner_parses_its_options_does_not_kill(tmp_path: Path) -> None:
    """SIGHUP is ignored from the CLI's first step, not only once the runner prepares (a
    logrotate run during a slow start-up killed the process with status 129)."""
    (tmp_path / "slow_cli.py").write_text(SLOW_PARSING_CLI)
    process = subprocess.Popen(
        [sys.executable, "slow_cli.py", "echo", "--listen", "tcp:0:interface=127.0.0.1"],
        cwd=tmp_path, env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == "parsing\n"
        process.send_signal(signal.SIGHUP)  # inside the (slowed) option parsing
        time.sleep(3)  # past the parsing: running, or dead of the SIGHUP
        assert process.poll() is None, process.communicate(timeout=5)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
