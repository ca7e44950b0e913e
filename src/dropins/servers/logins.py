"""What the protocol servers with a login share: password checks through the ``--auth``
portal with the failure throttle, server TLS contexts from ``--tls-cert/--tls-key``, and
whether a peer is on loopback (where a plaintext password cannot be sniffed off a wire).

One helper for mail, POP3, FTP and NNTP, so that every password in dropins is checked by the
same rules: a guess costs a token from the client's buckets before the password is hashed,
a right password gives it back, and the portal pads every failure to the same delay.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import Hashable
from typing import Any

from dropins.options import UsageError

__all__ = ["Logins", "is_loopback", "server_tls_context"]

log = logging.getLogger("dropins.servers")


def is_loopback(peer: Any) -> bool:
    """Whether a transport's ``peername`` is a loopback address (a unix socket counts too)."""
    if not isinstance(peer, tuple) or not peer:
        return isinstance(peer, str | bytes)  # AF_UNIX: the peer is on this machine
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on a dual-stack socket
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def server_tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """A server context for STARTTLS/STLS/AUTH TLS, or None when no certificate is given.

    A one-line UsageError when only one of the two is given or they cannot be loaded.
    """
    if not cert and not key:
        return None
    if not cert or not key:
        raise UsageError("give both --tls-cert FILE and --tls-key FILE (or neither)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "strerror", None) or error
        raise UsageError(f"cannot load --tls-cert {cert} / --tls-key {key}: {reason}") from None
    return context


class Logins:
    """Checks user names and passwords against a portal; ``None`` means nobody may log in."""

    def __init__(self, portal: Any, protocol: str, throttle: Any = None) -> None:
        from dropins.cred.throttle import FailureThrottle

        self.portal = portal
        self.protocol = protocol
        self.throttle = FailureThrottle() if throttle is None else throttle

    async def check(self, address: Hashable, user: str, password: str) -> str | None:
        """The avatar id (the user's name) for a right password, else None (logged)."""
        from dropins.cred import LoginThrottled, UnauthorizedLogin, UsernamePassword

        if self.portal is None:
            return None
        if self.throttle.attempt(address, user):
            log.warning("%s: login of %r from %s refused: too many failed logins",
                        self.protocol, user, address)
            return None
        try:
            _, avatar, logout = await self.portal.login(UsernamePassword(user, password), None)
        except LoginThrottled:
            self.throttle.give_back(address, user)
            return None
        except UnauthorizedLogin:
            log.warning("%s: failed login of %r from %s", self.protocol, user, address)
            return None
        self.throttle.give_back(address, user)
        logout()
        return avatar if isinstance(avatar, str) else user
