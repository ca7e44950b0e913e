"""``AuthOptions``: the options mixin that gives a command ``--auth TYPE:ARGS``.

A service maker's options inherit it::

    class Options(AuthOptions):
        port = Parameter(short="p", default=8021, type=int)

and its ``make_service`` gets ready checkers in ``options["auth"]`` (a list, empty when no
``--auth`` was given), or a whole portal from ``options.make_portal(realm)``.  The operator
picks where users come from (``--auth file:users.txt``), lists the types with ``--help-auth``
and reads one type's help with ``--help-auth-type TYPE``; the application never hard-codes it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

from dropins.cred.strings import (
    checker_factories,
    format_auth_table,
    format_auth_type_help,
    parse_auth,
)
from dropins.options import Options, Parameter, UsageError

__all__ = ["AuthOptions"]


class AuthOptions(Options):
    """Adds ``--auth`` (repeatable), ``--help-auth`` and ``--help-auth-type TYPE``.

    Set ``supported_credential_interfaces`` to the credential interfaces the command can
    present (e.g. ``(IUsernamePassword,)``) to refuse, and hide from ``--help-auth``, types it
    could never use; None accepts every type.  A subclass that overrides ``validate`` must call
    ``super().validate()``.
    """

    supported_credential_interfaces: ClassVar[Sequence[Any] | None] = None

    auth = Parameter(
        multiple=True, metavar="TYPE:ARGS", type=parse_auth,
        help="check logins with this authentication type, e.g. file:users.txt or"
             " memory:alice:secret; repeat to combine (see --help-auth)")

    @classmethod
    def _supports(cls, factory: Any) -> bool:
        supported = cls.supported_credential_interfaces
        if supported is None:
            return True
        return any(offered.isOrExtends(accepted) for offered in supported
                   for accepted in factory.credential_interfaces)

    @classmethod
    def supported_factories(cls) -> dict[str, Any]:
        """The checker factories this command can use, by auth type."""
        return {auth_type: factory for auth_type, factory in checker_factories().items()
                if cls._supports(factory)}

    @classmethod
    def extend_parser(cls, parser: argparse.ArgumentParser) -> None:
        super().extend_parser(parser)
        options_class = cls

        class HelpAuth(argparse.Action):
            def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any,
                         option_string: str | None = None) -> None:
                sys.stdout.write(format_auth_table(options_class.supported_factories()))
                parser.exit(0)

        class HelpAuthType(argparse.Action):
            def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any,
                         option_string: str | None = None) -> None:
                try:
                    text = format_auth_type_help(str(values),
                                                 options_class.supported_factories())
                except UsageError as error:
                    parser.error(str(error))
                sys.stdout.write(text)
                parser.exit(0)

        parser.add_argument("--help-auth", action=HelpAuth, nargs=0,
                            help="list the authentication types and exit")
        parser.add_argument("--help-auth-type", action=HelpAuthType, metavar="TYPE",
                            help="explain one authentication type and exit")

    def validate(self) -> None:
        super().validate()
        if self.supported_credential_interfaces is None:
            return
        for checker in self.get("auth", []):
            if not any(offered.isOrExtends(accepted)
                       for offered in self.supported_credential_interfaces
                       for accepted in checker.credential_interfaces):
                accepted = ", ".join(i.__name__ for i in checker.credential_interfaces)
                raise UsageError(f"--auth: this command cannot use {checker!r}"
                                 f" (it checks {accepted}; see --help-auth)")

    def make_portal(self, realm: Any = None, **portal_options: Any) -> Any:
        """A Portal over the ``--auth`` checkers and ``realm`` (default: UsernameRealm)."""
        from dropins.cred.portal import Portal, UsernameRealm

        return Portal(UsernameRealm() if realm is None else realm, self.get("auth", []),
                      **portal_options)
