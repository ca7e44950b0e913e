"""The built-in checker factories: ``memory``, ``file``, ``htpasswd`` and ``anonymous``.

Their plugin objects are in ``dropins.plugins.checkers``; the classes live here so that the
plugin module stays one line per type and this module can be used without the plugin system.
Importing it is cheap: the checkers and hashing libraries are imported by ``make_checker``.
"""

from __future__ import annotations

import logging
from typing import Any

from zope.interface import implementer

from dropins.cred.interfaces import IAnonymous, ICheckerFactory, IUsernamePassword
from dropins.plugin.interfaces import IPlugin

logger = logging.getLogger("dropins.cred")


@implementer(IPlugin, ICheckerFactory)
class CheckerFactory:
    """Shared plumbing: ``name`` (the plugin name) is the auth type."""

    auth_type = ""
    description = ""
    argument_help = ""
    auth_help = ""
    credential_interfaces: tuple[Any, ...] = ()

    @property
    def name(self) -> str:
        return self.auth_type

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.auth_type!r}>"

    def make_checker(self, argument: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class MemoryCheckerFactory(CheckerFactory):
    auth_type = "memory"
    description = "Users and passwords on the command line (tests only)"
    argument_help = "USER:PASS[:USER2:PASS2...]"
    credential_interfaces = (IUsernamePassword,)
    auth_help = """\
Checks user names and passwords given in the argument itself, e.g.
  --auth memory:alice:secret:bob:hunter2

The passwords are visible to every user of this machine in the process list
(ps, /proc) and stay in shell history: use it for tests and demos only.  For
anything else keep hashed passwords in a file:
  dropins passwd users.txt alice
  --auth file:users.txt"""

    def make_checker(self, argument: str) -> Any:
        from dropins.cred.checkers import InMemoryUsernamePasswordChecker
        from dropins.cred.strings import argument_error, split_arguments

        fields = split_arguments(argument)
        if argument == "" or len(fields) % 2:
            raise argument_error(self, "give a password after each user name"
                                 if argument else "no users given")
        users: dict[str, str] = {}
        for index in range(0, len(fields), 2):
            user, password = fields[index], fields[index + 1]
            if not user:
                raise argument_error(self, f"user number {index // 2 + 1} has an empty name")
            if not password:
                raise argument_error(self, f"user '{user}' has an empty password")
            if user in users:
                raise argument_error(self, f"user '{user}' is given twice")
            users[user] = password
        from dropins.options_origin import parsing_file

        if parsing_file.get() is None:  # from an application file, the process list is clean
            logger.warning("--auth memory: puts passwords on the command line, where other "
                           "users of this machine can read them in the process list; use a "
                           "password file instead: dropins passwd FILE USER, then "
                           "--auth file:FILE")
        return InMemoryUsernamePasswordChecker(users)


class FileCheckerFactory(CheckerFactory):
    auth_type = "file"
    description = "A file of user:hash lines made with dropins passwd"
    argument_help = "PATH"
    credential_interfaces = (IUsernamePassword,)
    auth_help = """\
Checks user names and passwords against PATH, a text file with one
USER:HASH a line; blank lines and lines starting with # are ignored.
Create and update entries with:
  dropins passwd PATH USER
which stores an argon2id hash (scrypt when argon2-cffi is not installed).
Hashes accepted: argon2 ($argon2id$...), bcrypt ($2b$, $2y$, $2a$) and
scrypt ($scrypt$ln=16,r=8,p=1$SALT$HASH).  A plain password instead of a
hash works but is logged as a warning.  argon2 and bcrypt need
pip install 'dropins[auth]'.

The file is re-read when it changes, so users can be added or changed while
the service runs.  If it becomes unreadable or malformed, every login is
refused (and an error logged) until it is fixed."""

    def make_checker(self, argument: str) -> Any:
        from dropins.cred.passwordfile import PasswordFileChecker

        return _file_checker(self, PasswordFileChecker, argument)


class HtpasswdCheckerFactory(CheckerFactory):
    auth_type = "htpasswd"
    description = "An Apache htpasswd file made with htpasswd -B"
    argument_help = "PATH"
    credential_interfaces = (IUsernamePassword,)
    auth_help = """\
Checks user names and passwords against an Apache htpasswd file, re-read
when it changes.  Only bcrypt entries are accepted, as written by
  htpasswd -B PATH USER
Entries in Apache's other formats (MD5 $apr1$, SHA-1 {SHA}, crypt, plain
text) are weak: they are skipped with a warning naming the line and user,
and those users cannot log in until their entry is recreated with -B.
Needs the bcrypt package: pip install 'dropins[auth]'."""

    def make_checker(self, argument: str) -> Any:
        from dropins.cred.passwordfile import HtpasswdChecker

        return _file_checker(self, HtpasswdChecker, argument)


class AnonymousCheckerFactory(CheckerFactory):
    auth_type = "anonymous"
    description = "Let clients in without a password"
    argument_help = ""
    credential_interfaces = (IAnonymous,)
    auth_help = """\
Accepts clients that ask for anonymous access (for example an HTTP request
without credentials), as the anonymous user.  Combine it with a password
type to let both in:
  --auth anonymous --auth file:users.txt
It takes no argument."""

    def make_checker(self, argument: str) -> Any:
        from dropins.cred.checkers import AllowAnonymousChecker
        from dropins.cred.strings import argument_error

        if argument:
            raise argument_error(self, "it takes no argument")
        return AllowAnonymousChecker()


def _file_checker(factory: Any, checker_class: Any, argument: str) -> Any:
    from dropins.cred.passwordfile import PasswordFileError
    from dropins.cred.strings import argument_error, unescape

    path = unescape(argument)
    if not path:
        raise argument_error(factory, "no path given")
    try:
        return checker_class(path)
    except PasswordFileError as error:
        from dropins.options import UsageError

        raise UsageError(str(error)) from None
