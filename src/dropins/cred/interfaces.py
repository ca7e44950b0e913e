"""The contracts of pluggable authentication: credentials, checkers, realms, checker factories.

The flow, left to right::

    credentials --(Portal asks each matching ICredentialsChecker)--> avatar id
    avatar id   --(IRealm.request_avatar)--> (interface, avatar, logout)

A protocol turns what a client sent into credentials (``UsernamePassword``, ``Anonymous``); a
checker decides who that is without knowing anything about the application; the realm, which
knows the application, turns that identity into the object the protocol talks to.  Checkers are
chosen by the operator on the command line (``--auth TYPE:ARGS``) through ``ICheckerFactory``
plugins, so an application never hard-codes where its users live.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class ICredentials(Interface):
    """Marker: something a client presented to prove who it is."""


class IUsernamePassword(ICredentials):
    """A user name and a cleartext password, as sent by the client (HTTP Basic, a login line)."""

    username = Attribute("The user name, a str.")
    password = Attribute("The cleartext password, a str; never log, print or repr it.")

    def check_password(stored):
        """Return whether the password matches ``stored``, a password hash or a plain password.

        Recognised hashes (argon2, bcrypt, scrypt) are verified with their library; anything
        else is compared as a plain password in constant time.  May take tens of milliseconds:
        checkers call it in a worker thread.
        """


class IAnonymous(ICredentials):
    """Marker: the client asked to be let in without proving anything."""


class ICredentialsChecker(Interface):
    """Decides whether some credentials identify a user, and which one."""

    credential_interfaces = Attribute(
        "The ICredentials sub-interfaces this checker understands, a tuple.")

    async def request_avatar_id(credentials):
        """Return the avatar id (usually the user name) for ``credentials``.

        Raise ``UnauthorizedLogin`` when they are wrong; the message must not say whether the
        user exists and must never contain the password.
        """


class IRealm(Interface):
    """The application's side: turns an authenticated avatar id into an avatar."""

    def request_avatar(avatar_id, mind, *interfaces):
        """Return ``(interface, avatar, logout)``, or an awaitable of it.

        ``interface`` is the one of ``interfaces`` the avatar provides (None when none was asked
        for), ``mind`` is whatever the protocol passed to ``Portal.login`` (often None), and
        ``logout`` is a callable with no arguments, called when the session ends.
        """


class ICheckerFactory(Interface):
    """A plugin that makes checkers from ``--auth TYPE:ARGS`` strings.

    Plugins providing it live in the ``dropins.plugins`` package (or its entry-point group), so a
    third-party distribution adds an authentication type with no change to any application.
    """

    auth_type = Attribute("The TYPE before the first colon of --auth, e.g. 'memory'.")
    auth_help = Attribute("Several lines for --help-auth-type: what it checks, examples, caveats.")
    argument_help = Attribute("The argument format, one line, e.g. 'USER:PASS[:USER:PASS...]'.")
    credential_interfaces = Attribute("The ICredentials sub-interfaces its checkers accept.")

    def make_checker(argument):
        """Return an ICredentialsChecker for ``argument``, the text after ``TYPE:``.

        ``argument`` is passed as typed, with its escapes (``\\:`` and ``\\\\``); split it with
        ``dropins.cred.split_arguments``.  Raise ``dropins.options.UsageError`` with one line
        naming the type and the expected format when the argument is wrong, never echoing a
        password.
        """
