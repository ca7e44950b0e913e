"""The console over telnet and the unix socket, end to end, in one shared `dropins -c` process.

The application file runs an echo server beside the console, so the console can be seen
acting on a sibling service: stopping it from the console closes its port.  Every client is a
real socket on 127.0.0.1 (or the real unix socket); every wait is bounded.
"""

from __future__ import annotations

import os
import pwd
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _console_helpers import (
    DONT,
    ECHO,
    IAC,
    IP,
    NAWS,
    SB,
    SE,
    WILL,
    TelnetClient,
    refused,
    wait_until_refused,
)
from _runner_helpers import Dropins
from conftest import get_free_port


class Running:
    def __init__(self, process: Dropins, telnet: int, echo: int, sock: Path) -> None:
        self.process, self.telnet, self.echo, self.sock = process, telnet, echo, sock


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("console")
    folder.chmod(0o711)  # so that another user can reach the socket (see _connect_as_nobody)
    telnet, echo = get_free_port(), get_free_port()
    (folder / "app.toml").write_text(f"""
name = "shop"

[services.echo]
command = "echo"
listen = "tcp:{echo}:interface=127.0.0.1"

[services.console]
command = "console"
telnet = "tcp:{telnet}:interface=127.0.0.1"
socket = "console.sock"
auth = "memory:alice:secret"
""")
    with Dropins("-c", str(folder / "app.toml"), cwd=folder) as process:
        process.ready()
        yield Running(process, telnet, echo, folder / "console.sock")
        assert process.stop() == 0
    # What sessions printed went to them, never to the process's own output.
    assert "only here" not in process.stdout and "42" not in process.stdout
    assert "Traceback" not in process.stderr


def test_login_await_services_and_stop_a_service(console: Running) -> None:
    with TelnetClient(console.telnet) as client:
        client.read_until("login: ")
        client.send_raw(bytes((IAC, WILL, NAWS)))  # an option the server does not do
        client.send_line("alice")
        client.read_until("Password: ")
        assert (WILL, ECHO) in client.commands  # the client stops echoing the password
        client.send_line("secret")
        greeting = client.read_until(">>> ")
        assert "'shop'" in greeting and "await" in greeting
        assert (DONT, NAWS) in client.commands
        assert client.run("await asyncio.sleep(0)") == ""
        assert client.run("print('echo' in services, 'console/console/telnet' in services, "
                          "app.name)") == "True True shop\n"
        assert "'echo'" in client.run("services")
        assert "'echo' ConfigService running" in client.run("tree()")
        assert "console telnet#" in client.run("tasks()")
        assert not refused(console.echo)
        assert client.run("await services['echo'].stop()") == ""
        assert wait_until_refused(console.echo)
        assert "'echo' ConfigService stopped" in client.run("tree()")
    line = console.process.wait_for_line(r"console telnet#\d+: alice ran .*sleep\(0\)")
    assert "alice" in line.group(0)


def test_multiline_statements_errors_and_output_stay_in_the_session(console: Running) -> None:
    with TelnetClient(console.telnet) as client:
        client.login("alice", "secret")
        client.send_line("def double(x):")
        assert client.read_until("... ") == "... "
        client.send_line("    return 2 * x")
        client.read_until("... ")
        assert client.run("") == ""
        assert client.run("double(21)") == "42\n"
        assert client.run("_ + 1") == "43\n"
        error = client.run("1/0")
        assert error.startswith("Traceback") and "ZeroDivisionError: division by zero" in error
        assert "evaluate.py" not in error
        syntax = client.run("def (")
        assert "SyntaxError: invalid syntax" in syntax and "Traceback" not in syntax
        assert client.run("print('only here'); import sys; _ = sys.stderr.write('and here\\n')") \
            == "only here\nand here\n"
        assert client.run("exit").startswith("Use exit()")
        client.send_line("exit()")
        client.read_to_end()
    console.process.wait_for_line(r"console telnet#\d+: alice left")
    assert "only here" not in console.process.stderr.replace("ran \"print('only here')", "")
    assert "division by zero" not in console.process.stderr


def test_ctrl_c_interrupts_a_statement_and_sessions_have_their_own_names(
        console: Running) -> None:
    with TelnetClient(console.telnet) as first, TelnetClient(console.telnet) as second:
        first.login("alice", "secret")
        second.login("alice", "secret")
        assert first.run("mine = 1") == ""
        first.send_line("await asyncio.sleep(60)")
        time.sleep(0.2)
        assert "NameError" in second.run("mine")  # while the first session waits
        first.send_raw(bytes((IAC, IP)))  # what a telnet client sends for Ctrl-C
        assert first.read_until(">>> ") == "KeyboardInterrupt\r\n>>> "
        assert first.run("mine + 1") == "2\n"
        first.send_raw(b"never finished")
        first.send_raw(bytes((IAC, IP)))  # with no statement running: the line is dropped
        assert "KeyboardInterrupt" in first.read_until(">>> ")
        assert first.run("'\\xff' * 2") == "'ÿÿ'\n"  # IAC bytes are doubled both ways
        first.send_raw(bytes((IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE)) + b"1 +")
        first.send_raw(b" 1\r\n")
        assert first.read_until(">>> ").startswith("2")


def test_a_client_that_leaves_mid_statement_cancels_it(console: Running) -> None:
    with TelnetClient(console.telnet) as client:
        client.login("alice", "secret")
        client.send_line("try:")
        client.send_line("    await asyncio.sleep(60)")
        client.send_line("finally:")
        client.send_line("    app.left_mid_statement = True")
        client.send_line("")
        client.read_until("... ")
        time.sleep(0.2)
    with TelnetClient(console.telnet) as witness:
        witness.login("alice", "secret")
        deadline = time.monotonic() + 10
        while witness.run("getattr(app, 'left_mid_statement', False)") != "True\n":
            assert time.monotonic() < deadline, "the statement was not cancelled"
            time.sleep(0.1)


def test_wrong_passwords_are_denied_then_throttled(console: Running) -> None:
    with TelnetClient(console.telnet) as client:
        client.read_until("login: ")
        client.send_line("alice")
        client.read_until("Password: ")
        client.send_line("wrong")
        assert "Login incorrect" in client.read_until("login: ")
    # 4 connections of 3 guesses each, at once: the per-user bucket (10) runs out
    said: list[str] = []

    def guess() -> None:
        heard = ""
        with TelnetClient(console.telnet) as client:
            try:
                for _ in range(3):
                    heard += client.read_until("login: ")
                    client.send_line("mallory")
                    heard += client.read_until("Password: ")
                    client.send_line("guess")
                heard += client.read_to_end()
            except (AssertionError, OSError) as error:  # closed early: throttled
                heard += str(error)
        said.append(heard)

    threads = [threading.Thread(target=guess) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(said) == 4
    assert any("too many failed logins" in text for text in said), said
    console.process.wait_for_line(r"login of 'mallory' .* too many failed logins")


def test_unix_socket_is_private_and_refuses_other_uids(console: Running) -> None:
    assert stat.S_IMODE(os.stat(console.sock).st_mode) == 0o600
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(20)
        sock.connect(str(console.sock))
        sock.sendall(b"print(6 * 7)\n")
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while data := sock.recv(65536):
            received += data
    assert b"42\n" in received
    # Loosen the mode, as a mistake would: the peer check still refuses another user.
    os.chmod(console.sock, 0o666)
    try:
        heard = _connect_as_nobody(console.sock, b"print(1)\n")
    finally:
        os.chmod(console.sock, 0o600)
    assert heard.startswith(b"refused: this console is only for uid 0 and root"), heard
    console.process.wait_for_line(r"refused uid \d+ on the unix socket")


def _connect_as_nobody(path: Path, data: bytes) -> bytes:
    """What the console answers a client running as ``nobody`` that sends ``data``.

    A forked child changes to the socket's folder (the test's temporary folders are closed to
    other users, and a relative path is not checked above the current folder), becomes
    nobody, then connects: the uid that SO_PEERCRED reports is the one at connect time.
    """
    nobody = pwd.getpwnam("nobody")
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.close(reading)
            os.chdir(path.parent)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(20)
                sock.connect(path.name)
                sock.sendall(data)
                while chunk := sock.recv(65536):
                    os.write(writing, chunk)
            status = 0
        except BaseException as error:
            os.write(writing, f"child failed: {error!r}".encode())
        finally:
            os._exit(status)
    os.close(writing)
    heard = b""
    with os.fdopen(reading, "rb") as pipe:
        while chunk := pipe.read(65536):
            heard += chunk
    os.waitpid(pid, 0)
    return heard
