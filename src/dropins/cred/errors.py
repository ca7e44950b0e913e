"""Why a login failed.  Messages are deliberately vague: they never say whether a user exists,
and never contain a password."""

from __future__ import annotations


class UnauthorizedLogin(Exception):
    """The credentials were refused (wrong password, unknown user, ...)."""

    def __init__(self, message: str = "login failed") -> None:
        super().__init__(message)


class UnhandledCredentials(UnauthorizedLogin):
    """No configured checker understands this kind of credentials (e.g. anonymous access when
    only ``--auth file:...`` was given).  A subclass of UnauthorizedLogin, so that a protocol
    catching that one refuses these too."""


class LoginThrottled(UnauthorizedLogin):
    """The login was not checked at all, because too many were failing or waiting: the client
    should try again after ``retry_after`` seconds (HTTP answers 429 or 503, not 401)."""

    def __init__(self, retry_after: float, message: str = "too many logins; try again later"
                 ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
