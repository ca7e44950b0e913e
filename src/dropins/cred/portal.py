"""``Portal``: where a protocol logs a client in, and ``UsernameRealm``, the simplest realm.

A protocol builds credentials from what the client sent and awaits
``portal.login(credentials, mind, *interfaces)``; it gets back ``(interface, avatar, logout)``
or an ``UnauthorizedLogin``, and never learns which checker answered or why a login failed.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from zope.interface import implementer

from dropins.cred.errors import LoginThrottled, UnauthorizedLogin, UnhandledCredentials
from dropins.cred.interfaces import IRealm

#: Seconds from the start of a failed login to its answer, to slow down password guessing and
#: to make every failure take the same time.
DEFAULT_FAILURE_DELAY = 0.5


class Portal:
    """Authenticates credentials with checkers, then asks the realm for the avatar.

    Checkers are tried in the order given, skipping those that do not understand the kind of
    credentials; the first that accepts decides the avatar id.  A failed login is reported
    ``failure_delay`` seconds after it began, however long the checking took (the rest is an
    ``asyncio.sleep``, so other clients are not held up): a fixed delay added to the check
    would still let a client time the check, e.g. tell an unknown user from a known one.  A
    login that no checker could check (``LoginThrottled``: too many at once) is reported at
    once, as that: its answer says nothing about the credentials.
    """

    def __init__(self, realm: Any, checkers: Iterable[Any] = (), *,
                 failure_delay: float = DEFAULT_FAILURE_DELAY) -> None:
        if failure_delay < 0:
            raise ValueError("failure_delay must not be negative")
        self.realm = realm
        self.checkers: list[Any] = []
        self.failure_delay = failure_delay
        for checker in checkers:
            self.register_checker(checker)

    def __repr__(self) -> str:
        return f"Portal({self.realm!r}, {self.checkers!r})"

    def register_checker(self, checker: Any) -> None:
        """Add a checker after those already registered."""
        if not tuple(getattr(checker, "credential_interfaces", ())):
            raise TypeError(f"{checker!r} declares no credential_interfaces")
        self.checkers.append(checker)

    @property
    def credential_interfaces(self) -> list[Any]:
        """Every kind of credentials some checker understands (a protocol may offer only those:
        an HTTP server asks for a password only if some checker checks passwords)."""
        found: list[Any] = []
        for checker in self.checkers:
            found.extend(i for i in checker.credential_interfaces if i not in found)
        return found

    def accepts(self, interface: Any) -> bool:
        """Whether some checker understands credentials providing ``interface``."""
        return any(interface.isOrExtends(i) for i in self.credential_interfaces)

    async def login(self, credentials: Any, mind: Any = None,
                    *interfaces: Any) -> tuple[Any, Any, Callable[[], Any]]:
        """Return ``(interface, avatar, logout)`` for ``credentials``.

        Raise ``UnauthorizedLogin`` (or its subclass ``UnhandledCredentials`` when no checker
        understands these credentials) ``failure_delay`` seconds after the call, or
        ``LoginThrottled`` at once if a checker could not check them now.
        """
        started = asyncio.get_running_loop().time()
        throttled: LoginThrottled | None = None
        matching = [checker for checker in self.checkers
                    if any(i.providedBy(credentials) for i in checker.credential_interfaces)]
        if not matching:
            await self._pad(started)
            raise UnhandledCredentials(
                f"no checker accepts {type(credentials).__name__} credentials")
        for checker in matching:
            try:
                avatar_id = await checker.request_avatar_id(credentials)
            except LoginThrottled as error:
                throttled = throttled or error
                continue
            except UnauthorizedLogin:
                continue
            break
        else:
            if throttled is not None:
                raise throttled
            await self._pad(started)
            raise UnauthorizedLogin()
        result = self.realm.request_avatar(avatar_id, mind, *interfaces)
        if inspect.isawaitable(result):
            result = await result
        interface, avatar, logout = result
        return interface, avatar, logout

    async def _pad(self, started: float) -> None:
        """Sleep until ``failure_delay`` seconds after ``started`` (loop time)."""
        remaining = started + self.failure_delay - asyncio.get_running_loop().time()
        if remaining > 0:
            await asyncio.sleep(remaining)


def _no_logout() -> None:
    """Logging out of a UsernameRealm avatar has nothing to release."""


@implementer(IRealm)
class UsernameRealm:
    """A realm whose avatar is the avatar id itself: the user name (or ``ANONYMOUS``).

    Enough for a server that only needs to know who is there (to allow a request and log the
    user); the interface returned is the first one asked for, or None.
    """

    def __repr__(self) -> str:
        return "UsernameRealm()"

    def request_avatar(self, avatar_id: Any, mind: Any,
                       *interfaces: Any) -> tuple[Any, Any, Callable[[], None]]:
        return (interfaces[0] if interfaces else None), avatar_id, _no_logout


#: Another name for UsernameRealm.
AvatarRealm = UsernameRealm
