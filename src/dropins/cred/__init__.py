"""Pluggable authentication: credentials, checkers, a portal, and ``--auth TYPE:ARGS`` options.

::

    from dropins.cred import Portal, UsernamePassword, UsernameRealm, UnauthorizedLogin

    portal = Portal(UsernameRealm(), options["auth"])          # checkers from --auth
    try:
        interface, avatar, logout = await portal.login(UsernamePassword(user, password), None)
    except UnauthorizedLogin:
        ...                                                      # refuse, say nothing more

Names are imported lazily from their home modules, so ``import dropins.cred`` is cheap and
hashing libraries load only when a hash of theirs is verified.
"""

from __future__ import annotations

from dropins._lazy import lazy_exports

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms per command

_EXPORTS: dict[str, str] = {
    "ICredentials": "dropins.cred.interfaces",
    "IUsernamePassword": "dropins.cred.interfaces",
    "IAnonymous": "dropins.cred.interfaces",
    "ICredentialsChecker": "dropins.cred.interfaces",
    "IRealm": "dropins.cred.interfaces",
    "ICheckerFactory": "dropins.cred.interfaces",
    "UsernamePassword": "dropins.cred.credentials",
    "Anonymous": "dropins.cred.credentials",
    "ANONYMOUS": "dropins.cred.credentials",
    "UnauthorizedLogin": "dropins.cred.errors",
    "UnhandledCredentials": "dropins.cred.errors",
    "LoginThrottled": "dropins.cred.errors",
    "Portal": "dropins.cred.portal",
    "UsernameRealm": "dropins.cred.portal",
    "AvatarRealm": "dropins.cred.portal",
    "InMemoryUsernamePasswordChecker": "dropins.cred.checkers",
    "AllowAnonymousChecker": "dropins.cred.checkers",
    "PasswordFileChecker": "dropins.cred.passwordfile",
    "HtpasswdChecker": "dropins.cred.passwordfile",
    "PasswordFileError": "dropins.cred.passwordfile",
    "hash_password": "dropins.cred.hashing",
    "verify_password": "dropins.cred.hashing",
    "AuthOptions": "dropins.cred.auth_options",
    "parse_auth": "dropins.cred.strings",
    "split_arguments": "dropins.cred.strings",
    "unescape": "dropins.cred.strings",
    "argument_error": "dropins.cred.strings",
    "checker_factories": "dropins.cred.strings",
}

__all__ = [
    "ANONYMOUS",
    "AllowAnonymousChecker",
    "Anonymous",
    "AuthOptions",
    "AvatarRealm",
    "HtpasswdChecker",
    "IAnonymous",
    "ICheckerFactory",
    "ICredentials",
    "ICredentialsChecker",
    "IRealm",
    "IUsernamePassword",
    "InMemoryUsernamePasswordChecker",
    "LoginThrottled",
    "PasswordFileChecker",
    "PasswordFileError",
    "Portal",
    "UnauthorizedLogin",
    "UnhandledCredentials",
    "UsernamePassword",
    "UsernameRealm",
    "argument_error",
    "checker_factories",
    "hash_password",
    "parse_auth",
    "split_arguments",
    "unescape",
    "verify_password",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from dropins.cred.auth_options import AuthOptions
    from dropins.cred.checkers import AllowAnonymousChecker, InMemoryUsernamePasswordChecker
    from dropins.cred.credentials import ANONYMOUS, Anonymous, UsernamePassword
    from dropins.cred.errors import LoginThrottled, UnauthorizedLogin, UnhandledCredentials
    from dropins.cred.hashing import hash_password, verify_password
    from dropins.cred.interfaces import (
        IAnonymous,
        ICheckerFactory,
        ICredentials,
        ICredentialsChecker,
        IRealm,
        IUsernamePassword,
    )
    from dropins.cred.passwordfile import HtpasswdChecker, PasswordFileChecker, PasswordFileError
    from dropins.cred.portal import AvatarRealm, Portal, UsernameRealm
    from dropins.cred.strings import (
        argument_error,
        checker_factories,
        parse_auth,
        split_arguments,
        unescape,
    )
