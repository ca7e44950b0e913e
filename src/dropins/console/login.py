"""Password logins for the console, through the ``--auth`` portal and its failure throttle.

The same rules as every other password check in dropins (``dropins.web.auth``): each guess
takes a token from its client's buckets (per address and user, and per address) before the
password is hashed, a right password gives it back, and a client out of tokens is refused
without a check.  The portal itself delays every failure (``failure_delay``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable
from typing import Any

__all__ = ["LoginDenied", "PasswordLogin"]

log = logging.getLogger("dropins.console")


class LoginDenied(Exception):
    """A refused login; ``final`` when the client should be disconnected, not asked again."""

    def __init__(self, message: str, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


class PasswordLogin:
    """Checks a user name and password against ``portal``; see the module docstring."""

    def __init__(self, portal: Any, throttle: Any = None) -> None:
        from dropins.cred.throttle import FailureThrottle

        self.portal = portal
        self.throttle = FailureThrottle() if throttle is None else throttle

    async def login(self, address: Hashable, user: str, password: str) -> str:
        """The avatar's name for a right password; else ``LoginDenied``."""
        from dropins.cred import LoginThrottled, UnauthorizedLogin, UsernamePassword

        wait = self.throttle.attempt(address, user)
        if wait:
            log.warning("console: login of %r from %s refused: too many failed logins",
                        user, address)
            raise LoginDenied(f"too many failed logins; try again in {math.ceil(wait)} s",
                              final=True)
        try:
            _, avatar, logout = await self.portal.login(UsernamePassword(user, password), None)
        except LoginThrottled:
            self.throttle.give_back(address, user)
            raise LoginDenied("too many logins at once; try again later", final=True) from None
        except UnauthorizedLogin:
            log.warning("console: failed login of %r from %s", user, address)
            raise LoginDenied("Login incorrect") from None
        self.throttle.give_back(address, user)
        logout()  # the avatar is only a name: nothing to hold while the session lasts
        return avatar if isinstance(avatar, str) else user
