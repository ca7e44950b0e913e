"""The password file format (``user:hash`` a line), shared by ``--auth file:PATH``,
``--auth htpasswd:PATH`` and ``dropins passwd``; ``dropins.cred.passwordfile`` has the
checkers that read such files while a service runs.

- one ``USER:STORED`` a line, split at the first colon (a user name has no colon);
- blank lines and lines starting with ``#`` are ignored; a UTF-8 BOM is allowed;
- ``STORED`` is a hash (see ``dropins.cred.hashing``) or, for ``file:`` only, a plain password
  (accepted with a warning naming the users, never the passwords, and only in a file that no
  other user can read: ``check_private``);
- a line is at most ``MAX_LINE_CHARS`` long, and a file in passwd(5) or shadow(5) format is
  refused as a whole: ``--auth file:/etc/passwd`` would otherwise take every ``x`` field for a
  plain password.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

from dropins.cred.hashing import (
    MissingHashLibrary,
    UnsupportedHash,
    estimated_cost,
    identify,
    require_library,
)

#: Schemes each kind of file accepts.
FILE_SCHEMES = frozenset({"argon2", "bcrypt", "scrypt", "plain"})
HTPASSWD_SCHEMES = frozenset({"bcrypt"})
#: The longest line accepted (a hash is under 200 characters), so that a stray binary or
#: concatenated file is refused instead of costing a regex over megabytes.
MAX_LINE_CHARS = 4096


class PasswordFileError(ValueError):
    """A password file that cannot be used; the message is one line naming the file (and the
    line number when one line is at fault), never a password."""


@dataclass(frozen=True)
class Entry:
    user: str
    stored: str
    scheme: str
    line: int


@dataclass(frozen=True)
class ParsedFile:
    entries: dict[str, Entry]
    #: (line number, user, reason) of entries skipped because their format is refused
    refused: list[tuple[int, str, str]]

    @property
    def plain_users(self) -> list[str]:
        return [entry.user for entry in self.entries.values() if entry.scheme == "plain"]

    @cached_property
    def costliest(self) -> str | None:
        """The stored password that takes longest to verify (the first of equals), whose
        parameters the dummy hash for unknown users copies; None for an empty file."""
        stored = [entry.stored for entry in self.entries.values()]
        return max(stored, key=estimated_cost, default=None)


def is_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def system_file_format(stored: str) -> str | None:
    """'passwd(5)' or 'shadow(5)' if ``stored`` (a line after its first colon) has the fields
    of that file (``x:0:0:root:/root:/bin/sh``, ``$6$...:19000:0:99999:7:::``), else None."""
    fields = stored.split(":")
    if len(fields) == 6 and fields[1].isdigit() and fields[2].isdigit():
        return "passwd(5)"
    if len(fields) == 8 and all(not field or field.lstrip("-").isdigit() for field in fields[1:7]):
        return "shadow(5)"
    return None


def split_line(line: str) -> tuple[str, str] | None:
    """``(user, stored)`` of a ``user:stored`` line, or None for a blank line or a comment."""
    line = line.rstrip("\r\n")
    if is_comment(line):
        return None
    user, separator, stored = line.partition(":")
    if not separator:
        raise ValueError("expected USER:HASH (no colon found)")
    if not user.strip():
        raise ValueError("empty user name")
    stored = stored.strip() if stored.strip().startswith("$") else stored
    if not stored:
        raise ValueError(f"user '{user}' has an empty password hash")
    return user, stored


def _weak_htpasswd_reason(stored: str) -> str:
    if stored.startswith("$apr1$"):
        return "Apache MD5 ($apr1$) hashes are weak"
    if stored.startswith("{SHA}"):
        return "SHA-1 ({SHA}) hashes are weak"
    if stored.startswith("$"):
        return "this hash format is not supported"
    return "crypt() and plain-text entries are weak"


def parse_password_text(text: str, source: str, schemes: frozenset[str] = FILE_SCHEMES,
                        kind: str = "file") -> ParsedFile:
    """Parse the text of a password file; ``source`` names it in error messages.

    A malformed line raises PasswordFileError.  For ``htpasswd`` files, entries in another
    format than bcrypt are refused (listed in ``refused``) rather than fatal, since Apache's
    own tools write them.
    """
    entries: dict[str, Entry] = {}
    refused: list[tuple[int, str, str]] = []
    # Lines end at "\n" (optionally "\r\n") only, as every tool writing these files means;
    # str.splitlines() would also split at Unicode separators inside a user name.
    lines = text.removeprefix("\ufeff").split("\n")
    for number, line in enumerate((line.removesuffix("\r") for line in lines), start=1):
        try:
            if len(line) > MAX_LINE_CHARS:
                raise ValueError(f"line longer than {MAX_LINE_CHARS} characters; is this a"
                                 " password file?")
            fields = split_line(line)
            if fields is None:
                continue
            user, stored = fields
            system_format = system_file_format(stored)
            if system_format:
                raise ValueError(f"this is a {system_format} file, not USER:HASH lines; system"
                                 " accounts cannot be used: make a password file with:"
                                 " dropins passwd FILE USER")
            if user in entries:
                raise ValueError(f"user '{user}' is already defined on line {entries[user].line}")
            try:
                scheme = identify(stored)
            except UnsupportedHash as error:
                if kind == "htpasswd":
                    refused.append((number, user, _weak_htpasswd_reason(stored)))
                    continue
                raise ValueError(f"user '{user}': {error}") from None
            if scheme not in schemes:
                if kind == "htpasswd":
                    refused.append((number, user, _weak_htpasswd_reason(stored)))
                    continue
                raise ValueError(f"user '{user}': {scheme} entries are not accepted here")
            require_library(scheme)
        except MissingHashLibrary as error:
            raise PasswordFileError(f"{kind} {source}, line {number}: {error}") from None
        except ValueError as error:
            raise PasswordFileError(f"{kind} {source}, line {number}: {error}") from None
        entries[user] = Entry(user, stored, scheme, number)
    return ParsedFile(entries, refused)


def read_file_bytes(path: str, kind: str = "file") -> bytes:
    """The content of the password file at ``path``; PasswordFileError if it cannot be read."""
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except FileNotFoundError:
        tool = "htpasswd -B -c" if kind == "htpasswd" else "dropins passwd"
        raise PasswordFileError(f"{kind} {path}: no such file (create it with:"
                                f" {tool} {path} USER)") from None
    except IsADirectoryError:
        raise PasswordFileError(f"{kind} {path}: is a directory, not a password file") from None
    except OSError as error:
        raise PasswordFileError(f"{kind} {path}: cannot read: {error.strerror}") from None


def parse_password_bytes(data: bytes, path: str, schemes: frozenset[str] = FILE_SCHEMES,
                         kind: str = "file") -> ParsedFile:
    """Decode (UTF-8) and parse the content of a password file."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise PasswordFileError(f"{kind} {path}, line {line}: not UTF-8 text") from None
    return parse_password_text(text, path, schemes, kind)


def read_password_file(path: str, schemes: frozenset[str] = FILE_SCHEMES,
                       kind: str = "file") -> ParsedFile:
    """Read and parse the password file at ``path`` (PasswordFileError if it cannot be used)."""
    return parse_password_bytes(read_file_bytes(path, kind), path, schemes, kind)


def check_private(parsed: ParsedFile, path: str, kind: str = "file") -> None:
    """PasswordFileError if ``parsed`` holds plain-text passwords and the file at ``path`` is
    readable by its group or by other users (or is gone: assume the worst)."""
    plain = parsed.plain_users
    if not plain:
        return
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0o777
    if mode & 0o044:
        raise PasswordFileError(
            f"{kind} {path}: holds plain-text passwords (users {', '.join(plain)}) and other"
            f" users can read it (mode {mode & 0o777:04o}); store hashes with: dropins passwd"
            f" {path} USER, or make it private: chmod 600 {path}")
