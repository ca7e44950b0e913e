"""Declarative command-line options for plugins, built on argparse.

A service maker describes its command line as a class::

    class Options(dropins.Options):
        description = "Serve the classic echo protocol."
        port = Parameter(short="p", default=1235, type=int, help="TCP port to listen on.")
        verbose = Flag(short="v", help="Log every connection.")
        listen = Parameter(multiple=True, metavar="ENDPOINT", help="Where to listen.")
        paths = Argument(nargs="*", help="Files to serve.")

        def validate(self) -> None:
            if self["port"] < 0:
                raise UsageError("--port must not be negative")

``Options.parse(argv, prog)`` returns an instance, which is a plain ``dict`` of the values keyed
by attribute name (``options["port"]``; ``options.port`` works too), so ``make_service`` receives
a mapping.  argparse is used underneath because it is in the standard library, fast to import and
well understood; every command gets ``--help`` for free, and every usage error is printed as a
single line that ends with where to get help, with exit status 2.

Mixins add options by declaring attributes like any other options class, and may add arguments
that need argparse actions (``--help-auth`` prints and exits) by overriding ``extend_parser``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms per command
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any, ClassVar, NoReturn

__all__ = ["Argument", "Flag", "HelpFormatter", "Option", "Options", "Parameter", "UsageError",
           "path"]

_order = itertools.count()


class UsageError(Exception):
    """Bad command-line input.  Raise it from ``validate()`` or from a ``type`` coercer.

    The runner prints its message as one line and exits with status 2.
    """


def path(text: str) -> str:
    """The ``type`` of an option whose value is a file or folder path (the text, unchanged).

    A type of its own so that an application file can tell which values are paths: those are
    made relative to the file's folder rather than the current directory (``dropins -c``).
    """
    return text


class Option:
    """A declared command-line item; its attribute name becomes the key in the options mapping."""

    def __init__(self, help: str = "", default: Any = None,
                 type: Callable[[str], Any] | None = None, choices: Sequence[Any] | None = None,
                 metavar: str | None = None) -> None:
        self.help = help
        self.default = default
        self.type = type
        self.choices = choices
        self.metavar = metavar
        self.key = ""
        self._order = next(_order)

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = name

    def __get__(self, instance: Options | None, owner: type) -> Any:
        if instance is None:
            return self
        return instance.get(self.key, self.default)

    def add_to(self, parser: argparse.ArgumentParser) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _converter(self) -> Callable[[str], Any] | None:
        """Wrap ``type`` so that UsageError and ValueError messages reach the user unchanged."""
        convert = self.type
        if convert is None:
            return None

        def checked(text: str) -> Any:
            try:
                return convert(text)
            except UsageError as error:
                raise argparse.ArgumentTypeError(str(error)) from None
            except ValueError as error:
                name = getattr(convert, "__name__", "value")
                detail = f" ({error})" if str(error) and name not in {"int", "float"} else ""
                message = f"invalid {name} value: {text!r}{detail}"
                raise argparse.ArgumentTypeError(message) from None

        checked.__name__ = getattr(convert, "__name__", "value")
        return checked


def _flag_names(key: str, long: str | None, short: str | None) -> list[str]:
    """``["-p", "--port"]``: the short form first, as help texts conventionally show them."""
    long = long or "--" + key.replace("_", "-")
    if not long.startswith("--"):
        long = "--" + long
    if not short:
        return [long]
    return [short if short.startswith("-") else "-" + short, long]


class Parameter(Option):
    """An option that takes a value: ``--port 8080`` or ``-p 8080``.

    ``long`` defaults to the attribute name with dashes for underscores.  ``multiple=True`` makes
    it repeatable and its value a list (the default then is an empty list unless given).
    """

    def __init__(self, long: str | None = None, short: str | None = None, *, default: Any = None,
                 type: Callable[[str], Any] | None = None, choices: Sequence[Any] | None = None,
                 help: str = "", metavar: str | None = None, multiple: bool = False,
                 required: bool = False) -> None:
        super().__init__(help=help, default=default, type=type, choices=choices, metavar=metavar)
        self.long = long
        self.short = short
        self.multiple = multiple
        self.required = required

    def flags(self) -> list[str]:
        return _flag_names(self.key, self.long, self.short)

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        help_text = self.help
        if self.default not in (None, [], ()) and not self.multiple:
            help_text = f"{help_text} (default: {self.default})".strip()
        kwargs: dict[str, Any] = {
            "dest": self.key,
            "help": help_text,
            "metavar": self.metavar,
            "choices": self.choices,
            "required": self.required,
        }
        converter = self._converter()
        if converter is not None:
            kwargs["type"] = converter
        if self.multiple:
            kwargs["action"] = "append"
            kwargs["default"] = None
        else:
            kwargs["default"] = self.default
        parser.add_argument(*self.flags(), **kwargs)


class Flag(Option):
    """A boolean switch: present means True.  ``--no-listing`` is simply a flag named no_listing."""

    def __init__(self, long: str | None = None, short: str | None = None, *,
                 help: str = "") -> None:
        super().__init__(help=help, default=False)
        self.long = long
        self.short = short

    def flags(self) -> list[str]:
        return _flag_names(self.key, self.long, self.short)

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(*self.flags(), dest=self.key, action="store_true", help=self.help)


class Argument(Option):
    """A positional argument.  ``nargs`` is argparse's: None (exactly one), '?', '*' or '+'."""

    def __init__(self, *, nargs: str | int | None = None, default: Any = None,
                 type: Callable[[str], Any] | None = None, choices: Sequence[Any] | None = None,
                 help: str = "", metavar: str | None = None) -> None:
        super().__init__(help=help, default=default, type=type, choices=choices, metavar=metavar)
        self.nargs = nargs

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        kwargs: dict[str, Any] = {"help": self.help, "metavar": self.metavar or self.key.upper(),
                                  "choices": self.choices}
        if self.nargs is not None:
            kwargs["nargs"] = self.nargs
        if self.nargs in ("?", "*"):
            kwargs["default"] = self.default if self.default is not None else (
                [] if self.nargs == "*" else None)
        converter = self._converter()
        if converter is not None:
            kwargs["type"] = converter
        parser.add_argument(self.key, **kwargs)


def _terminal_width() -> int:
    """Like ``shutil.get_terminal_size`` (COLUMNS, then the terminal, else 80) without
    importing shutil, which argparse would otherwise do just for this."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(1).columns or 80
    except (OSError, ValueError):
        return 80


def help_width() -> int:
    """The width ``--help`` is wrapped to (as argparse does: the terminal's, less 2)."""
    return _terminal_width() - 2


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of the description and epilog, but wraps lines that are too long
    (keeping their indentation), so that the help reads well on a narrow terminal."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         width if width is not None else help_width())

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap  # argparse imports it to render the help anyway

        lines: list[str] = []
        for line in text.splitlines():
            if len(indent) + len(line) <= width:
                lines.append(indent + line)
                continue
            lead = indent + line[:len(line) - len(line.lstrip())]
            hanging = "  " if line.startswith(" ") else ""  # an indented item: "  name: ..."
            lines += textwrap.wrap(line.strip(), width, initial_indent=lead,
                                   subsequent_indent=lead + hanging, break_long_words=False,
                                   break_on_hyphens=False)
        return "\n".join(lines)


class RaisingParser(argparse.ArgumentParser):
    """A parser whose usage errors raise ``UsageError`` (the bare message) instead of exiting,
    for callers that report errors their own way (an application file's checks)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        """Errors printed through ``exit`` by a mixin's own ``error`` raise as well."""
        if status:
            text = (message or "").strip().removeprefix(f"{self.prog}: error: ")
            raise UsageError(text or f"exit status {status}")
        super().exit(status, message)


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are a single line naming where to get help.

    Abbreviated options are refused (``allow_abbrev=False``): otherwise ``--ws x`` is quietly
    read as ``--wsgi x``, and adding an option later changes what old command lines mean.
    Subparsers made by ``add_subparsers`` are of this class too, so they refuse them as well.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


if TYPE_CHECKING:
    _Mapping = dict[str, Any]
else:  # the same class at run time, without importing typing for ``Any``
    _Mapping = dict


#: twisted.python.usage.Options attributes that dropins would otherwise silently ignore.
_TWISTED_NAMES = frozenset({"postOptions", "parseArgs", "subCommands", "defaultSubCommand",
                            "compData", "longdesc", "synopsis"})


class Options(_Mapping):
    """Base class for declarative plugin options; an instance is the parsed mapping."""

    #: Shown under the usage line of ``--help``.
    description: ClassVar[str] = ""
    #: Shown at the end of ``--help``.
    epilog: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if any((name in _TWISTED_NAMES or name.startswith("opt_"))
               and not isinstance(value, Option) for name, value in vars(cls).items()):
            from dropins.options_lists import refuse_unported

            refuse_unported(cls)
        if "optParameters" in vars(cls) or "optFlags" in vars(cls):
            from dropins.options_lists import declarations_from_lists

            for key, option in declarations_from_lists(cls).items():
                if not isinstance(getattr(cls, key, option), Option):
                    raise TypeError(f"option name {key!r} in {cls.__qualname__} hides the"
                                    " class attribute of that name; rename the option")
                setattr(cls, key, option)
        for name, value in vars(cls).items():
            if isinstance(value, Option) and hasattr(dict, name):
                raise TypeError(f"option name {name!r} in {cls.__qualname__} hides a dict method;"
                                " rename the attribute and set long=... for the flag")
        cls._check_flags()

    @classmethod
    def _check_flags(cls) -> None:
        """Refuse, when the class is defined, flags that argparse would reject only when the
        parser is built (an "unexpected ArgumentError" at the first run): -h and --help, which
        every command has, and a flag that two options declare."""
        owners = {"-h": "--help", "--help": "--help"}
        for option in cls.declared():
            for flag in option.flags() if isinstance(option, Parameter | Flag) else ():
                owner = owners.setdefault(flag, option.key)
                if owner == option.key:
                    continue
                if owner == "--help":
                    remedy = "another short letter (or none)" if flag == "-h" else "another name"
                    raise TypeError(f"option {option.key!r} in {cls.__qualname__}: {flag} is"
                                    f" reserved for --help; choose {remedy}")
                raise TypeError(f"option {option.key!r} in {cls.__qualname__}: {flag} is"
                                f" already the flag of option {owner!r}; choose another")

    @classmethod
    def declared(cls) -> Iterator[Option]:
        """Every declared option, base classes and mixins first, each in declaration order."""
        seen: dict[str, Option] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Option):
                    seen.pop(name, None)
                    seen[name] = value
        return iter(sorted(seen.values(), key=lambda option: option._order))

    @classmethod
    def extend_parser(cls, parser: argparse.ArgumentParser) -> None:
        """Hook for mixins that need argparse features beyond declarations (call super())."""

    @classmethod
    def build_parser(cls, prog: str, raising: bool = False) -> argparse.ArgumentParser:
        """The argparse parser; with ``raising``, usage errors raise ``UsageError``."""
        parser_class = RaisingParser if raising else OneLineErrorParser
        parser = parser_class(prog=prog, description=cls.description or None,
                              epilog=cls.epilog, formatter_class=HelpFormatter)
        for option in cls.declared():
            option.add_to(parser)
        cls.extend_parser(parser)
        return parser

    @classmethod
    def parse(cls, argv: Sequence[str], prog: str = "dropins") -> Options:
        """Parse ``argv``; on bad input print one line and exit 2 (``--help`` exits 0)."""
        parser = cls.build_parser(prog)
        try:
            return cls._parse_with(parser, argv)
        except UsageError as error:
            parser.error(str(error))

    @classmethod
    def parse_or_raise(cls, argv: Sequence[str], prog: str = "dropins") -> Options:
        """Parse ``argv`` as the command line would, raising ``UsageError`` on bad input."""
        return cls._parse_with(cls.build_parser(prog, raising=True), argv)

    @classmethod
    def _parse_with(cls, parser: argparse.ArgumentParser, argv: Sequence[str]) -> Options:
        namespace = parser.parse_args(list(argv))
        values = {key: value for key, value in vars(namespace).items() if not key.startswith("_")}
        for option in cls.declared():
            if isinstance(option, Parameter) and option.multiple and values.get(option.key) is None:
                values[option.key] = list(option.default or [])
        options = cls(values)
        options.validate()
        return options

    def validate(self) -> None:
        """Check the parsed values together; raise UsageError to reject them."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def print_error_and_exit(prog: str, message: str, status: int = 2) -> NoReturn:
    """Print ``prog: error: message`` as one line on stderr and exit."""
    sys.stderr.write(f"{prog}: error: {message}\n")
    raise SystemExit(status)
