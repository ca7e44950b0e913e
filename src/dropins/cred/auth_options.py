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
from typing import Any, ClassVar, NoReturn

from dropins.cred.strings import (
    checker_factories,
    describe_credentials,
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
    def _supports(cls, credential_interfaces: Sequence[Any]) -> bool:
        """Whether the command can present credentials that ``credential_interfaces`` accept."""
        supported = cls.supported_credential_interfaces
        if supported is None:
            return True
        return any(offered.isOrExtends(accepted) for offered in supported
                   for accepted in credential_interfaces)

    @classmethod
    def supported_factories(cls) -> dict[str, Any]:
        """The checker factories this command can use, by auth type."""
        return {auth_type: factory for auth_type, factory in checker_factories().items()
                if cls._supports(factory.credential_interfaces)}

    @classmethod
    def _refuse_unsupported(cls, auth_type: str, prog: str) -> None:
        """UsageError for a type that exists but that this command cannot use; else nothing.

        Unknown types are left to ``find_checker_factory``, which lists the usable ones.
        """
        factory = checker_factories().get(auth_type)
        if factory is None or cls._supports(factory.credential_interfaces):
            return
        assert cls.supported_credential_interfaces is not None
        checks = describe_credentials(cls.supported_credential_interfaces)
        usable = ", ".join(cls.supported_factories()) or "none installed"
        raise UsageError(f"auth type '{auth_type}' cannot be used by '{prog}' (it checks:"
                         f" {checks}); usable types: {usable} (see --help-auth)")

    @classmethod
    def parse_auth(cls, text: str, prog: str = "dropins") -> Any:
        """``parse_auth`` limited to the types this command can use (``prog`` names it)."""
        cls._refuse_unsupported(text.partition(":")[0].strip(), prog)
        return parse_auth(text, cls.supported_factories())

    @classmethod
    def extend_parser(cls, parser: argparse.ArgumentParser) -> None:
        super().extend_parser(parser)
        options_class = cls
        prog = parser.prog

        def auth(text: str) -> Any:
            try:
                return options_class.parse_auth(text, prog)
            except UsageError as error:
                raise argparse.ArgumentTypeError(str(error)) from None

        for action in parser._actions:
            if action.dest == "auth":  # check types against what this command supports
                action.type = auth

        class HelpAuth(argparse.Action):
            def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any,
                         option_string: str | None = None) -> None:
                sys.stdout.write(format_auth_table(options_class.supported_factories()))
                parser.exit(0)

        class HelpAuthType(argparse.Action):
            def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any,
                         option_string: str | None = None) -> None:
                try:
                    options_class._refuse_unsupported(str(values), prog)
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
        _one_hint_only(parser)

    def validate(self) -> None:
        super().validate()
        for checker in self.get("auth", []):
            if not self._supports(checker.credential_interfaces):
                assert self.supported_credential_interfaces is not None
                raise UsageError(
                    "--auth: a checker for "
                    f"{describe_credentials(checker.credential_interfaces)} cannot be used by"
                    f" this command (it checks: "
                    f"{describe_credentials(self.supported_credential_interfaces)})")

    def make_portal(self, realm: Any = None, **portal_options: Any) -> Any:
        """A Portal over the ``--auth`` checkers and ``realm`` (default: UsernameRealm)."""
        from dropins.cred.portal import Portal, UsernameRealm

        return Portal(UsernameRealm() if realm is None else realm, self.get("auth", []),
                      **portal_options)


def _one_hint_only(parser: argparse.ArgumentParser) -> None:
    """Let errors that already end with a hint in parentheses (``(see --help-auth)``,
    ``(create it with: dropins passwd ...)``) go without the parser's own
    ``(see 'PROG --help')``, so that a message ends with one hint, not two."""
    general_error = parser.error

    def error(message: str) -> NoReturn:
        if message.rstrip().endswith(")"):
            parser.exit(2, f"{parser.prog}: error: {message}\n")
        general_error(message)

    parser.error = error  # type: ignore[method-assign]
