"""``dropins -c FILE``: the runner's side of application files (dropins.config does the rest).

The runner hands ``dropins.config`` its own option parser and command lookup, so that a file's
values go through exactly the checks a command line gets; the file's ``[runner]`` options come
first and the command line's after them, so the command line wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dropins.runner.errors import FAILURE, RunnerError, UsageError

__all__ = ["build_or_fail", "config_context", "load_or_fail"]


def config_context() -> Any:
    from dropins.config.resolve import Context
    from dropins.runner.arguments import build_parser, parse_runner_options
    from dropins.runner.cli import BUILTIN_COMMANDS
    from dropins.runner.commands import find_service_maker

    return Context(build_parser(), parse_runner_options,
                   lambda name: find_service_maker(name, builtin=list(BUILTIN_COMMANDS)))


def load_or_fail(path: str, sets: Sequence[str] = ()) -> Any:
    """The checked ``AppConfig`` of ``path``; ``UsageError`` (exit 2) with the first problem."""
    from dropins.config.resolve import load_config

    config, problems = load_config(path, config_context(), sets)
    if problems:
        more = (f" ({len(problems) - 1} more; see 'dropins config check {path}')"
                if len(problems) > 1 else "")
        raise UsageError(problems[0] + more)
    return config


def build_or_fail(config: Any) -> Any:
    """The Application of ``config``; a bad value found while making a service is exit 2."""
    from dropins.config.build import BuildError, build_application
    from dropins.options import UsageError as OptionsUsageError
    from dropins.service.errors import EndpointError

    try:
        return build_application(config)
    except BuildError as error:
        usage = isinstance(error.__cause__, OptionsUsageError | EndpointError)
        raise (UsageError(str(error)) if usage else RunnerError(str(error), FAILURE)) from error
