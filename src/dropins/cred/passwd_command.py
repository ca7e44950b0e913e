"""``dropins passwd FILE USER``: add or update a user's password hash in a password file.

The password is asked twice without echo on a terminal, or read as one line from standard input
otherwise (``printf '%s\\n' "$PW" | dropins passwd users.txt alice``), so that it never appears
on a command line.  Only its hash is written: argon2id when argon2-cffi is installed, else
scrypt (``--scheme`` chooses).  The file is rewritten atomically (a temporary file in the same
folder, then ``os.replace``), so a running ``--auth file:`` checker never reads half a file;
every other line is kept as it was, the file keeps its mode, and a new file is created 0600.

Changes are serialised by an exclusive ``fcntl`` lock on ``FILE.lock`` beside the file (kept,
never deleted: removing a lock file lets two writers lock different files): under the lock the
file is read again, changed and replaced, so that concurrent runs never undo each other.  The
password is read and hashed before the lock is taken, so a slow typist holds nobody up.
A symbolic link is refused as the file or its lock (``O_NOFOLLOW``): root running
``dropins passwd`` would otherwise write wherever a link planted by the service's user points.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence

from dropins.options import Argument, Flag, Options, Parameter

__all__ = ["main"]


class PasswdOptions(Options):
    description = ("Add or update USER in the password file FILE (for --auth file:FILE),"
                   " storing only a hash of the password. The password is asked twice on a"
                   " terminal, or read as one line from standard input.")
    delete = Flag(help="Remove USER from FILE instead.")
    scheme = Parameter(choices=("argon2", "bcrypt", "scrypt"), metavar="SCHEME",
                       help="Hash with argon2, bcrypt or scrypt (default: argon2 when"
                            " argon2-cffi is installed, else scrypt).")
    file = Argument(metavar="FILE", help="The password file (created with mode 0600 if"
                                         " missing).")
    user = Argument(metavar="USER", help="The user name.")


class PasswdError(Exception):
    """A failure reported as one line, with an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def check_user_name(user: str) -> None:
    if not user:
        raise PasswdError("empty user name", 2)
    if ":" in user:
        raise PasswdError("a user name cannot contain ':' (it separates user and hash)", 2)
    # isprintable() also refuses the Unicode line and paragraph separators, which would split
    # the entry in two for any reader that splits lines the way str.splitlines() does.
    if user != user.strip() or not user.isprintable():
        raise PasswdError("a user name cannot contain spaces at its ends or control"
                          " characters", 2)
    if user.startswith("#"):
        raise PasswdError("a user name cannot start with '#' (it marks a comment)", 2)


#: How long to wait for another ``dropins passwd`` to finish with the file.
LOCK_TIMEOUT = 10.0


def symlink_error(path: str) -> PasswdError:
    return PasswdError(f"{path} is a symbolic link; refusing to write through it (give the"
                       " real file's path if that is the one you mean); nothing changed")


def read_file(path: str) -> tuple[list[str], int] | None:
    """The file's lines with their line endings and its mode, or None if it does not exist."""
    try:
        # O_NONBLOCK: a FIFO planted as the file must not make the command hang.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                             | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise PasswdError(f"{path} is a directory, not a password file") from None
    except OSError as error:
        if os.path.islink(path):
            raise symlink_error(path) from None
        raise PasswdError(f"cannot read {path}: {error.strerror}") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        what = "a directory, not a password file" if stat.S_ISDIR(mode) else "not a regular file"
        raise PasswdError(f"{path} is {what}")
    with os.fdopen(descriptor, "rb") as stream:
        data = stream.read()
    return split_file_text(data, path), mode & 0o7777


def read_lines(path: str) -> list[str] | None:
    """The file's lines with their line endings, or None if it does not exist."""
    content = read_file(path)
    return None if content is None else content[0]


def split_file_text(data: bytes, path: str) -> list[str]:
    """The lines of a password file's content, each with its line ending."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise PasswdError(f"{path}, line {line}: not UTF-8 text; fix the file first") from None
    # Lines end at "\n" only (a "\r" before it stays with its line): unlike str.splitlines(),
    # which also splits at Unicode separators that are not line ends in this file format.
    pieces = text.split("\n")
    lines = [piece + "\n" for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


def user_of(line: str) -> str | None:
    """The user a line is for, or None for a comment, a blank or a malformed line."""
    from dropins.cred.passwordformat import split_line

    try:
        fields = split_line(line.removeprefix("\ufeff"))
    except ValueError:
        return None
    return fields[0] if fields else None


def read_password(user: str) -> str:
    """Ask twice on a terminal; otherwise read one line from standard input."""
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        try:
            first = getpass.getpass(f"Password for {user}: ")
            if first and getpass.getpass("Again: ") != first:
                raise PasswdError("the passwords do not match; nothing changed")
        except (EOFError, KeyboardInterrupt):
            raise PasswdError("cancelled; nothing changed") from None
        password = first
    else:
        line = sys.stdin.readline() if sys.stdin is not None else ""
        password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise PasswdError("empty password refused; nothing changed")
    return password


def updated_lines(lines: list[str], user: str, entry: str | None) -> tuple[list[str], bool]:
    """``lines`` with ``user``'s line replaced by ``entry`` (removed when None; appended when
    new), and whether the user was there.  Later duplicates of the user are dropped."""
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    result: list[str] = []
    found = False
    for line in lines:
        if user_of(line) != user:
            result.append(line)
            continue
        if not found and entry is not None:
            bom = "\ufeff" if line.startswith("\ufeff") else ""
            ending = line[len(line.rstrip("\r\n")):] or newline
            result.append(f"{bom}{entry}{ending}")
        found = True
    if not found and entry is not None:
        if result and not result[-1].endswith(("\n", "\r")):
            result[-1] += newline
        result.append(entry + newline)
    return result, found


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold the exclusive lock of ``path`` (``PATH.lock``, created 0600); PasswdError if
    another holder keeps it longer than LOCK_TIMEOUT."""
    try:
        import fcntl
    except ImportError:  # no fcntl (Windows): concurrent runs are not serialised
        yield
        return
    lock_path = path + ".lock"
    try:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o600)
    except OSError as error:
        if os.path.islink(lock_path):
            raise symlink_error(lock_path) from None
        raise PasswdError(f"cannot create the lock file {lock_path}: {error.strerror}") from None
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PasswdError(f"{path} has been locked by another dropins passwd for"
                                      f" {LOCK_TIMEOUT:.0f} s ({lock_path}); nothing changed"
                                      ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def write_atomically(path: str, text: str, mode: int) -> None:
    """Replace ``path`` by ``text`` via a temporary file in the same folder and ``os.replace``."""
    folder = os.path.dirname(path) or "."
    try:
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".dropins-passwd-",
                                                 suffix=".tmp")
    except OSError as error:
        raise PasswdError(f"cannot write in {folder}: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(text.encode("utf-8"))
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        _keep_owner(path, temporary)
        os.replace(temporary, path)
    except OSError as error:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise PasswdError(f"cannot write {path}: {error.strerror}; nothing changed") from None


def _keep_owner(path: str, temporary: str) -> None:
    """Give the new file the old one's owner when we may (running as root); else keep ours."""
    chown = getattr(os, "chown", None)
    if chown is None:
        return
    try:
        info = os.lstat(path)
        chown(temporary, info.st_uid, info.st_gid)
    except OSError:
        pass


def run(options: Options) -> str:
    """Do what the options ask; return the line to print.  Raise PasswdError on failure."""
    user = str(options["user"])
    check_user_name(user)
    path = os.path.abspath(str(options["file"]))
    if os.path.islink(path):
        raise symlink_error(str(options["file"]))
    existing = read_file(path)  # errors in the file are reported before a password is asked
    if options["delete"]:
        if existing is None:
            raise PasswdError(f"{options['file']}: no such file")
        entry = None
    else:
        folder = os.path.dirname(path) or "."
        if not os.path.isdir(folder):
            raise PasswdError(f"cannot create {options['file']}: folder {folder} does not exist")
        from dropins.cred.hashing import MissingHashLibrary, default_scheme, hash_password

        scheme = options["scheme"] or default_scheme()
        password = read_password(user)
        try:
            entry = f"{user}:{hash_password(password, scheme)}"
        except (MissingHashLibrary, ValueError) as error:
            raise PasswdError(f"{error}; nothing changed") from None
    with locked(path):
        current = read_file(path)  # again: another run may have changed it meanwhile
        lines, mode = current if current is not None else ([], 0o600)
        if current is None and entry is None:
            raise PasswdError(f"{options['file']}: no such file")
        new_lines, found = updated_lines(lines, user, entry)
        if entry is None and not found:
            raise PasswdError(f"user '{user}' is not in {options['file']}; nothing changed")
        write_atomically(path, "".join(new_lines), mode)
    if entry is None:
        return f"removed user '{user}' from {options['file']}"
    return f"{'updated' if found else 'added'} user '{user}' in {options['file']} ({scheme})"


def plain_users_of(path: str) -> list[str]:
    """Users whose entry in ``path`` is a plain password (to nudge the operator)."""
    from dropins.cred.hashing import UnsupportedHash, identify
    from dropins.cred.passwordformat import split_line

    users = []
    for line in read_lines(path) or []:
        try:
            fields = split_line(line.removeprefix("\ufeff"))
            if fields and identify(fields[1]) == "plain":
                users.append(fields[0])
        except (ValueError, UnsupportedHash):
            continue
    return users


def main(argv: Sequence[str], prog: str = "dropins passwd") -> int:
    options = PasswdOptions.parse(argv, prog)
    try:
        message = run(options)
    except PasswdError as error:
        sys.stderr.write(f"{prog}: error: {error}\n")
        return error.status
    sys.stdout.write(message + "\n")
    plain = plain_users_of(os.path.abspath(str(options["file"])))
    if plain:
        sys.stderr.write(f"{prog}: warning: {options['file']} still holds plain-text passwords"
                         f" for {', '.join(plain)}; set them with: {prog}"
                         f" {options['file']} USER\n")
    return 0
