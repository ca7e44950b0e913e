"""From an application file to checked service specifications, every problem collected.

Values are checked by the very parsers the command line uses: each service's table becomes the
argument list its command would get (``path = "public"`` -> ``--path public``) and goes through
``Options.parse_or_raise``; the ``[runner]`` table likewise through the runner's own parser.  So
types, choices and ``validate()`` mean the same in a file as on the command line, and nothing
here validates a value itself.  What is checked here is only the file's structure: known keys,
``command`` or ``factory``, which key is an option of which command.

The runner's parser and the lookup of service makers are handed in (``Context``) rather than
imported, so that this package does not depend on the runner above it.
"""

from __future__ import annotations

import argparse
import difflib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from dropins.config.source import ConfigFileError, Source, read_source
from dropins.config.values import ValueProblem, apply_sets, substitute

__all__ = ["AppConfig", "Context", "Problem", "ServiceSpec", "load_config", "option_name"]

TOP_LEVEL_KEYS = ("name", "runner", "services")
#: Runner options that make no sense inside the file they would name.
NOT_IN_FILE = ("config", "set", "save", "force", "app", "help", "version")


class Problem:
    """One thing wrong, at a dotted key: ``FILE:LINE: dotted.key: message`` when printed."""

    def __init__(self, keys: tuple[str, ...], message: str) -> None:
        self.keys = tuple(key for key in keys if key)
        self.message = message

    def render(self, source: Source | None, path: str) -> str:
        line = source.line_of(self.keys) if source is not None else None
        where = f"{path}:{line}" if line else path
        key = ".".join(self.keys)
        return f"{where}: {key}: {self.message}" if key else f"{where}: {self.message}"


class Context:
    """What resolving needs from the runner: its option parser and the command lookup."""

    def __init__(self, runner_parser: argparse.ArgumentParser,
                 parse_runner: Callable[[list[str]], Any],
                 find_maker: Callable[[str], Any]) -> None:
        self.runner_parser = runner_parser
        self.parse_runner = parse_runner
        self.find_maker = find_maker


class ServiceSpec:
    """One service of the file: its resolved values and, for a command, its parsed options."""

    def __init__(self, name: str, table: dict[str, Any]) -> None:
        self.name = name
        self.command: str | None = table.get("command")
        self.factory: str | None = table.get("factory")
        #: The other keys, as resolved (environment substituted, paths absolute).
        self.values = {key: value for key, value in table.items()
                       if key not in ("command", "factory")}
        self.maker: Any = None
        self.options: Any = None

    def identity(self) -> tuple[Any, ...]:
        """What decides whether a reload changed this service."""
        return (self.command, self.factory, repr(sorted(self.values.items())))


class AppConfig:
    """A checked file: the application's name, runner arguments and services in file order."""

    def __init__(self, path: str, name: str | None, runner_argv: list[str],
                 runner_values: dict[str, Any], services: dict[str, ServiceSpec],
                 raw: bytes = b"") -> None:
        self.path = path
        #: The file's bytes as read and checked (what workers are handed: ``source.pin``).
        self.raw = raw
        self.name = name
        self.runner_argv = runner_argv
        #: The ``[runner]`` table as resolved (environment substituted, paths absolute).
        self.runner_values = runner_values
        self.services = services


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def load_config(path: str, context: Context, sets: Sequence[str] = (),
                environ: Mapping[str, str] | None = None, try_make: bool = False
                ) -> tuple[AppConfig | None, list[str]]:
    """Read and check ``path``; return the config (None if unusable) and every problem, as
    printable lines.  With ``try_make`` (``config check``), each command's service is also
    made, not started, for what only ``make_service`` checks (endpoints); factories are only
    imported, since calling one may do anything."""
    try:
        source = read_source(path)
    except ConfigFileError as error:
        return None, [str(error)]
    problems: list[Problem] = []
    data = source.data
    try:
        apply_sets(data, sets)
    except ValueProblem as problem:
        return None, [Problem(problem.keys, str(problem)).render(None, path)]
    data = substitute(data, os.environ if environ is None else environ,
                      report=lambda problem: problems.append(Problem(problem.keys,
                                                                     str(problem))))
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            hint = did_you_mean(key, TOP_LEVEL_KEYS)
            problems.append(Problem((key,), f"unknown key {key!r}; the keys are "
                                    f"{', '.join(TOP_LEVEL_KEYS)}{hint}"))
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        problems.append(Problem(("name",), "must be a string"))
    runner_values = data.get("runner", {})
    runner_argv = _runner_argv(runner_values, source, context, problems)
    services = _services(data.get("services"), source, context, problems)
    if try_make:
        _try_make(services, source, problems)
    problems.sort(key=lambda problem: source.line_of(problem.keys) or 0)
    rendered = [problem.render(source, path) for problem in problems]
    if rendered:
        return None, rendered
    return AppConfig(path, name, runner_argv, runner_values, services, source.raw), []


def _try_make(services: dict[str, ServiceSpec], source: Source,
              problems: list[Problem]) -> None:
    from dropins.config.build import BuildError, make_service

    for spec in services.values():
        if spec.factory is None:
            try:
                make_service(spec, source.folder)
            except BuildError as error:
                problems.append(Problem(("services", spec.name),
                                        str(error).partition(": ")[2]))


def _option_argv(flag: str, value: Any, is_flag: bool, multiple: bool, is_path: bool,
                 folder: str) -> list[str]:
    """The command-line words for one key; ``TypeError`` says what type was expected."""
    if is_flag:
        if not isinstance(value, bool):
            raise TypeError("expects true or false")
        return [flag] if value else []
    return [f"{flag}={text}" for text in _texts(value, multiple, is_path, folder)]


def _resolve_path(table: dict[str, Any], key: str, folder: str) -> None:
    """Make the path(s) of ``table[key]`` absolute, relative to the file's ``folder``."""
    value = table[key]
    items = [_absolute(item, folder) for item in (value if isinstance(value, list) else [value])]
    table[key] = items if isinstance(value, list) else items[0]


def _absolute(item: Any, folder: str) -> Any:
    if not isinstance(item, str) or item == "-":
        return item
    return os.path.join(folder, os.path.expanduser(item))


def _texts(value: Any, multiple: bool, is_path: bool, folder: str) -> list[str]:
    """The value(s) of one key as command-line text, paths made absolute."""
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not multiple:
        raise TypeError("takes one value, not a list")
    words: list[str] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise TypeError(f"expects a string or a number, got {_kind(item)}")
        words.append(str(_absolute(item, folder) if is_path else item))
    return words


def _kind(value: Any) -> str:
    return {bool: "true/false", dict: "a table", list: "a list"}.get(type(value),
                                                                       type(value).__name__)


def _runner_argv(table: Any, source: Source, context: Context,
                 problems: list[Problem]) -> list[str]:
    if not isinstance(table, dict):
        problems.append(Problem(("runner",), "must be a table of runner options"))
        return []
    from dropins.options import path as path_type

    actions = {string[2:]: action for action in context.runner_parser._actions
               for string in action.option_strings if string.startswith("--")}
    argv: list[str] = []
    for key, value in table.items():
        option = key.replace("_", "-")
        action = actions.get(option)
        if action is None or option in NOT_IN_FILE:
            known = [name for name in actions if name not in NOT_IN_FILE]
            problems.append(Problem(("runner", key), f"unknown runner option {key!r}"
                                    f"{did_you_mean(option, known)}"))
            continue
        try:
            argv += _option_argv(f"--{option}", value, action.nargs == 0,
                                 isinstance(action, argparse._AppendAction),
                                 action.type is path_type, source.folder)
        except TypeError as error:
            problems.append(Problem(("runner", key), str(error)))
            continue
        if action.type is path_type:
            _resolve_path(table, key, source.folder)
    try:
        parser = _raising_copy(context.runner_parser)
        parser.parse_args(argv)
    except Exception as error:  # the runner parser's UsageError
        problems.append(Problem(("runner", _key_named(str(error), table)), _bare(error)))
    return argv


def _raising_copy(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    return parser  # the runner's parser already raises UsageError instead of exiting


def _bare(error: BaseException) -> str:
    """A parser's message without ``argument --x:`` (the key says it) and ``(see --help)``."""
    text = str(error)
    cut = text.rfind(" (see '")
    text = text[:cut] if cut > 0 else text
    if text.startswith("argument ") and ": " in text:
        text = text.partition(": ")[2]
    return text


def _key_named(message: str, table: Mapping[str, Any]) -> str:
    """The key of ``table`` whose flag the parser's message names (else ``""``)."""
    for key in table:
        if f"--{key.replace('_', '-')}" in message:
            return key
    return ""


def _services(tables: Any, source: Source, context: Context,
              problems: list[Problem]) -> dict[str, ServiceSpec]:
    if tables is None:
        problems.append(Problem((), "no [services.NAME] table; add at least one service"))
        return {}
    if not isinstance(tables, dict):
        problems.append(Problem(("services",), "must be a table of services by name"))
        return {}
    if not tables:
        problems.append(Problem(("services",), "is empty; add at least one [services.NAME] "
                                               "table"))
        return {}
    services: dict[str, ServiceSpec] = {}
    normal_names: dict[str, str] = {}
    for name, table in tables.items():
        keys = ("services", name)
        other = normal_names.setdefault(name.replace("_", "-").lower(), name)
        if other != name:
            problems.append(Problem(keys, f"names the same service as services.{other}; "
                                    "rename one"))
            continue
        if not isinstance(table, dict):
            problems.append(Problem(keys, "must be a table with 'command' or 'factory'"))
            continue
        spec = _service(name, table, source, context, problems)
        if spec is not None:
            services[name] = spec
    return services


def _service(name: str, table: dict[str, Any], source: Source, context: Context,
             problems: list[Problem]) -> ServiceSpec | None:
    keys = ("services", name)
    has_command, has_factory = "command" in table, "factory" in table
    if has_command == has_factory:
        what = "both" if has_command else "neither"
        problems.append(Problem(keys, f"has {what} of 'command' and 'factory'; give one: "
                                "command = \"web\" or factory = \"module:callable\""))
        return None
    spec = ServiceSpec(name, table)
    if any(problem.keys[:2] == keys for problem in problems):
        return None  # e.g. an unset ${NAME}: parsing the value as written would only confuse
    if has_factory:
        return spec if _check_factory(spec, source, problems) else None
    if not isinstance(spec.command, str):
        problems.append(Problem((*keys, "command"), "must be a string naming a command"))
        return None
    try:
        spec.maker = context.find_maker(spec.command)
        options_class = spec.maker.options
    except Exception as error:
        message = _bare(error).replace("; did you mean", " (did you mean")
        if "(did you mean" in message and not message.endswith(")"):
            message += ")"
        problems.append(Problem((*keys, "command"), message))
        return None
    argv = _command_argv(spec, options_class, source, problems)
    if argv is None:
        return None
    from dropins.options_origin import parsing_file

    origin = parsing_file.set(source.path)
    try:
        spec.options = options_class.parse_or_raise(argv, prog=f"dropins {spec.command}")
    except Exception as error:  # UsageError from the command's own parsing and validate()
        problems.append(Problem((*keys, _key_named(str(error), spec.values)), _bare(error)))
        return None
    finally:
        parsing_file.reset(origin)
    return spec


def _command_argv(spec: ServiceSpec, options_class: Any, source: Source,
                  problems: list[Problem]) -> list[str] | None:
    from dropins.options import Argument, Flag, Parameter
    from dropins.options import path as path_type

    declared = {option_name(option): option for option in options_class.declared()}
    argv: list[str] = []
    positional: list[str] = []
    ok = True
    for key, value in spec.values.items():
        option = declared.get(key.replace("_", "-"))
        where = ("services", spec.name, key)
        if option is None:
            problems.append(Problem(where, f"unknown option {key!r} for command "
                                    f"{spec.command!r}{did_you_mean(key, declared)}"))
            ok = False
            continue
        try:
            if isinstance(option, Argument):
                positional += _texts(value, option.nargs in ("*", "+"),
                                     option.type is path_type, source.folder)
            else:
                argv += _option_argv(f"--{option_name(option)}", value,
                                     isinstance(option, Flag),
                                     isinstance(option, Parameter) and option.multiple,
                                     option.type is path_type, source.folder)
        except TypeError as error:
            problems.append(Problem(where, str(error)))
            ok = False
            continue
        if option.type is path_type:
            _resolve_path(spec.values, key, source.folder)
    if not ok:
        return None
    return [*argv, "--", *positional] if positional else argv


def option_name(option: Any) -> str:
    """The name of an option in a file: its long flag without dashes (or its key)."""
    flags = option.flags() if hasattr(option, "flags") else []
    long = [flag for flag in flags if flag.startswith("--")]
    return long[0][2:] if long else option.key.replace("_", "-")


def _check_factory(spec: ServiceSpec, source: Source, problems: list[Problem]) -> bool:
    """A factory must be ``module:callable`` and import; it is called only when run."""
    where = ("services", spec.name, "factory")
    if not isinstance(spec.factory, str) or ":" not in spec.factory:
        problems.append(Problem(where, "give 'module:callable', e.g. \"shop.jobs:make_service\""))
        return False
    try:
        resolve_factory(spec.factory, source.folder)
    except Exception as error:
        problems.append(Problem(where, f"cannot import {spec.factory!r}: "
                                f"{type(error).__name__}: {' '.join(str(error).split())}"))
        return False
    return True


def resolve_factory(target: str, folder: str) -> Callable[..., Any]:
    """The callable ``module:attribute`` names (``TypeError`` if it is not callable), its
    module looked for in the file's ``folder`` first, as ``--app`` finds a file's neighbours."""
    import importlib
    import sys

    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_name, _, attribute = target.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    if not callable(found):
        raise TypeError(f"{target} is not callable")
    return found
