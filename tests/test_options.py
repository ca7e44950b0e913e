"""Declarative Options: parsing, coercion, validation, mixins and one-line usage errors."""

from __future__ import annotations

import argparse
import re

import pytest

from dropins.options import Argument, Flag, Options, Parameter, UsageError


def port_number(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise UsageError(f"port must be from 0 to 65535, got {value}")
    return value


class ServerOptions(Options):
    description = "A test server."
    port = Parameter(short="p", default=1235, type=port_number, help="TCP port.")
    listen = Parameter(multiple=True, metavar="ENDPOINT", help="Where to listen.")
    verbose = Flag(short="v", help="Say more.")
    mode = Parameter(choices=["fast", "safe"], default="safe")
    log_file = Parameter(help="A file name.")

    def validate(self) -> None:
        if self["mode"] == "fast" and self["verbose"]:
            raise UsageError("--mode fast cannot be combined with --verbose")


def test_defaults_form_a_plain_mapping() -> None:
    options = ServerOptions.parse([])
    assert dict(options) == {"port": 1235, "listen": [], "verbose": False, "mode": "safe",
                             "log_file": None}
    assert isinstance(options, dict)
    assert options.port == 1235 and options["port"] == 1235


def test_values_short_and_long_forms_and_repeats() -> None:
    options = ServerOptions.parse(["-p", "80", "--listen", "tcp:1", "--listen=unix:/s", "-v",
                                   "--log-file", "x.log"])
    assert options["port"] == 80
    assert options["listen"] == ["tcp:1", "unix:/s"]
    assert options["verbose"] is True
    assert options["log_file"] == "x.log"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["-p", "70000"], "port must be from 0 to 65535, got 70000"),
        (["-p", "eighty"], "invalid port_number value: 'eighty'"),
        (["--mode", "turbo"], "invalid choice: 'turbo'"),
        (["--mode", "fast", "-v"], "--mode fast cannot be combined with --verbose"),
        (["--nope"], "unrecognized arguments: --nope"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], fragment: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        ServerOptions.parse(argv, prog="dropins test")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("dropins test: error: ")
    assert fragment in err
    assert "(see 'dropins test --help')" in err


def test_help_lists_options_with_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        ServerOptions.parse(["--help"], prog="dropins test")
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "usage: dropins test" in out
    assert "A test server." in out
    assert "-p PORT, --port PORT" in out and "(default: 1235)" in out
    assert "--listen ENDPOINT" in out


class AuthMixin(Options):
    auth = Parameter(multiple=True, help="TYPE:ARGS")

    @classmethod
    def extend_parser(cls, parser: argparse.ArgumentParser) -> None:
        super().extend_parser(parser)
        parser.add_argument("--which", action="version", version="mixin-extension")


class MixedOptions(ServerOptions, AuthMixin):
    path = Argument(nargs="?", default=".", help="Folder.")


def test_mixins_contribute_declarations_and_parser_extensions(
        capsys: pytest.CaptureFixture[str]) -> None:
    options = MixedOptions.parse(["--auth", "memory:a:b", "srv"])
    assert options["auth"] == ["memory:a:b"]
    assert options["path"] == "srv"
    assert options["port"] == 1235
    assert MixedOptions.parse([])["path"] == "."
    with pytest.raises(SystemExit) as exited:
        MixedOptions.parse(["--which"])
    assert exited.value.code == 0
    assert "mixin-extension" in capsys.readouterr().out


def test_subclass_can_override_an_inherited_option() -> None:
    class Other(ServerOptions):
        port = Parameter(short="p", default=9999, type=int)

    assert Other.parse([])["port"] == 9999
    assert [option.key for option in Other.declared()].count("port") == 1


def test_option_names_that_hide_dict_methods_are_refused() -> None:
    with pytest.raises(TypeError, match="hides a dict method"):
        class Bad(Options):
            items = Parameter()


class PortedOptions(Options):
    """A twisted.python.usage.Options class, ported by changing its base class."""

    optParameters = [["port", "p", 1235, "TCP port.", port_number],
                     ["max-conn", None, "5", "Connections at most."],
                     ["greeting"]]
    optFlags = [["verbose", "v", "Say more."], ["quiet", None, "Say less."]]


class PortedChild(PortedOptions):
    optParameters = [["host", "H", "localhost", "Interface."]]


def test_twisted_option_lists_are_declarations() -> None:
    assert dict(PortedChild.parse([])) == {
        "port": 1235, "max-conn": "5", "greeting": None, "verbose": False, "quiet": False,
        "host": "localhost"}
    options = PortedChild.parse(["-p", "80", "--max-conn", "7", "--greeting", "hi", "-v",
                                 "-H", "::1"])
    assert options == {"port": 80, "max-conn": "7", "greeting": "hi", "verbose": True,
                       "quiet": False, "host": "::1"}
    assert options.port == 80


def test_a_string_default_of_a_twisted_list_goes_through_its_coerce_function() -> None:
    """argparse's rule, documented (twisted would keep "1235"): one type, given or not."""
    ported = type("Ported", (Options,), {"optParameters": [["port", "p", "1235", "", int]]})
    assert ported.parse([])["port"] == 1235
    assert ported.parse(["-p", "80"])["port"] == 80


def test_twisted_option_lists_give_help_and_coercion_errors(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        PortedOptions.parse(["--help"], prog="dropins ported")
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "-p PORT, --port PORT" in out and "TCP port. (default: 1235)" in out
    assert "--quiet" in out and "Say less." in out
    with pytest.raises(SystemExit) as exited:
        PortedOptions.parse(["-p", "70000"], prog="dropins ported")
    assert exited.value.code == 2
    assert "port must be from 0 to 65535" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("lists", "fragment"),
    [
        ({"optParameters": ["port"]}, "each entry is a list"),
        ({"optParameters": [["port", "p", 1, "help", int, "extra"]]}, "must have 1 to 5 items"),
        ({"optFlags": [[None, "v", "help"]]}, "the first being the long name"),
        ({"optParameters": [["port", "p", 1, "help", "int"]]}, "must be callable"),
        ({"optParameters": [["description"]]}, "hides the class attribute"),
        ({"optParameters": [["port", "p"], ["port", "q"]]}, "'port' is already declared"),
        ({"optParameters": [["verbose"]], "optFlags": [["verbose"]]}, "already declared"),
        ({"optParameters": [["--port", "p"]]}, "must be given without dashes: 'port'"),
        ({"optFlags": [["-verbose"]]}, "without dashes: 'verbose'"),
        ({"optParameters": [["port", "-p"]]}, "one character without a dash"),
        ({"optFlags": [["verbose", "vv"]]}, "one character without a dash"),
    ],
)
def test_malformed_twisted_option_lists_are_refused_when_defined(
        lists: dict[str, object], fragment: str) -> None:
    with pytest.raises(TypeError, match=fragment):
        type("Bad", (Options,), dict(lists))


def test_short_h_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(TypeError, match=r"option 'host' in .*Bad: -h is reserved for --help"):
        class Bad(Options):
            host = Parameter(short="h", default="localhost")
    with pytest.raises(TypeError, match="-h is reserved for --help"):
        type("BadList", (Options,), {"optFlags": [["hush", "h", "Say nothing."]]})
    with pytest.raises(TypeError, match="--help is reserved for --help"):
        class BadLong(Options):
            assist = Flag(long="help")


def test_a_flag_declared_twice_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(TypeError, match="-p is already the flag of option 'port'"):
        class Bad(ServerOptions):
            path = Parameter(short="p")


@pytest.mark.parametrize(("name", "instead"), [("postOptions", "rename it validate(self)"),
                                               ("opt_port", "declare Parameter"),
                                               ("subCommands", "a service maker of its own")])
def test_twisted_features_that_would_be_ignored_are_refused(name: str, instead: str) -> None:
    with pytest.raises(TypeError,
                       match=rf"Bad\.{name} is twisted.python.usage's .*{re.escape(instead)}"):
        type("Bad", (Options,), {name: lambda self: None})


def test_declarations_named_like_twisted_features_are_kept() -> None:
    class Named(Options):
        synopsis = Parameter(default="short")
        opt_level = Parameter(type=int, default=1)

    assert Named.parse(["--opt-level", "3"]) == {"synopsis": "short", "opt_level": 3}
