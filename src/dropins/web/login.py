"""A login seam for browser admins: form login, session cookie, CSRF token, HTTP Basic.

Made for the application admin (``dropins.admin``) and meant to be reused by any other admin
page served by dropins (a chat server's web admin): it knows nothing of what it protects.

* A form (or JSON) login checks the user name and password through a ``dropins.cred``
  portal, after taking a token from a ``FailureThrottle`` (as every other cred use does), and
  opens a *session*: a random token in a cookie that is ``HttpOnly`` (no script reads it),
  ``SameSite=Strict`` (no other site's page sends it) and ``Secure`` on TLS.
* Each session has its own CSRF token, which the page reads from ``GET /api/session`` and
  sends back in ``X-CSRF-Token`` on every change; SameSite alone is not enough (older
  browsers, sibling subdomains).
* Sessions end after ``idle_timeout`` seconds without a request, or at logout.
* Scripts may send HTTP Basic credentials instead (``curl -u``) and need no CSRF token.  The
  server never answers with a ``WWW-Authenticate`` challenge, but a browser may still hold
  Basic credentials for the origin (typed as ``http://user:pw@host/``, or cached from another
  page on the same host that did challenge) and would send them with another site's form.  So
  a Basic change, and a form login, is refused when the browser says it comes from another
  origin (``Origin`` not this host, or ``Sec-Fetch-Site`` cross-site/same-site); scripts send
  neither header.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

from dropins.web.auth import parse_basic

__all__ = ["LoginGate", "LoginRefused", "Session", "cookie_value"]

COOKIE = "dropins_session"
#: Sessions kept at most; the least recently used go first.
MAX_SESSIONS = 1000


class LoginRefused(Exception):
    """Why a request is not let in: an HTTP status (401, 429, 503) and a one-line message."""

    def __init__(self, status: int, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class Session:
    """One logged-in browser: its user, its CSRF token and when it was last used."""

    __slots__ = ("csrf", "last_seen", "token", "user")

    def __init__(self, user: str, now: float) -> None:
        self.user = user
        self.token = secrets.token_urlsafe(32)
        self.csrf = secrets.token_urlsafe(32)
        self.last_seen = now


def cookie_value(headers: list[tuple[bytes, bytes]], name: str = COOKIE) -> str | None:
    """The value of cookie ``name`` in a request's ``Cookie`` headers, or None."""
    for header, value in headers:
        if header.lower() != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            key, _, text = part.strip().partition("=")
            if key == name:
                return text
    return None


class LoginGate:
    """Checks logins through ``portal`` and keeps the sessions they open."""

    def __init__(self, portal: Any, *, idle_timeout: float = 900.0, throttle: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from dropins.cred.throttle import FailureThrottle

        self.portal = portal
        self.idle_timeout = idle_timeout
        self.throttle = FailureThrottle() if throttle is None else throttle
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    async def check_password(self, user: str, password: str, address: Any) -> str:
        """The avatar id of a right password; ``LoginRefused`` otherwise (429 when throttled)."""
        from dropins.cred.credentials import UsernamePassword
        from dropins.cred.errors import LoginThrottled, UnauthorizedLogin

        wait = self.throttle.attempt(address, user)
        if wait:
            raise LoginRefused(429, "too many failed logins: try again later", wait)
        try:
            _interface, avatar, _logout = await self.portal.login(
                UsernamePassword(user, password), None)
        except LoginThrottled:
            self.throttle.give_back(address, user)
            raise LoginRefused(503, "too many logins at once: try again", 1.0)
        except UnauthorizedLogin:
            raise LoginRefused(401, "wrong user name or password")
        self.throttle.give_back(address, user)
        return str(getattr(avatar, "name", None) or user)

    def open_session(self, user: str) -> Session:
        now = self._clock()
        self._forget_idle(now)
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda session: session.last_seen)
            del self._sessions[oldest.token]
        session = Session(user, now)
        self._sessions[session.token] = session
        return session

    def close_session(self, session: Session) -> None:
        self._sessions.pop(session.token, None)

    def session_of(self, headers: list[tuple[bytes, bytes]]) -> Session | None:
        """The live session named by the request's cookie (touched), or None."""
        token = cookie_value(headers)
        if not token:
            return None
        session = self._sessions.get(token)
        now = self._clock()
        if session is None:
            return None
        if now - session.last_seen > self.idle_timeout:
            del self._sessions[token]
            return None
        session.last_seen = now
        return session

    async def authenticate(self, headers: list[tuple[bytes, bytes]],
                           address: Any) -> tuple[str, Session | None]:
        """(user, session) of a request: its session cookie, else its Basic credentials
        (session None); ``LoginRefused`` if it has neither, or wrong ones."""
        session = self.session_of(headers)
        if session is not None:
            return session.user, session
        authorization = next((value for name, value in headers
                              if name.lower() == b"authorization"), None)
        basic = parse_basic(authorization)
        if basic is None:
            raise LoginRefused(401, "log in first (or send HTTP Basic credentials)")
        return await self.check_password(basic[0], basic[1], address), None

    @staticmethod
    def same_origin(headers: list[tuple[bytes, bytes]]) -> bool:
        """False when a browser says the request comes from another origin's page."""
        fields = {name.lower(): value for name, value in headers}
        if fields.get(b"sec-fetch-site", b"").lower() in (b"cross-site", b"same-site"):
            return False
        origin = fields.get(b"origin")
        if origin is None:
            return True  # a script, or an old browser on a same-origin GET
        _scheme, _sep, netloc = origin.partition(b"://")
        return bool(netloc) and netloc.lower() == fields.get(b"host", b"").lower()

    @classmethod
    def csrf_ok(cls, session: Session | None, headers: list[tuple[bytes, bytes]]) -> bool:
        """Whether a change may go ahead: sessions with their token, Basic requests unless a
        browser sent them from another origin."""
        if session is None:
            return cls.same_origin(headers)
        sent = next((value for name, value in headers if name.lower() == b"x-csrf-token"), b"")
        return hmac.compare_digest(sent, session.csrf.encode())

    def set_cookie(self, session: Session | None, secure: bool) -> tuple[bytes, bytes]:
        """The ``Set-Cookie`` header that opens ``session`` (or, with None, clears it)."""
        # A browser-session cookie: the server ends it after idle_timeout without a request
        # (a Max-Age, set once at login, would end a busy session too).
        value = session.token if session is not None else ""
        flags = "; Path=/; HttpOnly; SameSite=Strict" + ("" if session else "; Max-Age=0")
        if secure:
            flags += "; Secure"
        return b"Set-Cookie", f"{COOKIE}={value}{flags}".encode()

    def _forget_idle(self, now: float) -> None:
        for token in [token for token, session in self._sessions.items()
                      if now - session.last_seen > self.idle_timeout]:
            del self._sessions[token]
