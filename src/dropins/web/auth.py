"""HTTP Basic authentication in front of any handler, checked through a ``dropins.cred`` portal.

Every request must carry ``Authorization: Basic ...`` credentials that the portal accepts,
or it is answered 401 with a ``WWW-Authenticate`` challenge (RFC 7617, UTF-8).  When the
portal accepts anonymous logins (``--auth anonymous``) a request without credentials is let
in as anonymous.  The user name goes to the access log and to the application (WSGI
``REMOTE_USER``, ASGI ``scope["user"]``).  A wrong password is answered only after the
portal's failure delay, which slows guessing without holding up other clients.

Guessing is limited further, without costing the server a hash: after
``MAX_FAILURES_PER_CONNECTION`` failures a connection is closed with its 401, and every login
with credentials first takes a token from its client's buckets (per address and user name, and
per address: ``dropins.cred.throttle``), before the password is checked, so that parallel
guesses are counted too; a client whose bucket is empty is answered 429 with ``Retry-After``.
A right password gives its token back.  When the server has more logins to hash than it can
queue, a login is answered 503 with ``Retry-After`` (not 401: the password may well be right)
and gets its token back, since nothing was checked.

Basic credentials travel in clear text, which is why ``dropins web`` refuses ``--auth`` on a
TCP listener reachable from other machines unless ``--insecure-auth`` is given
(``insecure_listeners`` below finds them).
"""

from __future__ import annotations

import binascii
import ipaddress
import math
import weakref
from typing import Any

from dropins.web.exchange import Exchange

__all__ = ["BasicAuth", "insecure_listeners", "parse_basic"]

CHALLENGE = [(b"WWW-Authenticate", b'Basic realm="dropins", charset="UTF-8"')]
#: Failed logins one connection may make; the last 401 closes it.
MAX_FAILURES_PER_CONNECTION = 3


def parse_basic(header: bytes | None) -> tuple[str, str] | None:
    """The (user, password) of a Basic ``Authorization`` header, or None if it is not one."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = binascii.a2b_base64(token.strip(), strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        text = decoded.decode("latin-1")  # what older clients send
    user, colon, password = text.partition(":")
    if not colon:
        return None
    return user, password


class BasicAuth:
    """A handler that lets a request through to ``handler`` only once the portal accepts it."""

    def __init__(self, handler: Any, portal: Any, throttle: Any = None) -> None:
        self.handler = handler
        self.portal = portal
        self.allow = getattr(handler, "allow", None)
        from dropins.cred.interfaces import IAnonymous
        from dropins.cred.throttle import FailureThrottle

        self.allow_anonymous = bool(portal.accepts(IAnonymous))
        self.throttle = FailureThrottle() if throttle is None else throttle
        self._failures: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    def __call__(self, exchange: Exchange) -> Any:
        return self._serve(exchange)

    async def _serve(self, exchange: Exchange) -> None:
        from dropins.cred import Anonymous, LoginThrottled, UnauthorizedLogin, UsernamePassword

        credentials = parse_basic(exchange.header(b"authorization"))
        if credentials is None and not self.allow_anonymous:
            exchange.respond_error(401, headers=CHALLENGE)
            return
        address = exchange.client[0]
        if credentials is not None:
            wait = self.throttle.attempt(address, credentials[0])
            if wait:
                exchange.respond_error(429, "too many failed logins; try again later",
                                       headers=_retry_after(wait))
                return
        try:
            if credentials is None:
                _, avatar, logout = await self.portal.login(Anonymous(), None)
                exchange.user = None
            else:
                _, avatar, logout = await self.portal.login(UsernamePassword(*credentials), None)
                exchange.user = avatar if isinstance(avatar, str) else credentials[0]
                self.throttle.give_back(address, credentials[0])
        except LoginThrottled as error:
            if credentials is not None:
                self.throttle.give_back(address, credentials[0])
            if not exchange.finished:
                exchange.respond_error(503, "too many logins at once",
                                       headers=_retry_after(error.retry_after))
            return
        except UnauthorizedLogin:
            failures = self._failures[exchange.connection] = (
                self._failures.get(exchange.connection, 0) + 1)
            if failures >= MAX_FAILURES_PER_CONNECTION:
                exchange.keep_alive = False
            if not exchange.finished:
                exchange.respond_error(401, headers=CHALLENGE)
            return
        try:
            pending = self.handler(exchange)
            if pending is not None:
                await pending
        finally:
            logout()


def _retry_after(seconds: float) -> list[tuple[bytes, bytes]]:
    return [(b"Retry-After", str(max(1, math.ceil(seconds))).encode("ascii"))]


def insecure_listeners(endpoints: list[str]) -> list[str]:
    """The endpoint strings on which Basic credentials could be read by other machines.

    Loopback TCP, ``ssl:`` and ``unix:`` are safe; plain TCP on any other interface is not, and
    neither is a kind whose reach cannot be known here (``systemd:``, plugin kinds).
    """
    from dropins.service.endpoints import parse_endpoint

    unsafe = []
    for description in endpoints:
        kind = description.split(":", 1)[0].strip().lower()
        if kind in ("ssl", "unix"):
            continue
        if kind in ("tcp", "tcp6"):
            interface = getattr(parse_endpoint(description), "interface", "") or ""
            if _is_loopback(interface):
                continue
        unsafe.append(description)
    return unsafe


def _is_loopback(interface: str) -> bool:
    if interface == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface.strip("[]")).is_loopback
    except ValueError:
        return False
