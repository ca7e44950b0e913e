"""The checkers that read password files (``--auth file:PATH``, ``--auth htpasswd:PATH``);
the format itself is in ``dropins.cred.passwordformat``.

The checkers re-read the file when it changes (in a thread, so that a big file does not stall
the event loop): each login costs one ``stat``, compared on
(inode, size, mtime, ctime) so that an editor's in-place save, ``dropins passwd``'s atomic
replace, a ``chmod`` and even a ``cp -p`` of an older file are all noticed.  If the file
becomes unreadable or malformed while the service runs, or readable by others while it holds
plain-text passwords, the checker logs one error per change and refuses every
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
from typing import Any

from zope.interface import implementer

from dropins.cred.errors import UnauthorizedLogin, UnhandledCredentials
from dropins.cred.hashing import MissingHashLibrary, UnsupportedHash, dummy_hash
from dropins.cred.interfaces import ICredentialsChecker, IUsernamePassword
from dropins.cred.passwordformat import (
    FILE_SCHEMES,
    HTPASSWD_SCHEMES,
    ParsedFile,
    PasswordFileError,
    check_private,
    parse_password_bytes,
    read_file_bytes,
)
from dropins.cred.verifying import HashPool, RecentLogins, default_pool

__all__ = ["HtpasswdChecker", "PasswordFileChecker", "PasswordFileError", "file_signature"]

logger = logging.getLogger("dropins.cred")


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
        #: what the file holds (None if it cannot be parsed), and what logins are checked
        #: against: the same, or None while the file is refused for its content or its mode
        self._content: ParsedFile | None = self._parse(self._data)
        check_private(self._content, self.path, self.kind)
        self._parsed: ParsedFile | None = self._content
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

        The content is parsed again only when it differs, but the file's mode is checked at
        every change of its signature: a ``chmod 644`` (or back to 600) changes only that.
        Blocking: logins call it in a thread (see ``refreshed``)."""
        signature = file_signature(self.path)
        if signature == self._signature and not self._racy:
            return
        self._signature, self._racy = signature, self._is_racy(signature)
        try:
            data = read_file_bytes(self.path, self.kind)
        except PasswordFileError as error:
            self._data = self._content = None
            self._fail(error)
            return
        if data != self._data:
            self._data, self._content = data, None
            try:
                self._content = self._parse(data)
            except PasswordFileError as error:
                self._fail(error)
                return
        elif self._content is None:
            return  # the same malformed content, already reported
        try:
            check_private(self._content, self.path, self.kind)
        except PasswordFileError as error:
            self._fail(error)
            return
        if self._parsed is self._content:
            return  # touched, or rewritten with the same content: same users, same verdict
        if self._parsed is None:
            logger.warning("%s %s is usable again", self.kind, self.path)
        self._parsed = self._content
        self._warn_about(self._content)
        logger.info("%s %s re-read: %d users", self.kind, self.path, len(self._content.entries))

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

