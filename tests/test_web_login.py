"""The login seam (``dropins.web.login``): sessions, idle timeout, CSRF, Basic, throttling."""

from __future__ import annotations

import asyncio
import base64

import pytest

from dropins.cred import InMemoryUsernamePasswordChecker, Portal, UsernameRealm
from dropins.cred.throttle import FailureThrottle
from dropins.web.login import LoginGate, LoginRefused, cookie_value


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _gate(clock: Clock, **kwargs: object) -> LoginGate:
    portal = Portal(UsernameRealm(), [InMemoryUsernamePasswordChecker({"alice": "secret"})],
                    failure_delay=0)
    return LoginGate(portal, idle_timeout=60, clock=clock, **kwargs)  # type: ignore[arg-type]


def _cookie(gate: LoginGate, session: object) -> list[tuple[bytes, bytes]]:
    _name, value = gate.set_cookie(session, secure=False)  # type: ignore[arg-type]
    return [(b"Cookie", b"other=1; " + value.split(b";", 1)[0])]


def test_a_session_lasts_while_used_and_ends_when_idle() -> None:
    clock = Clock()
    gate = _gate(clock)
    session = gate.open_session("alice")
    headers = _cookie(gate, session)
    clock.now += 50
    assert gate.session_of(headers) is session  # used: its idle time starts again
    clock.now += 50
    assert gate.session_of(headers) is session
    clock.now += 61
    assert gate.session_of(headers) is None
    assert gate.session_of([(b"Cookie", b"dropins_session=forged")]) is None


def test_the_cookie_flags_and_logout() -> None:
    """No Max-Age on the session's cookie: the server ends an idle session, and a Max-Age of
    the idle timeout, set once at login, logged out a user who kept working after it."""
    gate = _gate(Clock())
    session = gate.open_session("alice")
    name, value = gate.set_cookie(session, secure=True)
    assert name == b"Set-Cookie"
    assert value.endswith(b"; Path=/; HttpOnly; SameSite=Strict; Secure")
    assert b"Max-Age" not in value
    assert cookie_value(_cookie(gate, session)) == session.token
    gate.close_session(session)
    assert gate.session_of(_cookie(gate, session)) is None
    assert b"Max-Age=0" in gate.set_cookie(None, secure=False)[1]


def test_csrf_is_needed_with_a_session_not_with_basic() -> None:
    gate = _gate(Clock())
    session = gate.open_session("alice")
    assert not gate.csrf_ok(session, [])
    assert not gate.csrf_ok(session, [(b"X-CSRF-Token", b"guess")])
    assert gate.csrf_ok(session, [(b"X-CSRF-Token", session.csrf.encode())])
    assert gate.csrf_ok(None, [])
    assert session.csrf != gate.open_session("alice").csrf


def test_basic_credentials_and_throttled_guesses() -> None:
    gate = _gate(Clock(), throttle=FailureThrottle(burst=2, address_burst=5))

    def basic(password: str) -> list[tuple[bytes, bytes]]:
        token = base64.b64encode(f"alice:{password}".encode())
        return [(b"Authorization", b"Basic " + token)]

    async def scenario() -> list[int]:
        user, session = await gate.authenticate(basic("secret"), "10.0.0.1")
        assert (user, session) == ("alice", None)
        statuses = []
        for _ in range(3):
            try:
                await gate.authenticate(basic("wrong"), "10.0.0.1")
            except LoginRefused as refused:
                statuses.append(refused.status)
        with pytest.raises(LoginRefused) as refused:
            await gate.authenticate([], "10.0.0.1")
        assert refused.value.status == 401
        return statuses

    assert asyncio.run(scenario()) == [401, 401, 429]


def test_basic_changes_from_another_sites_page_are_refused() -> None:
    """A browser that has cached Basic credentials for the admin's origin (a URL with
    ``user:password@``, another page of the origin that challenged) sends them with a form
    that another site posts: such a request carries ``Origin``/``Sec-Fetch-Site``, curl does not."""
    gate = _gate(Clock())
    host = [(b"Host", b"127.0.0.1:9080")]
    assert gate.csrf_ok(None, host)  # curl -u
    assert gate.csrf_ok(None, [*host, (b"Origin", b"http://127.0.0.1:9080")])
    assert gate.csrf_ok(None, [*host, (b"Sec-Fetch-Site", b"same-origin")])
    assert not gate.csrf_ok(None, [*host, (b"Origin", b"http://evil.example")])
    assert not gate.csrf_ok(None, [*host, (b"Origin", b"null")])
    assert not gate.csrf_ok(None, [*host, (b"Sec-Fetch-Site", b"cross-site")])
    assert not gate.csrf_ok(None, [*host, (b"Sec-Fetch-Site", b"same-site")])
    assert gate.same_origin(host)
    assert not gate.same_origin([*host, (b"Origin", b"http://evil.example")])
