"""``dropins passwd FILE USER``, run as a real command."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from _cred_helpers import avatar_id
from conftest import run_dropins
from dropins.cred import verify_password
from dropins.cred.factories import FileCheckerFactory

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes and ttys are POSIX")


def passwd(*args: str, password: str | None = None):
    return run_dropins("passwd", *args, input=None if password is None else password + "\n",
                       timeout=60)


def entries(path) -> dict[str, str]:
    return dict(line.split(":", 1) for line in path.read_text().splitlines()
                if line and not line.startswith("#"))


@posix_only
def test_creates_a_0600_file_with_an_argon2_hash_only(tmp_path):
    path = tmp_path / "users.txt"
    result = passwd(str(path), "alice", password="correct horse")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"added user 'alice' in {path} (argon2)\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = entries(path)["alice"]
    assert stored.startswith("$argon2id$")
    assert verify_password("correct horse", stored)
    assert b"correct horse" not in path.read_bytes()
    assert "correct horse" not in result.stdout + result.stderr
    assert avatar_id(FileCheckerFactory().make_checker(str(path)), "alice",
                     "correct horse") == "alice"


@posix_only
def test_updates_in_place_keeping_other_lines_and_the_mode(tmp_path):
    path = tmp_path / "users.txt"
    original = "# team\nbob:$2b$04$" + "a" * 53 + "\nalice:$scrypt$old\n\ncarol:plainpw\n"
    path.write_text(original)
    path.chmod(0o640)
    result = passwd(str(path), "alice", "--scheme", "scrypt", password="n3w")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"updated user 'alice' in {path} (scrypt)\n"
    lines = path.read_text().splitlines()
    assert lines[0] == "# team" and lines[1].startswith("bob:$2b$04$")
    assert lines[2].startswith("alice:$scrypt$ln=16,r=8,p=1$")
    assert lines[3:] == ["", "carol:plainpw"]
    assert verify_password("n3w", lines[2].split(":", 1)[1])
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    # The operator is told about the remaining plain password, by user name only.
    assert "plain-text passwords for carol" in result.stderr and "plainpw" not in result.stderr
    left = [name for name in os.listdir(tmp_path) if name not in ("users.txt", "users.txt.lock")]
    assert not left, "temp file left"


def test_appends_new_users_and_deletes(tmp_path):
    path = tmp_path / "users.txt"
    path.write_text("alice:x")  # no final newline
    assert passwd(str(path), "bob", "--scheme", "bcrypt", password="pw").returncode == 0
    assert list(entries(path)) == ["alice", "bob"]
    assert entries(path)["bob"].startswith("$2b$")
    result = passwd(str(path), "alice", "--delete")
    assert result.returncode == 0 and result.stdout == f"removed user 'alice' from {path}\n"
    assert list(entries(path)) == ["bob"]
    result = passwd(str(path), "alice", "--delete")
    assert result.returncode == 1
    assert result.stderr == (f"dropins passwd: error: user 'alice' is not in {path};"
                             " nothing changed\n")


@pytest.mark.parametrize("password", ["", None])
def test_empty_password_is_refused_and_nothing_written(tmp_path, password):
    path = tmp_path / "users.txt"
    result = run_dropins("passwd", str(path), "alice", input=password, timeout=60)
    assert result.returncode == 1
    assert result.stderr == "dropins passwd: error: empty password refused; nothing changed\n"
    assert not path.exists()


@pytest.mark.parametrize("user, problem", [
    ("al:ice", "cannot contain ':'"),
    (" alice", "spaces at its ends"),
    ("#alice", "cannot start with '#'"),
    ("al\tice", "control characters"),
])
def test_bad_user_names_are_usage_errors(tmp_path, user, problem):
    result = passwd(str(tmp_path / "users.txt"), user, password="pw")
    assert result.returncode == 2
    assert problem in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "users.txt").exists()


def test_usage_errors(tmp_path):
    result = passwd(str(tmp_path / "users.txt"))
    assert result.returncode == 2
    assert "required: USER" in result.stderr and result.stderr.count("\n") == 1
    result = passwd(str(tmp_path / "users.txt"), "alice", "--scheme", "md5", password="pw")
    assert result.returncode == 2 and "invalid choice: 'md5'" in result.stderr


def test_unusable_files_are_reported_before_asking(tmp_path):
    result = passwd(str(tmp_path), "alice", password="pw")
    assert result.returncode == 1 and "is a directory" in result.stderr
    result = passwd(str(tmp_path / "missing" / "users.txt"), "alice", password="pw")
    assert result.returncode == 1 and "does not exist" in result.stderr
    binary = tmp_path / "users.txt"
    binary.write_bytes(b"alice:x\n\xff\xfe\n")
    result = passwd(str(binary), "bob", password="pw")
    assert result.returncode == 1 and "line 2: not UTF-8 text" in result.stderr
    assert binary.read_bytes() == b"alice:x\n\xff\xfe\n"


@posix_only
@posix_only
@pytest.mark.parametrize("linked", ["users.txt", "users.txt.lock"])
def test_refuses_a_symlinked_password_or_lock_file(tmp_path, linked):
    """Root running dropins passwd must not write where a link planted by the service's user
    points (here a stand-in for /etc/shadow)."""
    precious = tmp_path / "shadow"
    precious.write_text("root:precious\n")
    (tmp_path / linked).symlink_to(precious)
    result = passwd(str(tmp_path / "users.txt"), "alice", "--scheme", "bcrypt", password="pw")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{tmp_path / linked} is a symbolic link; refusing to write through it" in result.stderr
    assert precious.read_text() == "root:precious\n"
    assert (tmp_path / linked).is_symlink()


@posix_only
def test_refuses_a_folder_of_the_path_that_is_a_symbolic_link(tmp_path):
    """The service's user owns ``owned`` and made ``data`` a link to a folder root owns (here
    a stand-in for /etc): before the fix the new file and os.replace landed there."""
    precious = tmp_path / "etc"
    precious.mkdir()
    (tmp_path / "owned").mkdir()
    (tmp_path / "owned" / "data").symlink_to(precious)
    result = passwd(str(tmp_path / "owned" / "data" / "users.txt"), "alice", "--scheme",
                    "bcrypt", password="pw")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert (f"folder {tmp_path / 'owned' / 'data'} is a symbolic link; refusing to write"
            f" through it: give the real path, in {precious}") in result.stderr
    assert list(precious.iterdir()) == []
    # The real path works.
    assert passwd(str(precious / "users.txt"), "alice", "--scheme", "bcrypt",
                  password="pw").returncode == 0


@posix_only
def test_a_folder_swapped_for_a_link_after_it_was_opened_is_not_followed(tmp_path):
    """Every step works relative to the folder opened at the start (dir_fd), so replacing that
    folder by a link in the middle of a change does not redirect the write."""
    from dropins.cred.passwd_files import Folder, locked, write_atomically

    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir()
    elsewhere.mkdir()
    with Folder(str(data)) as folder:
        data.rename(tmp_path / "moved")
        data.symlink_to(elsewhere)
        with locked(folder, "users.txt"):
            write_atomically(folder, "users.txt", b"alice:x\n", 0o600)
    assert sorted(path.name for path in (tmp_path / "moved").iterdir()) == [
        "users.txt", "users.txt.lock"]
    assert list(elsewhere.iterdir()) == []


@posix_only
def test_concurrent_changes_are_all_kept(tmp_path):
    """Ten concurrent adds keep ten users; a delete racing an add keeps both changes."""
    import subprocess

    from conftest import clean_env

    path = tmp_path / "users.txt"
    passwd(str(path), "doomed", "--scheme", "bcrypt", password="pw")

    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "dropins", "passwd", str(path), *args],
                                env=clean_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    runs = [start(f"user{index}", "--scheme", "bcrypt") for index in range(10)]
    runs.append(start("doomed", "--delete"))
    for run in runs:
        _, err = run.communicate("pw\n", timeout=120)
        assert run.returncode == 0, err
    assert sorted(entries(path)) == sorted(f"user{index}" for index in range(10))


@posix_only
def test_prompts_twice_without_echo_on_a_terminal(tmp_path):
    """On a terminal the password is asked twice via getpass; a mismatch changes nothing."""
    import pty
    import select
    import time

    from conftest import clean_env

    def converse(path, answers):
        """Run the command on a new pseudo-terminal (its controlling tty), typing answers."""
        argv = [sys.executable, "-m", "dropins", "passwd", str(path), "alice", "--scheme",
                "bcrypt"]
        env = clean_env()
        pid, leader = pty.fork()
        if pid == 0:  # the child: pty.fork made the terminal its controlling tty
            try:
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        output, pending = b"", list(answers)
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([leader], [], [], 0.2)
                if not ready:
                    continue
                try:
                    chunk = os.read(leader, 1024)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
                if pending and output.rstrip().endswith(b":"):
                    os.write(leader, pending.pop(0).encode() + b"\n")
                    output += b"<typed>"
        finally:
            os.close(leader)
            reaped, status = os.waitpid(pid, os.WNOHANG)
            while reaped == 0 and time.monotonic() < deadline + 10:
                time.sleep(0.05)
                reaped, status = os.waitpid(pid, os.WNOHANG)
            if reaped == 0:  # still running long after the deadline: stop it
                os.kill(pid, 9)
                _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), output.decode(errors="replace")

    path = tmp_path / "users.txt"
    status, output = converse(path, ["first", "different"])
    assert status == 1 and "do not match" in output and not path.exists()
    status, output = converse(path, ["tty secret", "tty secret"])
    assert status == 0, output
    assert "Password for alice:" in output and "Again:" in output
    assert "tty secret" not in output, "the password was echoed"
    assert verify_password("tty secret", entries(path)["alice"])


def test_falls_back_to_scrypt_without_argon2(tmp_path, monkeypatch, capsys):
    """Without argon2-cffi (no [auth] extra) the standard library's scrypt is used."""
    import io

    from dropins.cred.passwd_command import main

    monkeypatch.setitem(sys.modules, "argon2", None)
    monkeypatch.setattr(sys, "stdin", io.StringIO("fallback pw\n"))
    path = tmp_path / "users.txt"
    assert main([str(path), "alice"]) == 0
    assert capsys.readouterr().out == f"added user 'alice' in {path} (scrypt)\n"
    stored = entries(path)["alice"]
    assert stored.startswith("$scrypt$ln=16,r=8,p=1$")
    assert verify_password("fallback pw", stored)
    monkeypatch.setattr(sys, "stdin", io.StringIO("pw\n"))
    assert main([str(path), "bob", "--scheme", "argon2"]) == 1
    assert "pip install 'dropins[auth]'" in capsys.readouterr().err
    assert list(entries(path)) == ["alice"]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x1b"])
def test_user_names_that_would_split_or_garble_a_line_are_refused(tmp_path, separator):
    path = tmp_path / "users.txt"
    path.write_text("bob:$scrypt$ln=4,r=8,p=1$c2FsdHNhbHQ$aGFzaA\n")
    before = path.read_bytes()
    result = passwd(str(path), f"eve{separator}x", password="pw2")
    assert result.returncode == 2, result.stderr
    assert "control characters" in result.stderr and result.stderr.count("\n") == 1
    assert path.read_bytes() == before


def test_only_newlines_end_entries_of_a_password_file():
    # A comment (or any text) holding a Unicode line separator is still one line to readers.
    from dropins.cred.passwordformat import parse_password_text

    parsed = parse_password_text("# ops\u2028team\nbob:$scrypt$ln=4,r=8,p=1$c2FsdHNhbHQ$aGFzaA\n",
                                 "users.txt")
    assert list(parsed.entries) == ["bob"]
    assert parsed.entries["bob"].line == 2


@posix_only
def test_a_fifo_in_place_of_the_file_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "users.txt"
    os.mkfifo(fifo)
    result = passwd(str(fifo), "alice", "--scheme", "bcrypt", password="pw")
    assert result.returncode == 1
    assert f"{fifo} is not a regular file" in result.stderr
