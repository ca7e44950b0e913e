"""Each built-in checker type, made through its factory as ``--auth TYPE:ARGS`` would."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _cred_helpers import avatar_id, cheap_argon2, cheap_bcrypt, cheap_scrypt
from conftest import run_dropins
from dropins.cred import ANONYMOUS, Anonymous, UnauthorizedLogin, UsernamePassword
from dropins.options import UsageError
from dropins.plugins.checkers import anonymous, file, htpasswd, memory  # the real plugins


def write(path, text):
    """A password file, private as ``dropins passwd`` makes them (plain entries need that)."""
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


# memory -------------------------------------------------------------------------------------

def test_memory_accepts_each_user_with_their_password_only():
    checker = memory.make_checker("alice:secret:bob:hunter2")
    assert avatar_id(checker, "alice", "secret") == "alice"
    assert avatar_id(checker, "bob", "hunter2") == "bob"
    assert avatar_id(checker, "alice", "hunter2") is None
    assert avatar_id(checker, "carol", "secret") is None
    assert avatar_id(checker, "alice", "secret ") is None


def test_memory_escapes_colons_and_backslashes():
    checker = memory.make_checker(r"us\:er:pa\:ss\\word:plain:a\b")
    assert avatar_id(checker, "us:er", "pa:ss\\word") == "us:er"
    assert avatar_id(checker, "plain", "a\\b") == "plain"


def test_memory_warns_about_the_process_list_without_echoing_passwords(caplog):
    with caplog.at_level(logging.WARNING, logger="dropins.cred"):
        memory.make_checker("alice:topsecret")
    (record,) = [r for r in caplog.records if r.name == "dropins.cred"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "process list" in message and "dropins passwd" in message and "file:" in message
    assert "topsecret" not in message


@pytest.mark.parametrize("argument, detail", [
    ("", "no users given"),
    ("alice", "give a password after each user name"),
    ("alice:secret:bob", "give a password after each user name"),
    ("alice:", "user 'alice' has an empty password"),
    (":secret", "empty name"),
    ("alice:one:alice:two", "user 'alice' is given twice"),
])
def test_memory_bad_arguments_name_type_and_format(argument, detail):
    with pytest.raises(UsageError) as caught:
        memory.make_checker(argument)
    message = str(caught.value)
    assert message.startswith("auth type 'memory' expects 'memory:USER:PASS[:USER2:PASS2...]'")
    assert detail in message
    assert "\n" not in message
    for secret in ("secret", "one", "two"):
        assert secret not in message.replace("given", "")


def test_memory_repr_lists_users_not_passwords():
    checker = memory.make_checker("alice:topsecret")
    assert "alice" in repr(checker) and "topsecret" not in repr(checker)


# anonymous ----------------------------------------------------------------------------------

def test_anonymous_lets_anonymous_credentials_in_and_nothing_else():
    checker = anonymous.make_checker("")

    async def attempts():
        assert await checker.request_avatar_id(Anonymous()) is ANONYMOUS
        with pytest.raises(UnauthorizedLogin):
            await checker.request_avatar_id(UsernamePassword("a", "b"))

    asyncio.run(attempts())
    assert str(ANONYMOUS) == "-" and not ANONYMOUS


def test_anonymous_takes_no_argument():
    with pytest.raises(UsageError, match="auth type 'anonymous' expects 'anonymous': it takes"):
        anonymous.make_checker("x")


# file ---------------------------------------------------------------------------------------

def test_file_checks_every_hash_format(tmp_path, monkeypatch):
    path = write(tmp_path / "users.txt", "\n".join([
        "# users of the demo",
        f"ann:{cheap_argon2('argon pw')}",
        "",
        f"ben:{cheap_bcrypt('bcrypt pw')}",
        f"cat:{cheap_scrypt('scrypt pw', monkeypatch)}",
        "dan:plain: with colon",
    ]) + "\n")
    checker = file.make_checker(path)
    assert avatar_id(checker, "ann", "argon pw") == "ann"
    assert avatar_id(checker, "ben", "bcrypt pw") == "ben"
    assert avatar_id(checker, "cat", "scrypt pw") == "cat"
    assert avatar_id(checker, "dan", "plain: with colon") == "dan"
    for user in ("ann", "ben", "cat", "dan"):
        assert avatar_id(checker, user, "wrong") is None
    assert avatar_id(checker, "eve", "argon pw") is None
    assert checker.usernames == ["ann", "ben", "cat", "dan"]


def test_file_warns_once_about_plain_passwords_naming_users_not_passwords(tmp_path, caplog):
    path = write(tmp_path / "users.txt", "alice:wonderland\nbob:builder\n")
    with caplog.at_level(logging.WARNING, logger="dropins.cred"):
        checker = file.make_checker(path)
        avatar_id(checker, "alice", "wonderland")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert path in warnings[0] and "alice, bob" in warnings[0]
    assert "wonderland" not in warnings[0] and "builder" not in warnings[0]


def test_file_path_with_escaped_colon(tmp_path):
    target = tmp_path / "odd:name.txt"
    write(target, f"alice:{cheap_bcrypt('pw')}\n")
    escaped = str(target).replace("\\", "\\\\").replace(":", "\\:")
    assert avatar_id(file.make_checker(escaped), "alice", "pw") == "alice"


def test_file_missing_is_a_usage_error_naming_the_fix(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(UsageError) as caught:
        file.make_checker(str(missing))
    assert str(caught.value) == (f"file {missing}: no such file (create it with:"
                                 f" dropins passwd {missing} USER)")
    with pytest.raises(UsageError, match="expects 'file:PATH': no path given"):
        file.make_checker("")
    with pytest.raises(UsageError, match="is a directory"):
        file.make_checker(str(tmp_path))


@pytest.mark.parametrize("text, line, detail", [
    ("alice:$2b$04$x\n", 1, "malformed bcrypt hash"),
    ("# c\nalice:s3cretpw\nbob s3cretpw\n", 3, "expected USER:HASH"),
    ("alice:s3cretpw\n:s3cretpw\n", 2, "empty user name"),
    ("alice:\n", 1, "empty password hash"),
    ("alice:s3cretpw\nalice:s3cretpw2\n", 2, "already defined on line 1"),
    ("alice:$apr1$abc$def\n", 1, "Apache MD5"),
])
def test_file_malformed_lines_name_file_and_line_not_password(tmp_path, text, line, detail):
    path = write(tmp_path / "users.txt", text)
    with pytest.raises(UsageError) as caught:
        file.make_checker(path)
    message = str(caught.value)
    assert message.startswith(f"file {path}, line {line}: ")
    assert detail in message and "s3cretpw" not in message and "\n" not in message


def test_file_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "users.txt"
    path.write_bytes(b"alice:pw\nb\xffb:pw\n")
    with pytest.raises(UsageError, match=r"line 2: not UTF-8 text"):
        file.make_checker(str(path))


def test_file_is_reread_when_it_changes(tmp_path, caplog):
    path = tmp_path / "users.txt"
    write(path, f"alice:{cheap_bcrypt('one')}\n")
    checker = file.make_checker(str(path))
    assert avatar_id(checker, "alice", "one") == "alice"
    assert avatar_id(checker, "bob", "two") is None
    # Same size, rewritten in place (an editor's save): a changed password must be noticed.
    write(path, f"alice:{cheap_bcrypt('uno')}\n")
    assert avatar_id(checker, "alice", "one") is None
    assert avatar_id(checker, "alice", "uno") == "alice"
    # Added user, file replaced by an older copy with its old mtime (cp -p).
    other = tmp_path / "other.txt"
    write(other, f"alice:{cheap_bcrypt('uno')}\nbob:{cheap_bcrypt('two')}\n")
    os.utime(other, ns=(1_000_000_000, 1_000_000_000))
    os.replace(other, path)
    assert avatar_id(checker, "bob", "two") == "bob"


def test_file_broken_while_running_refuses_everyone_until_fixed(tmp_path, caplog):
    path = tmp_path / "users.txt"
    good = f"alice:{cheap_bcrypt('pw')}\n"
    write(path, good)
    checker = file.make_checker(str(path))
    with caplog.at_level(logging.ERROR, logger="dropins.cred"):
        write(path, good + "bob has no colon s3cretpw\n")
        assert avatar_id(checker, "alice", "pw") is None
        assert avatar_id(checker, "alice", "pw") is None
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, "one error per change, not per login"
    assert "line 2" in errors[0] and "s3cretpw" not in errors[0]
    write(path, good)
    assert avatar_id(checker, "alice", "pw") == "alice"
    path.unlink()
    assert avatar_id(checker, "alice", "pw") is None


def test_file_unknown_user_is_checked_against_a_real_hash(tmp_path, monkeypatch):
    """Unknown users cost a hash verification too, so timing does not reveal who exists."""
    path = write(tmp_path / "users.txt", f"plainuser:pw\nalice:{cheap_bcrypt('pw')}\n")
    checker = file.make_checker(path)
    verified = []
    monkeypatch.setattr(UsernamePassword, "check_password",
                        lambda self, stored: verified.append(stored) or False)
    assert avatar_id(checker, "nobody", "pw") is None
    assert len(verified) == 1 and verified[0].startswith("$2b$")


# htpasswd -----------------------------------------------------------------------------------

needs_htpasswd = pytest.mark.skipif(shutil.which("htpasswd") is None,
                                    reason="Apache's htpasswd (apache2-utils) is not installed")


def apache_htpasswd(*args: str) -> None:
    subprocess.run(["htpasswd", *args], check=True, capture_output=True, timeout=30)


@needs_htpasswd
def test_htpasswd_file_made_by_apache_tools(tmp_path):
    path = str(tmp_path / ".htpasswd")
    apache_htpasswd("-c", "-b", "-B", "-C", "4", path, "alice", "wonder land")
    apache_htpasswd("-b", "-B", "-C", "4", path, "bob", "pässwörd")
    checker = htpasswd.make_checker(path)
    assert avatar_id(checker, "alice", "wonder land") == "alice"
    assert avatar_id(checker, "bob", "pässwörd") == "bob"
    assert avatar_id(checker, "alice", "wonderland") is None
    assert avatar_id(checker, "carol", "wonder land") is None
    # Apache changes a password while the service runs.
    apache_htpasswd("-b", "-B", "-C", "4", path, "alice", "new one")
    assert avatar_id(checker, "alice", "wonder land") is None
    assert avatar_id(checker, "alice", "new one") == "alice"


@needs_htpasswd
def test_htpasswd_weak_formats_are_skipped_with_a_warning(tmp_path, caplog):
    path = str(tmp_path / ".htpasswd")
    apache_htpasswd("-c", "-b", "-B", "-C", "4", path, "good", "pw")
    apache_htpasswd("-b", "-m", path, "md5user", "pw")
    apache_htpasswd("-b", "-s", path, "shauser", "pw")
    apache_htpasswd("-b", "-d", path, "cryptuser", "pw")
    with caplog.at_level(logging.WARNING, logger="dropins.cred"):
        checker = htpasswd.make_checker(path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    for line, user, reason in [(2, "md5user", "MD5"), (3, "shauser", "SHA-1"),
                               (4, "cryptuser", "crypt")]:
        (warning,) = [w for w in warnings if f"'{user}'" in w]
        assert f"line {line}" in warning and reason in warning and "htpasswd -B" in warning
    assert avatar_id(checker, "good", "pw") == "good"
    for user in ("md5user", "shauser", "cryptuser"):
        assert avatar_id(checker, user, "pw") is None


def test_htpasswd_missing_file_names_apache_tool(tmp_path):
    with pytest.raises(UsageError, match=r"htpasswd -B -c .*nope USER"):
        htpasswd.make_checker(str(tmp_path / "nope"))


def test_file_hash_needing_a_missing_library_names_the_extra(tmp_path, monkeypatch):
    path = write(tmp_path / "users.txt", f"alice:{cheap_argon2('pw')}\n")
    monkeypatch.setitem(sys.modules, "argon2", None)
    with pytest.raises(UsageError) as caught:
        file.make_checker(path)
    assert str(caught.value) == (f"file {path}, line 1: argon2 password hashes need the"
                                 " argon2-cffi package: pip install 'dropins[auth]'")


def test_file_relative_path_survives_a_change_of_directory(tmp_path, monkeypatch):
    write(tmp_path / "users.txt", "alice:pw\n")
    monkeypatch.chdir(tmp_path)
    checker = file.make_checker("users.txt")
    monkeypatch.chdir("/")
    assert avatar_id(checker, "alice", "pw") == "alice"
    assert checker.path == str(tmp_path / "users.txt")


# system account files and private plain passwords (issue 10 item 17) ------------------------

PASSWD_LINES = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n"
SHADOW_LINES = ("root:$6$saltsalt$" + "a" * 86 + ":19000:0:99999:7:::\n"
                "daemon:*:19000:0:99999:7:::\n")


@pytest.mark.parametrize(("text", "name"), [(PASSWD_LINES, "passwd(5)"),
                                            (SHADOW_LINES, "shadow(5)"),
                                            ("# mine\n" + PASSWD_LINES[:32] + "\n", "passwd(5)")])
def test_file_refuses_system_account_files(tmp_path, text, name):
    path = write(tmp_path / "accounts", text)
    with pytest.raises(UsageError) as caught:
        file.make_checker(path)
    message = str(caught.value)
    assert f"this is a {name} file, not USER:HASH lines" in message
    assert "dropins passwd FILE USER" in message and "\n" not in message


def test_file_refuses_etc_passwd_end_to_end(tmp_path):
    """The obvious translation of twistd's --auth passwd:/etc/passwd must not let root in."""
    if not Path("/etc/passwd").is_file():
        pytest.skip("no /etc/passwd on this system")
    result = run_dropins("web", "--path", str(tmp_path), "--auth", "file:/etc/passwd",
                         "--listen", "tcp:0:interface=127.0.0.1", timeout=30)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "file /etc/passwd, line 1: this is a passwd(5) file" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_file_refuses_plain_passwords_other_users_can_read(tmp_path, mode):
    path = write(tmp_path / "users.txt", f"alice:wonderland\nbob:{cheap_bcrypt('pw')}\n")
    os.chmod(path, mode)
    with pytest.raises(UsageError) as caught:
        file.make_checker(path)
    message = str(caught.value)
    assert (f"holds plain-text passwords (users alice) and other users can read it (mode"
            f" {mode:04o})") in message
    assert f"chmod 600 {path}" in message
    assert "wonderland" not in message


def test_file_of_hashes_only_may_be_readable_by_others(tmp_path):
    path = write(tmp_path / "users.txt", f"bob:{cheap_bcrypt('pw')}\n")
    os.chmod(path, 0o644)
    assert avatar_id(file.make_checker(path), "bob", "pw") == "bob"


def test_plain_password_made_readable_while_running_refuses_every_login(tmp_path, caplog):
    path = write(tmp_path / "users.txt", "alice:wonderland\n")
    checker = file.make_checker(path)
    assert avatar_id(checker, "alice", "wonderland") == "alice"
    Path(path).write_text("alice:wonderland\nbob:builder\n")
    os.chmod(path, 0o644)
    with caplog.at_level(logging.ERROR, logger="dropins.cred"):
        assert avatar_id(checker, "alice", "wonderland") is None
    assert any("other users can read it" in record.getMessage() for record in caplog.records)


def test_a_chmod_alone_of_a_plain_password_file_is_noticed_both_ways(tmp_path, caplog):
    """Only the mode changes, not the content (before the fix, the unchanged content returned
    before the mode was looked at, so a chmod 644 kept serving the plain passwords)."""
    path = write(tmp_path / "users.txt", "alice:wonderland\n")
    an_hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(an_hour_ago, an_hour_ago))  # settled: only the chmod changes it
    checker = file.make_checker(path)
    assert avatar_id(checker, "alice", "wonderland") == "alice"
    os.chmod(path, 0o644)
    with caplog.at_level(logging.ERROR, logger="dropins.cred"):
        assert avatar_id(checker, "alice", "wonderland") is None
    assert any("other users can read it (mode 0644)" in record.getMessage()
               for record in caplog.records)
    os.chmod(path, 0o600)
    assert avatar_id(checker, "alice", "wonderland") == "alice"


def test_file_refuses_overlong_lines(tmp_path):
    path = write(tmp_path / "users.txt", f"bob:{cheap_bcrypt('pw')}\n" + "x" * 5000 + "\n")
    with pytest.raises(UsageError, match=r"line 2: line longer than 4096 characters"):
        file.make_checker(path)
