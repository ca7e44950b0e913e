"""What a client presents: a user name and password, or a request for anonymous access."""

from __future__ import annotations

from typing import Final

from zope.interface import implementer

from dropins.cred.interfaces import IAnonymous, IUsernamePassword


@implementer(IUsernamePassword)
class UsernamePassword:
    """A user name and a cleartext password.

    The password is kept out of ``repr()`` so that it cannot end up in a log line or a traceback
    by accident; compare it only through ``check_password``.
    """

    __slots__ = ("password", "username")

    def __init__(self, username: str, password: str) -> None:
        if not isinstance(username, str) or not isinstance(password, str):
            raise TypeError("UsernamePassword takes a str user name and a str password")
        self.username = username
        self.password = password

    def __repr__(self) -> str:
        return f"UsernamePassword(username={self.username!r}, password=<hidden>)"

    def check_password(self, stored: str) -> bool:
        """Whether the password matches ``stored`` (an argon2/bcrypt/scrypt hash, or plain)."""
        from dropins.cred.hashing import verify_password

        return verify_password(self.password, stored)


@implementer(IAnonymous)
class Anonymous:
    """A request to be let in without a password (only an ``anonymous`` checker accepts it)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Anonymous()"


class _AnonymousId:
    """The avatar id of an anonymous login: distinct from every user name, falsy, and shown as
    ``-`` (the placeholder of access logs) by ``str()``."""

    __slots__ = ()
    _instance: _AnonymousId | None = None

    def __new__(cls) -> _AnonymousId:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ANONYMOUS"

    def __str__(self) -> str:
        return "-"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "ANONYMOUS"


#: The avatar id that anonymous checkers return.
ANONYMOUS: Final = _AnonymousId()
