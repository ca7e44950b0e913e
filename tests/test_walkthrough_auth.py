"""Walkthrough 3, "Authentication": a third-party service maker whose options use AuthOptions.

The plugin project lives in a temporary folder put on PYTHONPATH: a development plugin folder
``dropins/plugins/myserver_plugin.py`` (no ``__init__.py``) names the implementation module
``myserver_impl``, whose line protocol reads ``USER PASSWORD`` and answers ``OK USER`` or
``DENIED`` through a Portal over the ``--auth`` checkers.  Everything runs through the real
``python -m dropins`` command on 127.0.0.1, with every wait bounded.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import clean_env, run_dropins, write_tree

PLUGIN_PROJECT = {
    "dropins/plugins/myserver_plugin.py": '''
        from dropins.service.maker import ServiceMaker

        myserver = ServiceMaker("myserver", "myserver_impl",
                                "Check user names and passwords, one per line")
    ''',
    "myserver_impl.py": '''
        """A line protocol: the client sends 'USER PASSWORD', the server answers OK or DENIED."""

        from dropins.cred import (
            AuthOptions, Portal, UnauthorizedLogin, UsernamePassword, UsernameRealm)
        from dropins.options import Parameter
        from dropins.service import StreamServerService


        class Options(AuthOptions):
            description = "Answer OK USER or DENIED to each 'USER PASSWORD' line."
            listen = Parameter(default="tcp:8023", metavar="ENDPOINT",
                               help="where to listen")


        def make_service(options):
            portal = Portal(UsernameRealm(), options["auth"])

            async def handle(reader, writer):
                while line := await reader.readline():
                    user, _, password = line.decode().rstrip("\\r\\n").partition(" ")
                    try:
                        _, avatar, logout = await portal.login(
                            UsernamePassword(user, password), None)
                    except UnauthorizedLogin:
                        writer.write(b"DENIED\\n")
                    else:
                        writer.write(f"OK {avatar}\\n".encode())
                        logout()
                    await writer.drain()

            return StreamServerService(options["listen"], handle)
    ''',
}

READY = re.compile(r"ready: .*listening on tcp:127\.0\.0\.1:(\d+)")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "project", PLUGIN_PROJECT)


def project_env(project: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(project)}


class Server:
    """A running ``python -m dropins myserver ...`` whose stderr is collected by a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.port: int | None = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            match = READY.search(line)
            if match and self.port is None:
                self.port = int(match.group(1))
                self._ready.set()
        self._ready.set()  # the process ended: stop waiting

    def wait_ready(self, timeout: float = 30) -> int:
        self._ready.wait(timeout)
        if self.port is None:
            raise AssertionError(f"no ready line within {timeout}s:\n{self.log}")
        return self.port

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise AssertionError(f"server did not stop on SIGTERM:\n{self.log}") from None
        self._reader.join(5)
        return status


@contextlib.contextmanager
def running(project: Path, *args: str) -> Iterator[Server]:
    command = [sys.executable, "-m", "dropins", "myserver",
               "--listen", "tcp:0:interface=127.0.0.1", *args]
    process = subprocess.Popen(command, env=clean_env(project_env(project)), text=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    server = Server(process)
    try:
        yield server
    finally:
        if process.poll() is None:
            server.stop()


def ask(port: int, *lines: str, timeout: float = 10) -> list[str]:
    """Send each ``USER PASSWORD`` line on one connection; return the answers."""
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        stream = connection.makefile("rwb")
        for line in lines:
            stream.write(line.encode() + b"\n")
            stream.flush()
            answers.append(stream.readline().decode().rstrip("\n"))
    return answers


def passwd(path: Path, user: str, password: str) -> None:
    result = run_dropins("passwd", str(path), user, input=password + "\n", timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(os.name != "posix", reason="stops the server with SIGTERM")
def test_memory_auth_accepts_alice_and_refuses_others(project):
    with running(project, "--auth", "memory:alice:secret") as server:
        port = server.wait_ready()
        assert ask(port, "alice secret", "alice wrong", "mallory secret", "alice secret") == [
            "OK alice", "DENIED", "DENIED", "OK alice"]
        started = time.monotonic()
        assert ask(port, "alice Secret") == ["DENIED"]
        assert time.monotonic() - started >= 0.4, "a failed login is answered after a delay"
        assert server.stop() == 0
    log = server.log
    assert "process list" in log and "dropins passwd" in log, "the memory: warning is logged"
    assert "secret" not in log.lower().replace("secrets", ""), "a password reached the log"


@pytest.mark.skipif(os.name != "posix", reason="stops the server with SIGTERM")
def test_password_file_edited_while_the_service_runs(project, tmp_path):
    users = tmp_path / "users.txt"
    passwd(users, "alice", "first pw")
    with running(project, "--auth", f"file:{users}") as server:
        port = server.wait_ready()
        assert ask(port, "alice first pw", "bob second pw") == ["OK alice", "DENIED"]
        passwd(users, "bob", "second pw")
        passwd(users, "alice", "changed pw")
        assert ask(port, "bob second pw", "alice first pw", "alice changed pw") == [
            "OK bob", "DENIED", "OK alice"]
        passwd(users, "bob", "x")
        run_dropins("passwd", str(users), "bob", "--delete", timeout=60)
        assert ask(port, "bob x") == ["DENIED"]
        assert server.stop() == 0
    on_disk = users.read_text()
    for password in ("first pw", "second pw", "changed pw"):
        assert password not in on_disk and password not in server.log


def test_help_auth_and_help_auth_type_through_the_command(project):
    env = project_env(project)
    listing = run_dropins("myserver", "--help-auth", env=env)
    assert listing.returncode == 0, listing.stderr
    for usage in ("memory:USER:PASS", "file:PATH", "htpasswd:PATH", "anonymous"):
        assert usage in listing.stdout
    details = run_dropins("myserver", "--help-auth-type", "memory", env=env)
    assert details.returncode == 0, details.stderr
    assert details.stdout.startswith("--auth memory:USER:PASS[:USER2:PASS2...]")
    assert "dropins passwd" in details.stdout
    usage = run_dropins("myserver", "--help", env=env)
    assert usage.returncode == 0 and "--auth TYPE:ARGS" in usage.stdout


@pytest.mark.parametrize("auth, expected", [
    ("memory:alice", "auth type 'memory' expects 'memory:USER:PASS[:USER2:PASS2...]'"),
    ("memroy:alice:secret", "unknown auth type 'memroy' (did you mean 'memory'?)"),
    ("file:/nonexistent/users.txt", "file /nonexistent/users.txt: no such file"),
    ("anonymous:x", "auth type 'anonymous' expects 'anonymous': it takes no argument"),
])
def test_bad_auth_is_one_line_exit_2(project, auth, expected):
    result = run_dropins("myserver", "--auth", auth, env=project_env(project))
    assert result.returncode == 2
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("(see ") + result.stderr.count("(create it") == 1, "one hint"
    assert "secret" not in result.stderr


def test_help_auth_type_unknown_is_exit_2(project):
    result = run_dropins("myserver", "--help-auth-type", "kerberos", env=project_env(project))
    assert result.returncode == 2
    assert "unknown auth type 'kerberos'" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.skipif(os.name != "posix", reason="stops the server with SIGTERM")
def test_warnings_while_parsing_options_go_to_the_configured_log(project, tmp_path):
    """The --auth warnings are emitted while the command's options are parsed, before the
    service exists: they must follow --logfile and --log-format json like every other line."""
    import json

    from _runner_helpers import Dropins

    weak = tmp_path / "weak.htpasswd"
    weak.write_text("carol:$apr1$abcdefgh$0123456789012345678901\n")  # MD5: skipped, warned
    log = tmp_path / "run.log"
    with Dropins("--log-format", "json", "--logfile", str(log), "myserver",
                 "--listen", "tcp:0:interface=127.0.0.1", "--auth", "memory:alice:secret",
                 "--auth", f"htpasswd:{weak}", env=project_env(project)) as server:
        deadline = time.monotonic() + 30
        while "ready: myserver" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline and server.process.poll() is None, server.stderr
            time.sleep(0.05)
        assert server.stop() == 0
    assert server.stderr == "", "a line bypassed the log file"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    warnings = [entry for entry in entries if entry["level"] == "warning"]
    assert [entry["logger"] for entry in warnings] == ["dropins.cred", "dropins.cred"]
    assert "process list" in warnings[0]["message"]
    assert "user 'carol' ignored" in warnings[1]["message"]
    assert entries.index(warnings[1]) < [e["message"][:6] for e in entries].index("ready:")
    assert "secret" not in log.read_text()
