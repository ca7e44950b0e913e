"""Unit tests of the runner's own options: splitting the command line, parsing, validation."""

from __future__ import annotations

import pytest

from dropins.runner.arguments import parse_runner_options, split_argv
from dropins.runner.commands import did_you_mean
from dropins.runner.errors import USAGE, UsageError


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["echo"], ([], "echo", [])),
        (["--debug", "echo", "--listen", "tcp:0"], (["--debug"], "echo", ["--listen", "tcp:0"])),
        # a value-taking runner option consumes its value, even one that looks like a command
        (["--pidfile", "echo", "web", "-p", "1"], (["--pidfile", "echo"], "web", ["-p", "1"])),
        (["--pidfile=x.pid", "echo"], (["--pidfile=x.pid"], "echo", [])),
        # options after the command belong to the command, even runner-looking ones
        (["echo", "--debug", "--daemon"], ([], "echo", ["--debug", "--daemon"])),
        (["--app", "app.py"], (["--app", "app.py"], None, [])),
        (["--", "echo", "-x"], ([], "echo", ["-x"])),
        ([], ([], None, [])),
    ],
)
def test_split_argv(argv: list[str], expected: tuple[list[str], str | None, list[str]]) -> None:
    assert split_argv(argv) == expected


def test_parse_values_and_defaults() -> None:
    options = parse_runner_options(["--daemon", "--pidfile", "p.pid", "--umask", "027",
                                    "--shutdown-timeout", "2.5", "--log-format", "json",
                                    "--logfile", "x.log", "--log-max-bytes", "10M",
                                    "--log-backups", "3"], platform="posix")
    assert options.daemon and options.pidfile == "p.pid"
    assert options.umask == 0o027
    assert options.shutdown_timeout == 2.5
    assert options.log_format == "json"
    assert options.log_max_bytes == 10 * 1024 * 1024 and options.log_backups == 3
    defaults = parse_runner_options([], platform="posix")
    assert not defaults.daemon and defaults.loop == "asyncio" and defaults.log_max_bytes == 0
    assert defaults.shutdown_timeout is None  # not given: the Application's own value stays


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--umask", "999"], "invalid umask '999'"),
        (["--umask", "1000"], "between 000 and 777"),
        (["--shutdown-timeout", "-1"], "invalid number of seconds '-1'"),
        (["--shutdown-timeout", "nan"], "invalid number of seconds 'nan'"),
        (["--log-level", "loud"], "--log-level"),
        (["--loop", "trio"], "--loop"),
        (["--log-max-bytes", "ten"], "invalid size 'ten'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--pid", "x"], "unrecognized arguments: --pid"),  # no abbreviations
        (["--daemon", "--logfile", "-"], "--logfile - cannot be used with --daemon"),
        (["--log-max-bytes", "1M"], "--log-max-bytes needs --logfile PATH"),
    ],
)
def test_bad_options_are_one_line_usage_errors(argv: list[str], fragment: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_runner_options(argv, platform="posix")
    assert fragment in caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.status == USAGE


@pytest.mark.parametrize("flag", [["--daemon"], ["--uid", "1"], ["--gid", "1"],
                                  ["--umask", "022"], ["--syslog"]])
def test_posix_only_options_refused_on_windows(flag: list[str]) -> None:
    with pytest.raises(UsageError, match=rf"{flag[0]} is not supported on Windows"):
        parse_runner_options(flag, platform="nt")
    parse_runner_options(flag, platform="posix")  # accepted elsewhere


def test_did_you_mean() -> None:
    assert did_you_mean("wbe", ["web", "echo", "stop"]) == "; did you mean 'web'?"
    assert did_you_mean("ehco", ["web", "echo"]) == "; did you mean 'echo'?"
    assert did_you_mean("zzzzzz", ["web", "echo"]) == ""


def test_only_a_given_shutdown_timeout_overrides_the_application() -> None:
    from dropins.runner.privileges import Identity
    from dropins.runner.run import as_application
    from dropins.service import Application, Service

    not_given = parse_runner_options([], platform="posix")
    given = parse_runner_options(["--shutdown-timeout", "3"], platform="posix")
    assert as_application(Application(shutdown_timeout=1), not_given,
                          Identity()).shutdown_timeout == 1
    assert as_application(Application(shutdown_timeout=1), given, Identity()).shutdown_timeout == 3
    assert as_application(Service(), not_given, Identity()).shutdown_timeout == 10
    kept = as_application(Application(uid=5, gid=6), not_given, Identity())
    assert (kept.uid, kept.gid) == (5, 6)
    overridden = as_application(Application(uid=5, gid=6), not_given, Identity(7, 8))
    assert (overridden.uid, overridden.gid) == (7, 8)
