"""Portal: checkers in order, the realm's avatar, refusal after a delay, nothing leaked."""

from __future__ import annotations

import asyncio
import time

import pytest
from zope.interface import Interface, implementer
from zope.interface.verify import verifyObject

from dropins.cred import (
    ANONYMOUS,
    AllowAnonymousChecker,
    Anonymous,
    IAnonymous,
    ICredentialsChecker,
    InMemoryUsernamePasswordChecker,
    IRealm,
    IUsernamePassword,
    Portal,
    UnauthorizedLogin,
    UnhandledCredentials,
    UsernamePassword,
    UsernameRealm,
)


class IGreeter(Interface):
    """What the test realm's avatars provide."""


class RecordingRealm:
    """An async realm that builds a fresh avatar per login and records logouts."""

    def __init__(self):
        self.logged_out = []

    async def request_avatar(self, avatar_id, mind, *interfaces):
        assert IGreeter in interfaces
        avatar = {"user": avatar_id, "mind": mind}
        return IGreeter, avatar, lambda: self.logged_out.append(avatar_id)


def run(coroutine):
    return asyncio.run(coroutine)


def test_built_in_objects_provide_their_interfaces():
    verifyObject(ICredentialsChecker, InMemoryUsernamePasswordChecker({"a": "b"}))
    verifyObject(ICredentialsChecker, AllowAnonymousChecker())
    verifyObject(IRealm, UsernameRealm())
    verifyObject(IUsernamePassword, UsernamePassword("a", "b"))


def test_login_returns_the_realm_avatar_and_logout():
    realm = RecordingRealm()
    portal = Portal(realm, [InMemoryUsernamePasswordChecker({"alice": "secret"})])
    interface, avatar, logout = run(portal.login(UsernamePassword("alice", "secret"), "mind",
                                                 IGreeter))
    assert interface is IGreeter
    assert avatar == {"user": "alice", "mind": "mind"}
    logout()
    assert realm.logged_out == ["alice"]


def test_username_realm_avatar_is_the_user_name():
    portal = Portal(UsernameRealm(), [InMemoryUsernamePasswordChecker({"alice": "secret"})])
    assert run(portal.login(UsernamePassword("alice", "secret")))[:2] == (None, "alice")
    interface, avatar, logout = run(portal.login(UsernamePassword("alice", "secret"), None,
                                                 IGreeter))
    assert (interface, avatar, logout()) == (IGreeter, "alice", None)


def test_checkers_are_tried_in_order_until_one_accepts():
    first = InMemoryUsernamePasswordChecker({"alice": "one"})
    second = InMemoryUsernamePasswordChecker({"alice": "two", "bob": "three"})
    portal = Portal(UsernameRealm(), [first, second, AllowAnonymousChecker()],
                    failure_delay=0)
    assert run(portal.login(UsernamePassword("alice", "one")))[1] == "alice"
    assert run(portal.login(UsernamePassword("alice", "two")))[1] == "alice"
    assert run(portal.login(UsernamePassword("bob", "three")))[1] == "bob"
    assert run(portal.login(Anonymous()))[1] is ANONYMOUS
    with pytest.raises(UnauthorizedLogin):
        run(portal.login(UsernamePassword("alice", "three")))


def test_unhandled_credentials_are_an_unauthorized_login():
    portal = Portal(UsernameRealm(), [InMemoryUsernamePasswordChecker({"a": "b"})],
                    failure_delay=0)
    with pytest.raises(UnhandledCredentials) as caught:
        run(portal.login(Anonymous()))
    assert isinstance(caught.value, UnauthorizedLogin)
    assert portal.accepts(IUsernamePassword)
    assert not portal.accepts(IAnonymous)
    assert portal.credential_interfaces == [IUsernamePassword]


def test_failed_login_waits_the_failure_delay_without_blocking_others():
    portal = Portal(UsernameRealm(), [InMemoryUsernamePasswordChecker({"alice": "secret"})],
                    failure_delay=0.3)

    async def scenario():
        started = time.monotonic()
        failing = asyncio.ensure_future(portal.login(UsernamePassword("alice", "wrong")))
        await asyncio.sleep(0)
        # A good login meanwhile is answered at once, not after the other's delay.
        assert (await portal.login(UsernamePassword("alice", "secret")))[1] == "alice"
        good_done = time.monotonic() - started
        with pytest.raises(UnauthorizedLogin) as caught:
            await failing
        return good_done, time.monotonic() - started, caught.value

    good_done, failed_done, error = run(scenario())
    assert failed_done >= 0.3
    assert good_done < failed_done
    assert str(error) == "login failed"


def test_refusal_says_nothing_about_the_user_or_password():
    portal = Portal(UsernameRealm(), [InMemoryUsernamePasswordChecker({"alice": "secret"})],
                    failure_delay=0)
    messages = set()
    for user, password in [("alice", "wrong-pw"), ("mallory", "secret")]:
        with pytest.raises(UnauthorizedLogin) as caught:
            run(portal.login(UsernamePassword(user, password)))
        messages.add(str(caught.value))
    assert messages == {"login failed"}


def test_portal_rejects_bad_configuration():
    with pytest.raises(ValueError):
        Portal(UsernameRealm(), failure_delay=-1)

    @implementer(ICredentialsChecker)
    class NoInterfaces:
        credential_interfaces = ()

    with pytest.raises(TypeError, match="declares no credential_interfaces"):
        Portal(UsernameRealm(), [NoInterfaces()])
