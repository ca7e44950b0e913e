"""The ``dropins`` command: built-in subcommands, and ``dropins NAME`` for service makers.

Built-in subcommands are modules with ``main(argv, prog) -> int``, imported only when used so
that ``dropins --help`` stays fast.  Everything else is ``dropins [runner options] COMMAND
[command options]`` (or ``dropins [runner options] --app FILE.py``): the runner options are
parsed by ``dropins.runner.arguments``, the command's by its plugin's ``Options`` class, and the
process is run by ``dropins.runner.run``.

Errors the user can fix are printed as one line, ``dropins: error: ...``, with exit status 2 for
bad input and 1 for failures; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

from dropins.runner.errors import FAILURE, RunnerError, UsageError, one_line

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms per run
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

#: subcommand -> (module, one-line description)
BUILTIN_COMMANDS: dict[str, tuple[str, str]] = {
    "plugins": ("dropins.runner.plugins_command", "List, explain, check and cache plugins"),
    "stop": ("dropins.runner.stop_command", "Stop a daemon started with --pidfile"),
    "passwd": ("dropins.cred.passwd_command", "Add or update a user in a password file"),
    "config": ("dropins.runner.config_command", "Check an application file, or print it resolved"),
    "reload": ("dropins.runner.reload_command", "Make a running -c FILE instance re-read it"),
}


def run_builtin(name: str, argv: Sequence[str]) -> int:
    """Run a built-in subcommand; a Ctrl-C (during a slow plugin import, say) ends it as it
    ends a service: one line and status 130, no traceback."""
    try:
        module = importlib.import_module(BUILTIN_COMMANDS[name][0])
        status: int = module.main(list(argv), prog=f"dropins {name}")
    except KeyboardInterrupt:
        sys.stderr.write("dropins: interrupted\n")
        return 130
    return status


def print_help() -> None:
    from dropins.options import help_width
    from dropins.runner.arguments import build_parser
    from dropins.runner.commands import render_commands, service_maker_records

    parser = build_parser()
    parser.epilog = render_commands(service_maker_records(), BUILTIN_COMMANDS, help_width())
    sys.stdout.write(parser.format_help())


def build_service(command: str, argv: Sequence[str]) -> Any:
    """Parse the command's options and make its service (``--help`` exits here)."""
    from dropins.options import UsageError as OptionsUsageError
    from dropins.runner.commands import find_service_maker

    maker = find_service_maker(command, builtin=list(BUILTIN_COMMANDS))
    prog = f"dropins {command}"
    try:
        options_class = maker.options
    except Exception as error:
        raise RunnerError(f"command {command!r} is broken: {type(error).__name__}: "
                          f"{one_line(error)}") from error
    options = options_class.parse(list(argv), prog=prog)
    try:
        return maker.make_service(options)
    except OptionsUsageError as error:
        raise UsageError(f"{command}: {one_line(error)}") from error
    except ValueError as error:
        if type(error).__name__ == "EndpointError":  # a bad --listen string
            raise UsageError(f"{command}: {one_line(error)}") from error
        raise RunnerError(f"{command}: cannot make the service: {type(error).__name__}: "
                          f"{one_line(error)}") from error
    except Exception as error:
        raise RunnerError(f"{command}: cannot make the service: {type(error).__name__}: "
                          f"{one_line(error)}") from error


def _main(args: list[str], debug: list[bool]) -> int:
    from dropins.runner.arguments import build_parser, parse_runner_options, split_argv
    from dropins.runner.early_signals import ignore_sighup

    ignore_sighup()  # a logrotate SIGHUP during start-up must not kill the process (exit 129)
    runner_args, command, rest = split_argv(args, build_parser())
    debug[0] = "--debug" in runner_args
    options = parse_runner_options(runner_args)
    if options.help:
        print_help()
        return 0
    if options.version:
        import dropins

        sys.stdout.write(f"dropins {dropins.__version__}\n")
        return 0
    if command in BUILTIN_COMMANDS:
        return run_builtin(command, rest)
    if options.save is not None:
        from dropins.runner.save_command import save_invocation

        return save_invocation(options, runner_args, command, rest)
    config = None
    # a worker of `dropins --workers N` (both set by its supervisor, never by hand)
    is_worker = "DROPINS_WORKER" in os.environ and "DROPINS_WORKER_CONTROL" in os.environ
    if options.config is not None:
        if command is not None:
            raise UsageError(f"give either --config FILE or a command, not both "
                             f"(got {command!r})")
        from dropins.runner.config_app import load_or_fail

        if is_worker:
            from dropins.supervisor.worker import take_pinned_config

            take_pinned_config(options.config)

        config = load_or_fail(options.config, options.set or ())
        options = parse_runner_options([*config.runner_argv, *runner_args])
        label = config.name or str(options.config)
        options.config = os.path.abspath(str(options.config))  # SIGHUP re-reads it after --rundir
    if options.app is not None and command is not None:
        raise UsageError(f"give either --app FILE.py or a command, not both (got {command!r})")
    if options.app is None and command is None and config is None:
        raise UsageError("no command given; run 'dropins --help' to list the commands")

    from dropins.runner.run import Runner, as_application, effective_identity, prepare

    if is_worker:
        from dropins.supervisor.worker import (
            configure_worker_logging,
            take_inherited_sockets,
            worker_options,
        )

        options = worker_options(options)
    identity = prepare(options)
    if is_worker:
        configure_worker_logging()
        take_inherited_sockets()
    if config is not None:
        from dropins.runner.config_app import build_or_fail

        service = build_or_fail(config)
    elif options.app is not None:
        from dropins.runner.app_file import load_application

        label = options.app
        service = load_application(options.app)
    else:
        assert command is not None
        label = command
        service = build_service(command, rest)
    application = as_application(service, options, identity)
    if is_worker:  # the supervisor dropped the privileges already
        from dropins.supervisor.worker import WorkerRunner

        return WorkerRunner(options, label, application, identity, config).run()
    identity = effective_identity(application, identity)
    if options.workers is not None:
        from dropins.supervisor.supervisor import Supervisor

        if options.reload:
            from dropins.supervisor.devreload import ReloadingSupervisor as Supervisor

        return Supervisor(options, label, application, identity, config,
                          worker_arguments(args, options)).run()
    return Runner(options, label, application, identity, config).run()


def worker_arguments(args: list[str], options: Any) -> list[str]:
    """The arguments a worker of ``dropins --workers`` runs with: the same, but for ``-c FILE``
    made absolute (a worker starts in the supervisor's current directory, the ``--rundir``,
    whereas FILE was relative to the directory dropins was started from)."""
    if options.config is None:
        return list(args)
    return [*args, "--config", str(options.config)]  # with -c there is no command: last wins


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in BUILTIN_COMMANDS:
        return run_builtin(args[0], args[1:])
    debug = [False]
    try:
        return _main(args, debug)
    except RunnerError as error:
        _print_error(error.message, debug[0])
        return error.status
    except KeyboardInterrupt:
        sys.stderr.write("dropins: interrupted\n")
        return 130
    except Exception as error:  # a bug, in dropins or in a plugin: still one line by default
        hint = "" if debug[0] else " (run with --debug for the traceback)"
        _print_error(f"unexpected {type(error).__name__}: {one_line(error)}{hint}", debug[0])
        return FAILURE


def _print_error(message: str, debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exc()
    sys.stderr.write(f"dropins: error: {message}\n")


__all__ = ["BUILTIN_COMMANDS", "main"]
