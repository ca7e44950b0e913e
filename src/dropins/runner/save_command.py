"""``dropins --save FILE [runner options] COMMAND [options]``: the invocation as a file.

The successor of ``mktap``: instead of running the command, write it as an application file
that ``dropins -c FILE`` runs the same way.  The command line is checked first, exactly as a
run would check it; then each option is written as the user typed it (the text, not the
parsed value: ``--auth file:users`` stays a string, ``10M`` stays ``10M``), so the file reads
like the command line.  Relative paths are rewritten relative to the file's folder, where
``-c`` will look for them.  An existing file is kept unless ``--force``; a file that holds a
password (``--auth memory:...``) is made readable by its owner only, with a warning.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from dropins.runner.arguments import RunnerOptions
from dropins.runner.errors import FAILURE, RunnerError, UsageError

__all__ = ["save_invocation"]

#: Runner options that concern the saving itself, not the saved invocation.
_NOT_SAVED = ("save", "force", "help", "version")


def _as_typed(parser: argparse.ArgumentParser, argv: Sequence[str]) -> dict[str, Any]:
    """Only the options given in ``argv``, by dest, as text (types and defaults switched off)."""
    for action in parser._actions:
        action.type = None
        action.default = argparse.SUPPRESS
    return vars(parser.parse_args(list(argv)))


def _as_number(value: Any, convert: Any) -> Any:
    """``value`` (command-line text) as a TOML number when it is a plain decimal number and
    its option reads it as that number (``workers = 2``, ``threads = 4``, ``shutdown-timeout
    = 2.5``), so the file says what a person would write; any other text is kept as written
    (``umask = "022"`` is octal, ``log-max-bytes = "10M"`` has a unit)."""
    if isinstance(value, list):
        return [_as_number(item, convert) for item in value]
    if not isinstance(value, str) or convert is None:
        return value
    try:
        number: int | float = int(value) if value.lstrip("-").isdigit() else float(value)
        converted = convert(value)
    except Exception:  # not a number, or refused by the option's coercer: kept as text
        return value
    if isinstance(converted, bool) or not isinstance(converted, int | float):
        return value
    if converted != number or str(number) != value.strip():
        return value
    return number


def _relative(value: Any, folder: str) -> Any:
    if isinstance(value, list):
        return [_relative(item, folder) for item in value]
    if not isinstance(value, str) or value == "-":
        return value
    return os.path.relpath(os.path.abspath(os.path.expanduser(value)), folder)


def _runner_table(runner_args: Sequence[str], folder: str) -> dict[str, Any]:
    from dropins.options import path
    from dropins.runner.arguments import build_parser

    parser = build_parser()
    kinds = {action.dest: action for action in parser._actions}
    # Noted before _as_typed, which switches every action's type off.
    path_dests = {action.dest for action in parser._actions if action.type is path}
    converters = {action.dest: action.type for action in parser._actions}
    given = _as_typed(parser, runner_args)
    table: dict[str, Any] = {}
    for dest, value in given.items():
        if dest in _NOT_SAVED:
            continue
        long = next(flag for flag in kinds[dest].option_strings if flag.startswith("--"))[2:]
        table[long] = (_relative(value, folder) if dest in path_dests
                       else _as_number(value, converters[dest]))
    return table


def _service_table(command: str, argv: Sequence[str], folder: str) -> dict[str, Any]:
    from dropins.config.resolve import option_name
    from dropins.options import UsageError as OptionsUsageError
    from dropins.options import path
    from dropins.runner.cli import BUILTIN_COMMANDS
    from dropins.runner.commands import find_service_maker

    maker = find_service_maker(command, builtin=list(BUILTIN_COMMANDS))
    options_class = maker.options
    prog = f"dropins {command}"
    try:
        options_class.parse_or_raise(argv, prog=prog)  # exactly the checks of a run
    except OptionsUsageError as error:
        raise UsageError(f"{command}: {error}") from None
    declared = {option.key: option for option in options_class.declared()}
    table: dict[str, Any] = {"command": command}
    for key, value in _as_typed(options_class.build_parser(prog, raising=True), argv).items():
        option = declared[key]
        table[option_name(option)] = (_relative(value, folder) if option.type is path
                                      else _as_number(value, option.type))
    return table


def _holds_password(table: dict[str, Any]) -> bool:
    auth = table.get("auth", [])
    return any(str(item).strip().startswith("memory:") for item in auth)


def _write(target: str, text: str, force: bool, private: bool) -> None:
    """Write ``text`` to ``target``: refuse an existing file unless ``force``; replace
    atomically; mode 0600 when ``private``."""
    mode = 0o600 if private else 0o666
    temporary = f"{target}.{os.getpid()}.tmp"
    folder = os.path.dirname(target)
    if folder and not os.path.isdir(folder):
        raise UsageError(f"--save {target}: no folder {folder}; create it first")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        if private:
            os.chmod(temporary, 0o600)  # whatever the umask allowed
        if force:
            os.replace(temporary, target)
        else:
            os.link(temporary, target)  # fails if target exists: never a silent overwrite
            os.unlink(temporary)
    except FileExistsError:
        os.unlink(temporary)
        raise UsageError(f"--save {target}: the file exists; give --force to overwrite it")
    except OSError as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise RunnerError(f"--save {target}: cannot write: {error.strerror or error}",
                          FAILURE) from None


def save_invocation(options: RunnerOptions, runner_args: Sequence[str], command: str | None,
                    rest: Sequence[str]) -> int:
    """Write ``runner_args COMMAND rest`` to ``options.save``; return the exit status."""
    from dropins.config.dump import to_toml

    target = str(options.save)
    if command is None:
        raise UsageError("--save FILE needs a command to save, e.g. "
                         "dropins --save shop.toml web --path site")
    if options.app is not None:
        raise UsageError("--save saves a command, not --app FILE.py (which is already a file)")
    folder = os.path.dirname(os.path.abspath(target))
    data: dict[str, Any] = {}
    runner = _runner_table(runner_args, folder)
    if runner:
        data["runner"] = runner
    service = _service_table(command, rest, folder)
    data["services"] = {command: service}
    private = _holds_password(service)
    _write(target, to_toml(data), options.force, private)
    if private:
        sys.stderr.write(f"dropins: warning: {target} holds a password (--auth memory:); "
                         "it is readable by you only (0600)\n")
    sys.stderr.write(f"dropins: saved {command} to {target}; run it with: "
                     f"dropins -c {target}\n")
    return 0
