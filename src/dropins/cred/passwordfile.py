"""Password files (``user:hash`` a line) and the checkers that read them.

Format, shared by ``--auth file:PATH``, ``--auth htpasswd:PATH`` and ``dropins passwd``:

- one ``USER:STORED`` a line, split at the first colon (a user name has no colon);
- blank lines and lines starting with ``#`` are ignored; a UTF-8 BOM is allowed;
- ``STORED`` is a hash (see ``dropins.cred.hashing``) or, for ``file:`` only, a plain password
  (accepted with a warning naming the users, never the passwords).

The checkers re-read the file when it changes: each login costs one ``stat``, compared on
(inode, size, mtime, ctime) so that an editor's in-place save, ``dropins passwd``'s atomic
replace and even a ``cp -p`` of an older file are all noticed.  If the file becomes unreadable
or malformed while the service runs, the checker logs one error per change and refuses every
login until it is fixed: failing closed means that a typo can lock users out, but never lets in
a user whose removal was the point of the edit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from zope.interface import implementer

from dropins.cred.errors import UnauthorizedLogin, UnhandledCredentials
from dropins.cred.hashing import (
    MissingHashLibrary,
    UnsupportedHash,
    identify,
    require_library,
)
from dropins.cred.interfaces import ICredentialsChecker, IUsernamePassword

logger = logging.getLogger("dropins.cred")

#: Schemes each kind of file accepts.
FILE_SCHEMES = frozenset({"argon2", "bcrypt", "scrypt", "plain"})
HTPASSWD_SCHEMES = frozenset({"bcrypt"})


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
    def decoy(self) -> str | None:
        """A stored password to verify unknown users against, so that they cost as much time
        as real ones: the first hash in the file, else the first plain password."""
        hashes = (entry.stored for entry in self.entries.values() if entry.scheme != "plain")
        first = next(iter(self.entries.values()), None)
        return next(hashes, first.stored if first else None)


def is_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


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
            fields = split_line(line)
            if fields is None:
                continue
            user, stored = fields
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


def file_signature(path: str) -> tuple[int, int, int, int] | None:
    """What changes whenever the file does: (inode, size, mtime_ns, ctime_ns); None if gone."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


#: A file modified less than this long before it was read may change again within the same
#: timestamp tick (file systems keep times in ticks of a few milliseconds up to 2 seconds), so
#: an unchanged signature does not prove an unchanged file: its content is compared instead.
RACY_WINDOW_NS = 2_000_000_000


@implementer(ICredentialsChecker)
class PasswordFileChecker:
    """Checks user names and passwords against a ``user:hash`` file, re-read when it changes.

    Raises PasswordFileError at construction if the file cannot be used, so that a service
    refuses to start with a broken file rather than refusing every login later.
    """

    credential_interfaces = (IUsernamePassword,)
    kind = "file"
    schemes = FILE_SCHEMES

    def __init__(self, path: str | os.PathLike[str]) -> None:
        # Absolute, so that the runner's --rundir (a chdir after parsing) cannot change which
        # file is read.
        self.path = os.path.abspath(os.fspath(path))
        self._signature = file_signature(self.path)
        self._data: bytes | None = read_file_bytes(self.path, self.kind)
        self._racy = self._is_racy(self._signature)
        self._parsed: ParsedFile | None = parse_password_bytes(self._data, self.path,
                                                               self.schemes, self.kind)
        self._warned_plain: list[str] = []
        self._warn_about(self._parsed)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    @property
    def usernames(self) -> list[str]:
        return sorted(self._parsed.entries) if self._parsed else []

    def _warn_about(self, parsed: ParsedFile) -> None:
        plain = parsed.plain_users
        if plain and plain != self._warned_plain:
            logger.warning("%s %s holds plain-text passwords for %s; store hashes instead with:"
                           " dropins passwd %s USER", self.kind, self.path, ", ".join(plain),
                           self.path)
        self._warned_plain = plain
        for number, user, reason in parsed.refused:
            logger.warning("%s %s, line %d: user '%s' ignored: %s; recreate the entry with"
                           " htpasswd -B", self.kind, self.path, number, user, reason)

    @staticmethod
    def _is_racy(signature: tuple[int, int, int, int] | None) -> bool:
        return signature is not None and time.time_ns() - signature[2] < RACY_WINDOW_NS

    def refresh(self) -> None:
        """Re-read the file if it changed since the last read (one stat when it did not)."""
        signature = file_signature(self.path)
        if signature == self._signature and not self._racy:
            return
        self._signature, self._racy = signature, self._is_racy(signature)
        try:
            data = read_file_bytes(self.path, self.kind)
        except PasswordFileError as error:
            self._data = None
            self._fail(error)
            return
        if data == self._data:
            return  # touched or rewritten with the same content: same users, same verdict
        self._data = data
        try:
            parsed = parse_password_bytes(data, self.path, self.schemes, self.kind)
        except PasswordFileError as error:
            self._fail(error)
            return
        if self._parsed is None:
            logger.warning("%s %s is usable again", self.kind, self.path)
        self._parsed = parsed
        self._warn_about(parsed)
        logger.info("%s %s re-read: %d users", self.kind, self.path, len(parsed.entries))

    def _fail(self, error: PasswordFileError) -> None:
        self._parsed = None
        logger.error("%s; refusing every login until it is fixed", error)

    async def request_avatar_id(self, credentials: Any) -> str:
        if not IUsernamePassword.providedBy(credentials):
            raise UnhandledCredentials()
        self.refresh()
        if self._parsed is None:
            raise UnauthorizedLogin()
        entry = self._parsed.entries.get(credentials.username)
        stored = entry.stored if entry else self._parsed.decoy
        if stored is None:
            raise UnauthorizedLogin()
        try:
            if stored.startswith("$"):  # a hash: tens of milliseconds, off the event loop
                matches = await asyncio.to_thread(credentials.check_password, stored)
            else:  # plain: a constant-time comparison, cheaper than a thread hop
                matches = credentials.check_password(stored)
        except (UnsupportedHash, MissingHashLibrary) as error:
            logger.error("%s %s: cannot verify the password of a user: %s", self.kind,
                         self.path, error)
            raise UnauthorizedLogin() from None
        if entry is None or not matches:
            raise UnauthorizedLogin()
        return entry.user


class HtpasswdChecker(PasswordFileChecker):
    """An Apache htpasswd file made with ``htpasswd -B`` (bcrypt).

    Entries in Apache's other formats (MD5 ``$apr1$``, SHA-1 ``{SHA}``, crypt, plain) are weak:
    they are skipped with a warning naming the line and user, and those users cannot log in.
    """

    kind = "htpasswd"
    schemes = HTPASSWD_SCHEMES

