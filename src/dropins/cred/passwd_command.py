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
A symbolic link is refused as the file, its lock or a folder of its path, and the folder is
held open while the file is changed (``dropins.cred.passwd_files``): root running ``dropins
passwd`` would otherwise write wherever a link planted by the service's user points.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from dropins.cred.passwd_files import (
    Folder,
    MissingFolder,
    PasswdError,
    locked,
    read_file,
    write_atomically,
)
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


def read_lines(folder: Folder, name: str) -> tuple[list[str], int] | None:
    """The file's lines with their line endings and its mode, or None if it does not exist."""
    content = read_file(folder, name)
    if content is None:
        return None
    data, mode = content
    return split_file_text(data, folder.shown(name)), mode


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


def run(options: Options) -> str:
    """Do what the options ask; return the line to print.  Raise PasswdError on failure."""
    user = str(options["user"])
    check_user_name(user)
    folder_path, name = os.path.split(os.path.abspath(str(options["file"])))
    try:
        folder = Folder(folder_path)
    except MissingFolder as error:
        if options["delete"]:
            raise PasswdError(f"{options['file']}: no such file") from None
        raise PasswdError(f"cannot create {options['file']}: {error}") from None
    except PasswdError as error:
        raise PasswdError(f"cannot use {options['file']}: {error}") from None
    with folder:
        return _change(options, user, folder, name)


def _change(options: Options, user: str, folder: Folder, name: str) -> str:
    existing = read_lines(folder, name)  # errors in the file are reported before a password
    if options["delete"]:
        if existing is None:
            raise PasswdError(f"{options['file']}: no such file")
        entry = None
    else:
        from dropins.cred.hashing import MissingHashLibrary, default_scheme, hash_password

        scheme = options["scheme"] or default_scheme()
        password = read_password(user)
        try:
            entry = f"{user}:{hash_password(password, scheme)}"
        except (MissingHashLibrary, ValueError) as error:
            raise PasswdError(f"{error}; nothing changed") from None
    with locked(folder, name):
        current = read_lines(folder, name)  # again: another run may have changed it meanwhile
        lines, mode = current if current is not None else ([], 0o600)
        if current is None and entry is None:
            raise PasswdError(f"{options['file']}: no such file")
        new_lines, found = updated_lines(lines, user, entry)
        if entry is None and not found:
            raise PasswdError(f"user '{user}' is not in {options['file']}; nothing changed")
        write_atomically(folder, name, "".join(new_lines).encode("utf-8"), mode)
    if entry is None:
        return f"removed user '{user}' from {options['file']}"
    return f"{'updated' if found else 'added'} user '{user}' in {options['file']} ({scheme})"


def plain_users_of(path: str) -> list[str]:
    """Users whose entry in ``path`` is a plain password (to nudge the operator)."""
    from dropins.cred.hashing import UnsupportedHash, identify
    from dropins.cred.passwordformat import split_line

    folder_path, name = os.path.split(path)
    try:
        with Folder(folder_path) as folder:
            lines = (read_lines(folder, name) or ([], 0))[0]
    except PasswdError:
        return []
    users = []
    for line in lines:
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
