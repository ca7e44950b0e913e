"""``dropins finger`` end to end: the real CLI answering the Debian ``finger`` client.

``finger`` has no port option, so the server listens on port 79 of a loopback address of its
own (127.x.y.z; Linux routes all of 127.0.0.0/8 to lo), which needs root, as CI runs.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from _runner_helpers import Dropins, assert_no_traceback, connect, host_port, recv_all
from conftest import run_dropins

USERS = '''\
carol = "Plan of carol \\u001b[31mred\\u001b[0m"

[alice]
name = "Alice Liddell"
office = "Rabbit hole 1"
plan = "Down the rabbit hole.\\nThen tea."

[bob]
name = "Bob"
'''

needs_finger = pytest.mark.skipif(shutil.which("finger") is None,
                                  reason="finger is missing: apt-get install finger")
needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="finger only speaks to port 79, which needs root to bind")


def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.toml"
    path.write_text(USERS)
    return path


def query(address: str, line: bytes) -> str:
    with connect(address) as sock:
        sock.sendall(line)
        return recv_all(sock).decode()


def finger(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["finger", *args], capture_output=True, text=True, timeout=30)


@needs_finger
@needs_root
def test_the_finger_client(tmp_path: Path) -> None:
    host = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    homes = tmp_path / "homes"
    (homes / "dave").mkdir(parents=True)
    (homes / "dave" / ".plan").write_text("Dave's own plan.\n")
    (homes / "erin").mkdir()
    (homes / "erin" / ".plan").symlink_to(users_file(tmp_path))  # not followed
    with Dropins("finger", "--listen", f"tcp:79:interface={host}", "--users",
                 str(users_file(tmp_path)), "--plans", "--homes", str(homes)) as server:
        server.ready()
        alice = finger(f"alice@{host}")
        assert "Login: alice" in alice.stdout and "Name: Alice Liddell" in alice.stdout
        assert "Office: Rabbit hole 1" in alice.stdout
        assert "Down the rabbit hole.\nThen tea." in alice.stdout
        assert "Login: alice" in finger("-l", f"alice@{host}").stdout  # the /W form
        assert "Dave's own plan." in finger(f"dave@{host}").stdout
        assert "no such user" in finger(f"erin@{host}").stdout
        assert "no such user" in finger(f"nobody@{host}").stdout
        assert "does not list its users" in finger(f"@{host}").stdout
        assert server.stop() == 0
    assert_no_traceback(server.stderr)


def test_refusals_over_a_plain_socket(tmp_path: Path) -> None:
    with Dropins("finger", "--listen", "tcp:0:interface=127.0.0.1", "--users",
                 str(users_file(tmp_path)), "--list", "--timeout", "1") as server:
        address = server.ready()[0]
        assert "forwarding (user@host) is refused" in query(address, b"alice@example.org\r\n")
        assert "forwarding" in query(address, b"/W alice@a@b\r\n")
        listing = query(address, b"\r\n")
        assert "alice            Alice Liddell" in listing and "carol" in listing
        carol = query(address, b"carol\r\n")
        assert "\x1b" not in carol and "?[31mred" in carol  # no terminal escapes
        assert "no such user" in query(address, b"../../etc/passwd\r\n")
        assert "query too long" in query(address, b"a" * 600 + b"\r\n")
        with connect(address) as silent:  # a client that never sends is let go
            silent.settimeout(10)
            assert recv_all(silent) == b""
        assert server.stop() == 0
    assert_no_traceback(server.stderr)
    assert host_port(address)[0] == "127.0.0.1"


@pytest.mark.parametrize(("args", "message"), [
    ([], "give --users FILE, --plans, or both"),
    (["--users", "/nonexistent.toml"], "cannot read --users"),
    (["--users", "BAD"], "not valid TOML"),
    (["--plans", "--homes", "/nonexistent"], "is not a directory"),
    (["--users", "GOOD", "--homes", "/tmp"], "only used with --plans"),
    (["--users", "GOOD", "--timeout", "-1"], "invalid --timeout"),
])
def test_bad_options_exit_2_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.toml").write_text("alice = [")
    args = [str(tmp_path / "bad.toml") if arg == "BAD" else
            str(users_file(tmp_path)) if arg == "GOOD" else arg for arg in args]
    result = run_dropins("finger", *args, timeout=30)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert_no_traceback(result.stderr)
