"""Checkers that need no file: users given in memory, and anonymous access."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from typing import Any

from zope.interface import implementer

from dropins.cred.credentials import ANONYMOUS
from dropins.cred.errors import UnauthorizedLogin, UnhandledCredentials
from dropins.cred.interfaces import IAnonymous, ICredentialsChecker, IUsernamePassword


@implementer(ICredentialsChecker)
class InMemoryUsernamePasswordChecker:
    """Users and plain passwords held in memory, compared in constant time.

    For tests and quick setups (``--auth memory:USER:PASS``); a real deployment keeps hashes in a
    file (``--auth file:PATH``, maintained with ``dropins passwd``).
    """

    credential_interfaces = (IUsernamePassword,)

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = {user: password.encode("utf-8") for user, password in users.items()}
        # Compared against for unknown users, so that they take as long as known ones.
        self._decoy = os.urandom(16).hex().encode("ascii")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(users={sorted(self._users)!r})"

    @property
    def usernames(self) -> list[str]:
        return sorted(self._users)

    async def request_avatar_id(self, credentials: Any) -> str:
        if not IUsernamePassword.providedBy(credentials):
            raise UnhandledCredentials()
        stored = self._users.get(credentials.username)
        offered = credentials.password.encode("utf-8")
        matches = hmac.compare_digest(offered, self._decoy if stored is None else stored)
        if stored is None or not matches:
            raise UnauthorizedLogin()
        return str(credentials.username)


@implementer(ICredentialsChecker)
class AllowAnonymousChecker:
    """Lets in whoever presents ``Anonymous()`` credentials, as the avatar id ``ANONYMOUS``."""

    credential_interfaces = (IAnonymous,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    async def request_avatar_id(self, credentials: Any) -> Any:
        if not IAnonymous.providedBy(credentials):
            raise UnhandledCredentials()
        return ANONYMOUS
