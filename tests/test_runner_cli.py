"""The `dropins` command end to end: help, errors, serving, signals and logs (real processes)."""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from _runner_helpers import Dropins, assert_no_traceback, connect, recv_all, recv_exactly
from conftest import get_free_port, run_dropins, write_tree

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

LOOPBACK_ANY = "tcp:0:interface=127.0.0.1"


def test_help_lists_commands_and_runner_options() -> None:
    result = run_dropins("--help")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("echo", "discard", "chargen", "daytime", "portforward", "stop", "plugins"):
        assert f"\n  {name} " in out
    assert "Echo back what clients send" in out
    for option in ("--daemon", "--pidfile", "--logfile", "--log-format", "--syslog", "--rundir",
                   "--umask", "--uid", "--gid", "--loop", "--shutdown-timeout", "--debug",
                   "--app"):
        assert option in out
    assert_no_traceback(result.stderr)


def test_help_path_imports_nothing_heavy() -> None:
    run_dropins("--help")  # warm the plugin cache
    result = run_dropins("--help", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "dropins.runner.arguments" in imported  # the measurement works
    for heavy in ("asyncio", "zope.interface", "importlib.metadata", "platformdirs",
                  "dropins.servers.inetd"):
        assert heavy not in imported, f"{heavy} imported by 'dropins --help'"


def test_version() -> None:
    import dropins

    result = run_dropins("--version")
    assert result.returncode == 0 and result.stdout == f"dropins {dropins.__version__}\n"


def test_command_help_shows_plugin_options() -> None:
    result = run_dropins("echo", "--help")
    assert result.returncode == 0
    assert "usage: dropins echo" in result.stdout and "--listen ENDPOINT" in result.stdout


@pytest.mark.parametrize(("args", "message", "status"), [
    (["ehco"], "dropins: error: unknown command 'ehco'; did you mean 'echo'?", 2),
    (["chargn"], "dropins: error: unknown command 'chargn'; did you mean 'chargen'?", 2),
    (["--bogus", "echo"], "dropins: error: unrecognized arguments: --bogus", 2),
    (["echo", "--bogus"], "dropins echo: error: unrecognized arguments: --bogus", 2),
    (["echo", "--listen", "tcp:http"], "dropins: error: echo: invalid endpoint 'tcp:http'", 2),
    (["portforward", "--to", "nowhere"], "dropins portforward: error: argument -t/--to: "
                                         "invalid --to 'nowhere'", 2),
    ([], "dropins: error: no command given", 2),
    (["--app", "missing.py"], "dropins: error: --app missing.py: no such file", 2),
    (["--rundir", "/nonexistent/dir", "echo"], "dropins: error: cannot change to --rundir", 2),
])
def test_bad_input_is_one_line(args: list[str], message: str, status: int) -> None:
    result = run_dropins(*args, timeout=30)
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr


FOREGROUND = "not needed, dropins runs in the foreground unless --daemon is given"


@pytest.mark.parametrize(("args", "hint"), [
    (["-n", "web", "--path", "."], f"twistd's -n: {FOREGROUND}"),
    (["--nodaemon", "echo"], f"twistd's --nodaemon: {FOREGROUND}"),
    (["-y", "app.tac"], "twistd's -y: use --app FILE"),
    (["--python=app.py"], "twistd's --python: use --app FILE"),
    (["-ny", "app.tac"], f"twistd's -n: {FOREGROUND}; twistd's -y: use --app FILE"),
    (["-f", "app.tap"], "twistd's -f: dropins loads no pickled application; save the command "
                        "as a text file with --save FILE.toml and run it with -c FILE.toml (or "
                        "use --app FILE.py)"),
])
def test_twistd_options_get_the_dropins_equivalent(args: list[str], hint: str) -> None:
    result = run_dropins(*args, timeout=30)
    assert result.returncode == 2
    assert result.stderr == f"dropins: error: {hint} (see 'dropins --help')\n"


def test_address_in_use_is_one_line_exit_1() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        endpoint = f"tcp:{port}:interface=127.0.0.1"
        result = run_dropins("echo", "--listen", endpoint, timeout=30)
        assert result.returncode == 1
        assert result.stderr == (f"dropins: error: cannot listen on {endpoint}: "
                                 "address already in use\n")
        debug = run_dropins("--debug", "echo", "--listen", endpoint, timeout=30)
    assert debug.returncode == 1 and "Traceback" in debug.stderr  # --debug shows it


def test_broken_plugin_is_reported_not_hidden(tmp_path: Path) -> None:
    write_tree(tmp_path, {"dropins/plugins/myproject_plugin.py": """
        from dropins import ServiceMaker
        import module_that_does_not_exist
        myproject = ServiceMaker("myproject", "x", "never seen")
        """})
    env = {"PYTHONPATH": str(tmp_path)}
    result = run_dropins("myproject", env=env)
    assert result.returncode == 1
    assert result.stderr == (  # one line, even on this first sight of the broken module
        "dropins: error: command 'myproject' is unavailable: its plugin module is broken: "
        f"{tmp_path / 'dropins/plugins/myproject_plugin.py'}:2: ModuleNotFoundError: "
        "No module named 'module_that_does_not_exist'\n")
    listing = run_dropins("--help", env=env)
    assert listing.returncode == 0
    assert "broken plugin modules" in listing.stdout and "myproject_plugin" in listing.stdout
    assert "\n  echo " in listing.stdout  # the others are still there
    assert_no_traceback(result.stderr, listing.stderr)


def test_echo_serves_until_sigterm_then_exits_0() -> None:
    with Dropins("echo", "--listen", LOOPBACK_ANY, "--listen", LOOPBACK_ANY) as dropins:
        addresses = dropins.ready()
        assert len(addresses) == 2 and all(a.startswith("tcp:127.0.0.1:") for a in addresses)
        assert dropins.wait_for_line(r"ready: echo listening on tcp:127\.0\.0\.1:\d+, ")
        for address in addresses:
            with connect(address) as sock:
                sock.sendall(b"hello\n")
                assert recv_exactly(sock, 6) == b"hello\n"
        assert dropins.stop() == 0
    assert "received SIGTERM; stopping" in dropins.stderr and "stopped" in dropins.stderr
    assert_no_traceback(dropins.stderr)


def refused_soon(address: str, timeout: float = 10) -> bool:
    """Whether connecting to ``address`` is refused within ``timeout`` (the listener closed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connect(address).close()
        except ConnectionRefusedError:
            return True
        except ConnectionResetError:  # accepted by the closing listener's backlog, then reset
            pass
        time.sleep(0.05)
    return False


def test_sigterm_lets_an_inflight_connection_finish() -> None:
    with Dropins("--shutdown-timeout", "20", "echo", "--listen", LOOPBACK_ANY) as dropins:
        (address,) = dropins.ready()
        with connect(address) as sock:
            sock.sendall(b"first\n")
            assert recv_exactly(sock, 6) == b"first\n"
            dropins.signal(signal.SIGTERM)
            dropins.wait_for_line("received SIGTERM")
            assert refused_soon(address)  # no new connections ...
            sock.sendall(b"second\n")  # ... but the open one is still served
            assert recv_exactly(sock, 7) == b"second\n"
            assert dropins.process.poll() is None
            sock.shutdown(socket.SHUT_WR)
            assert recv_all(sock) == b""
        assert dropins.wait() == 0


def test_shutdown_timeout_bounds_the_stop() -> None:
    with Dropins("--shutdown-timeout", "0.5", "echo", "--listen", LOOPBACK_ANY) as dropins:
        (address,) = dropins.ready()
        with connect(address) as sock:
            sock.sendall(b"x")
            assert recv_exactly(sock, 1) == b"x"
            started = time.monotonic()
            dropins.signal(signal.SIGTERM)
            assert dropins.wait() == 0  # the idle client is cut off after 0.5 s
            assert time.monotonic() - started < 10
            assert recv_all(sock) == b""


def test_one_sigint_stops_gracefully_with_status_0() -> None:
    with Dropins("echo", "--listen", LOOPBACK_ANY) as dropins:
        dropins.ready()
        dropins.signal(signal.SIGINT)
        assert dropins.wait() == 0
    assert "received SIGINT; stopping" in dropins.stderr
    assert dropins.stderr.rstrip().endswith("stopped")
    assert_no_traceback(dropins.stderr)


def test_second_sigint_forces_exit() -> None:
    with Dropins("--shutdown-timeout", "60", "echo", "--listen", LOOPBACK_ANY) as dropins:
        (address,) = dropins.ready()
        with connect(address) as sock:
            sock.sendall(b"x")
            assert recv_exactly(sock, 1) == b"x"
            dropins.signal(signal.SIGINT)
            dropins.wait_for_line("received SIGINT; stopping")
            dropins.signal(signal.SIGINT)
            assert dropins.wait() == 130
    assert "exiting without waiting" in dropins.stderr
    assert_no_traceback(dropins.stderr)


def test_sighup_reopens_the_log_file_after_rename(tmp_path: Path) -> None:
    log = tmp_path / "dropins.log"
    with Dropins("--logfile", str(log), "echo", "--listen", LOOPBACK_ANY) as dropins:
        deadline = time.monotonic() + 20
        while "ready: echo" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline and dropins.process.poll() is None
            time.sleep(0.05)
        log.rename(tmp_path / "dropins.log.1")
        dropins.signal(signal.SIGHUP)
        while not log.exists():
            assert time.monotonic() < deadline and dropins.process.poll() is None
            time.sleep(0.05)
        assert dropins.stop() == 0
    assert dropins.stderr == ""  # everything went to the log file
    rotated, current = (tmp_path / "dropins.log.1").read_text(), log.read_text()
    assert "ready: echo" in rotated and "stopped" not in rotated
    assert "log file reopened" in current and "received SIGTERM" in current


def test_json_log_lines_parse(tmp_path: Path) -> None:
    with Dropins("--log-format", "json", "--logfile", "-", "echo",
                 "--listen", LOOPBACK_ANY) as dropins:
        deadline = time.monotonic() + 20
        while "ready: echo" not in "".join(dropins._stdout_chunks):
            assert time.monotonic() < deadline and dropins.process.poll() is None
            time.sleep(0.05)
        assert dropins.stop() == 0
    entries = [json.loads(line) for line in dropins.stdout.splitlines()]
    assert [entry["message"].split(":")[0] for entry in entries] == [
        "ready", "received SIGTERM; stopping", "stopped"]
    assert all(entry["logger"] == "dropins.runner" and entry["level"] == "info"
               for entry in entries)


def test_app_file_runs_its_application(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app.py": """
        from dropins import Application, StreamServerService
        from dropins.servers.inetd import Echo

        application = Application(shutdown_timeout=3)
        StreamServerService("tcp:0:interface=127.0.0.1", Echo).set_parent(application)
        """, "empty.py": "x = 1\n", "crash.py": "x = 1\nraise RuntimeError('no database')\n"})
    with Dropins("--app", "app.py", cwd=tmp_path) as dropins:
        (address,) = dropins.ready()
        assert dropins.wait_for_line(r"ready: app\.py listening on tcp:127\.0\.0\.1:")
        with connect(address) as sock:
            sock.sendall(b"app\n")
            assert recv_exactly(sock, 4) == b"app\n"
        assert dropins.stop() == 0
    empty = run_dropins("--app", "empty.py", cwd=tmp_path)
    assert empty.returncode == 1
    assert empty.stderr.startswith("dropins: error: empty.py defines no 'application'")
    crash = run_dropins("--app", "crash.py", cwd=tmp_path)
    assert crash.returncode == 1
    assert crash.stderr == "dropins: error: crash.py:2: RuntimeError: no database\n"
    both = run_dropins("--app", "app.py", "echo", cwd=tmp_path)
    assert both.returncode == 2 and "either --app FILE.py or a command" in both.stderr


@pytest.mark.parametrize("command", ["discard", "chargen", "daytime"])
def test_classic_services_over_the_cli(command: str) -> None:
    with Dropins("--shutdown-timeout", "2", command, "--listen", LOOPBACK_ANY) as dropins:
        (address,) = dropins.ready()
        with connect(address) as sock:
            if command == "discard":
                sock.sendall(b"gone\n" * 100)
                sock.shutdown(socket.SHUT_WR)
                assert recv_all(sock) == b""
            elif command == "chargen":
                assert recv_exactly(sock, 74 * 3).count(b"\r\n") == 3
            else:
                assert recv_all(sock).endswith(b"\r\n")
            # chargen's open stream must not hold up the stop (it is ended on shutdown)
            assert dropins.stop() == 0


def test_portforward_over_the_cli() -> None:
    with Dropins("echo", "--listen", LOOPBACK_ANY) as upstream:
        (target,) = upstream.ready()
        to = target.split(":", 1)[1]
        with Dropins("portforward", "--listen", LOOPBACK_ANY, "--to", to) as relay:
            (address,) = relay.ready()
            with connect(address) as sock:
                sock.sendall(b"through the relay\n")
                sock.shutdown(socket.SHUT_WR)
                assert recv_all(sock) == b"through the relay\n"
            assert relay.stop() == 0
        assert upstream.stop() == 0


def test_uvloop_when_available() -> None:
    pytest.importorskip("uvloop")
    with Dropins("--loop", "uvloop", "echo", "--listen", LOOPBACK_ANY) as dropins:
        (address,) = dropins.ready()
        with connect(address) as sock:
            sock.sendall(b"uv\n")
            assert recv_exactly(sock, 3) == b"uv\n"
        assert dropins.stop() == 0


def test_port_number_in_ready_line_is_the_real_one() -> None:
    port = get_free_port()
    with Dropins("daytime", "--listen", f"tcp:{port}:interface=127.0.0.1") as dropins:
        assert dropins.ready() == [f"tcp:127.0.0.1:{port}"]
        assert dropins.stop() == 0


APP_WITH_SHUTDOWN_TIMEOUT = """
    import logging

    from dropins import Application, Service, StreamServerService
    from dropins.servers.inetd import Echo


    class Report(Service):
        async def start(self):
            await super().start()
            logging.getLogger("app").info("shutdown timeout %g", self.parent.shutdown_timeout)


    application = Application(shutdown_timeout=1)
    Report().set_parent(application)
    StreamServerService("tcp:0:interface=127.0.0.1", Echo).set_parent(application)
    """


def test_app_file_shutdown_timeout_is_kept_unless_the_option_is_given(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app.py": APP_WITH_SHUTDOWN_TIMEOUT})
    with Dropins("--app", "app.py", cwd=tmp_path) as dropins:
        (address,) = dropins.ready()
        dropins.wait_for_line("shutdown timeout 1$")
        with connect(address) as sock:  # an idle client is cut off after the file's 1 s, not 10
            sock.sendall(b"x")
            assert recv_exactly(sock, 1) == b"x"
            dropins.signal(signal.SIGTERM)
            assert dropins.wait(timeout=8) == 0
            assert recv_all(sock) == b""
    with Dropins("--shutdown-timeout", "3", "--app", "app.py", cwd=tmp_path) as dropins:
        dropins.ready()
        dropins.wait_for_line("shutdown timeout 3$")
        assert dropins.stop() == 0


@pytest.mark.parametrize("args", [
    ["--help"], ["echo", "--help"], ["stop", "--help"], ["passwd", "--help"],
    ["plugins", "--help"], ["plugins", "list", "--help"], ["plugins", "why", "--help"],
    ["plugins", "check", "--help"], ["plugins", "cache", "--help"],
])
def test_help_is_plain_text_wrapped_to_the_terminal(args: list[str]) -> None:
    result = run_dropins(*args, env={"COLUMNS": "72"})
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "``" not in result.stdout, "reStructuredText quoting in --help"
    too_long = [line for line in result.stdout.splitlines() if len(line) > 72]
    assert too_long == []


def test_help_documents_the_second_sigint() -> None:
    out = run_dropins("--help", env={"COLUMNS": "200"}).stdout
    assert "A second SIGINT exits at once with status 130." in out
