"""Password files (``user:hash`` a line) and the checkers that read them.

Format, shared by ``--auth file:PATH``, ``--auth htpasswd:PATH`` and ``dropins passwd``:

- one ``USER:STORED`` a line, split at the first colon (a user name has no colon);
- blank lines and lines starting with ``#`` are ignored; a UTF-8 BOM is allowed;
- ``STORED`` is a hash (see ``dropins.cred.hashing``) or, for ``file:`` only, a plain password
  (accepted with a warning naming the users, never the passwords, and only in a file that no
  other user can read);
- a line is at most ``MAX_LINE_CHARS`` long, and a file in passwd(5) or shadow(5) format is
  refused as a whole: ``--auth file:/etc/passwd`` would otherwise take every ``x`` field for a
  plain password.

The checkers re-read the file when it changes (in a thread, so that a big file does not stall
the event loop): each login costs one ``stat``, compared on
(inode, size, mtime, ctime) so that an editor's in-place save, ``dropins passwd``'s atomic
replace and even a ``cp -p`` of an older file are all noticed.  If the file becomes unreadable
or malformed while the service runs, the checker logs one error per change and refuses every
login until it is fixed: failing closed means that a typo can lock users out, but never lets in
a user whose removal was the point of the edit.

Hashes are verified on a bounded thread pool, and a right password is remembered for a short
time (``dropins.cred.verifying``), so that HTTP Basic clients, which send it with every request,
do not cost a hash each.  An unknown user is checked against a dummy hash with the parameters of
the costliest hash in the file, so that it takes as long as the slowest real user.
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
    dummy_hash,
    estimated_cost,
    identify,
    require_library,
)
from dropins.cred.interfaces import ICredentialsChecker, IUsernamePassword
from dropins.cred.verifying import HashPool, RecentLogins, default_pool

logger = logging.getLogger("dropins.cred")

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
    refuses to start with a broken file rather than refusing every login later.  ``pool`` runs
    the hashing (default: one pool per process); ``recent`` remembers right passwords (default:
    for 30 seconds; ``RecentLogins(lifetime=0)`` turns that off).
    """

    credential_interfaces = (IUsernamePassword,)
    kind = "file"
    schemes = FILE_SCHEMES

    def __init__(self, path: str | os.PathLike[str], *, pool: HashPool | None = None,
                 recent: RecentLogins | None = None) -> None:
        # Absolute, so that the runner's --rundir (a chdir after parsing) cannot change which
        # file is read.
        self.path = os.path.abspath(os.fspath(path))
        self._pool = pool or default_pool()
        self._recent = RecentLogins() if recent is None else recent
        self._reloading: asyncio.Task[None] | None = None
        self._signature = file_signature(self.path)
        self._data: bytes | None = read_file_bytes(self.path, self.kind)
        self._racy = self._is_racy(self._signature)
        self._parsed: ParsedFile | None = self._parse(self._data)
        self._warned_plain: list[str] = []
        self._warn_about(self._parsed)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    @property
    def usernames(self) -> list[str]:
        return sorted(self._parsed.entries) if self._parsed else []

    def _parse(self, data: bytes) -> ParsedFile:
        parsed = parse_password_bytes(data, self.path, self.schemes, self.kind)
        _ = parsed.costliest  # found here, in the re-reading thread, not on the event loop
        plain = parsed.plain_users
        if plain:
            try:
                mode = os.stat(self.path).st_mode
            except OSError:
                mode = 0o777  # gone since it was read: assume the worst
            if mode & 0o044:
                raise PasswordFileError(
                    f"{self.kind} {self.path}: holds plain-text passwords (users"
                    f" {', '.join(plain)}) and other users can read it (mode"
                    f" {mode & 0o777:04o}); store hashes with: dropins passwd {self.path} USER,"
                    f" or make it private: chmod 600 {self.path}")
        return parsed

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

    def _unchanged(self) -> bool:
        return file_signature(self.path) == self._signature and not self._racy

    def refresh(self) -> None:
        """Re-read the file if it changed since the last read (one stat when it did not).

        Blocking: logins call it in a thread (see ``refreshed``)."""
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
            parsed = self._parse(data)
        except PasswordFileError as error:
            self._fail(error)
            return
        if self._parsed is None:
            logger.warning("%s %s is usable again", self.kind, self.path)
        self._parsed = parsed
        self._warn_about(parsed)
        logger.info("%s %s re-read: %d users", self.kind, self.path, len(parsed.entries))

    async def refreshed(self) -> ParsedFile | None:
        """The file's current content: a stat on the loop, and if the file changed, one re-read
        in a thread that concurrent logins share (a 100,000-user file takes most of a second
        to parse, which would otherwise stall every connection).  While a re-read runs, logins
        wait for it rather than use what the file held before it changed."""
        task = self._reloading
        if (task is None or task.done()) and self._unchanged():
            return self._parsed
        loop = asyncio.get_running_loop()
        if task is None or task.done() or task.get_loop() is not loop:
            task = self._reloading = loop.create_task(asyncio.to_thread(self.refresh))
        await asyncio.shield(task)
        return self._parsed

    def _fail(self, error: PasswordFileError) -> None:
        self._parsed = None
        logger.error("%s; refusing every login until it is fixed", error)

    async def request_avatar_id(self, credentials: Any) -> str:
        if not IUsernamePassword.providedBy(credentials):
            raise UnhandledCredentials()
        parsed = await self.refreshed()
        if parsed is None or parsed.costliest is None:
            raise UnauthorizedLogin()
        entry = parsed.entries.get(credentials.username)
        password = getattr(credentials, "password", None)
        if entry and isinstance(password, str) and self._recent.recalls(entry.user, password,
                                                                        entry.stored):
            return entry.user
        try:
            if entry is None:  # as long as the costliest real user takes
                matches = await self._verify(credentials, parsed.costliest, dummy=True)
            else:
                matches = await self._verify(credentials, entry.stored)
        except (UnsupportedHash, MissingHashLibrary) as error:
            logger.error("%s %s: cannot verify the password of a user: %s", self.kind,
                         self.path, error)
            raise UnauthorizedLogin() from None
        if entry is None or not matches:
            raise UnauthorizedLogin()
        if isinstance(password, str):
            self._recent.remember(entry.user, password, entry.stored)
        return entry.user

    async def _verify(self, credentials: Any, stored: str, dummy: bool = False) -> bool:
        if not stored.startswith("$"):  # plain: a constant-time comparison, no thread hop
            return bool(credentials.check_password(dummy_hash(stored) if dummy else stored))
        if dummy:
            return await self._pool.run(_check_against_dummy, credentials, stored)
        return await self._pool.run(credentials.check_password, stored)


def _check_against_dummy(credentials: Any, stored: str) -> bool:
    """Verify against a dummy hash like ``stored`` (made once per parameters, on this thread)."""
    return bool(credentials.check_password(dummy_hash(stored)))


class HtpasswdChecker(PasswordFileChecker):
    """An Apache htpasswd file made with ``htpasswd -B`` (bcrypt).

    Entries in Apache's other formats (MD5 ``$apr1$``, SHA-1 ``{SHA}``, crypt, plain) are weak:
    they are skipped with a warning naming the line and user, and those users cannot log in.
    """

    kind = "htpasswd"
    schemes = HTPASSWD_SCHEMES

