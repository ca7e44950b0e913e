"""Finding the command to run among service-maker plugins, and listing them for ``--help``.

Everything here works from plugin records (``iter_plugin_info``), which come from the plugin
cache: listing commands imports no plugin module.  Only the chosen command is loaded.  A plugin
module that fails to import is never silently missing: ``--help`` lists it as broken with its
reason, and asking for a command that only a broken module could provide says why.
"""

from __future__ import annotations

import os

from dropins.runner.errors import FAILURE, RunnerError, UsageError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms per run
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any, NoReturn

SERVICE_MAKER = "dropins.service.interfaces.IServiceMaker"


def service_maker_records() -> list[Any]:
    """Every record of a service-maker plugin (ok or not), plus broken plugin modules."""
    from dropins.plugin import iter_plugin_info

    return list(iter_plugin_info(SERVICE_MAKER))


def usable(records: Iterable[Any]) -> dict[str, Any]:
    """Records that can run, by command name; the first of a name wins (discovery order)."""
    found: dict[str, Any] = {}
    for record in records:
        if record.state == "ok" and SERVICE_MAKER in record.interfaces:
            found.setdefault(record.name, record)
    return found


def broken(records: Iterable[Any]) -> list[Any]:
    return [record for record in records if record.state == "broken"]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'web'?"`` for the closest candidate, or ``""``."""
    import difflib

    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def _module_stem(record: Any) -> str:
    return os.path.splitext(os.path.basename(record.path or ""))[0] or record.module.rpartition(
        ".")[2]


def _matches_broken(name: str, record: Any) -> bool:
    """Whether a broken record may be the one that would have provided command ``name``."""
    if record.name == name:
        return True
    stem = _module_stem(record)
    return stem == name or stem.startswith(name + "_") or stem.endswith("_" + name)


def _records_holding_warnings() -> tuple[list[Any], list[Any]]:
    """The records, and the plugin layer's warnings (broken modules) held back, not printed."""
    import logging

    held: list[logging.LogRecord] = []

    class Hold(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            held.append(record)

    logger = logging.getLogger("dropins.plugin")
    handler, propagate = Hold(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        return service_maker_records(), held
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def find_service_maker(name: str, builtin: Sequence[str] = ()) -> Any:
    """Load the service maker for command ``name``; raise a ``RunnerError`` naming the problem.

    When the command is missing because its module is broken, the error says so in one line,
    so the plugin layer's warning about that module (the same reason) is not printed as well;
    otherwise its warnings are let through as usual.
    """
    import logging

    records, held = _records_holding_warnings()
    record = usable(records).get(name)
    if record is None:
        try:
            _raise_not_found(name, records, builtin)
        except _Unavailable:
            raise
        except RunnerError:
            for warning in held:
                logging.getLogger("dropins.plugin").handle(warning)
            raise
    for warning in held:
        logging.getLogger("dropins.plugin").handle(warning)
    from dropins.plugin import PluginError

    try:
        return record.load()
    except PluginError as error:
        raise RunnerError(str(error), FAILURE)


class _Unavailable(RunnerError):
    """A command that only a broken plugin would provide: the error carries the plugin's
    reason, so the plugin layer's warning saying the same is not printed as well."""


def _raise_not_found(name: str, records: list[Any], builtin: Sequence[str]) -> NoReturn:
    from dropins.plugin.entries import is_porting_advice

    for record in records:
        if record.name == name and record.state == "disabled":
            raise RunnerError(f"command {name!r} is disabled (DROPINS_DISABLE); "
                              "see 'dropins plugins list'")
    for record in broken(records):
        ported = is_porting_advice(record.reason)  # imported fine, but written for twistd
        if _matches_broken(name, record) or (ported and name == record.attribute):
            cause = "" if ported else "its plugin module is broken: "
            raise _Unavailable(f"command {name!r} is unavailable: {cause}{record.reason}")
    known = [*usable(records), *builtin]
    hint = did_you_mean(name, known)
    failed = {record.path for record in broken(records) if not is_porting_advice(record.reason)}
    if not hint and failed:
        count = len(failed)
        hint = (f" ({count} plugin module{'s' if count > 1 else ''} failed to import; "
                "see 'dropins --help')")
    elif not hint:
        hint = "; run 'dropins --help' to list the commands"
    raise UsageError(f"unknown command {name!r}{hint}")


def _rows(pairs: Iterable[tuple[str, str]], line_width: int, indent: int = 2,
          width: int = 24) -> list[str]:
    """``name  description`` rows like argparse's, descriptions wrapped to ``line_width``."""
    import textwrap  # argparse imports it to render the help anyway

    lines = []
    text_width = max(line_width - width, 20)
    for name, text in pairs:
        label = " " * indent + name
        wrapped = textwrap.wrap(text, text_width) if text else []
        if wrapped and len(label) < width - 1:
            lines.append(label.ljust(width) + wrapped.pop(0))
        else:
            lines.append(label)
        lines += [" " * width + line for line in wrapped]
    return lines


def render_commands(records: list[Any], builtin: dict[str, tuple[str, str]],
                    line_width: int = 78) -> str:
    """The command sections of ``dropins --help``, descriptions wrapped to ``line_width``."""
    makers = usable(records)
    sections = ["commands (service makers):"]
    if makers:
        sections += _rows(((name, makers[name].description or "") for name in sorted(makers)),
                          line_width)
    else:
        sections.append("  (none found)")
    sections += ["", "built-in commands:"]
    sections += _rows(((name, description) for name, (_module, description) in
                       sorted(builtin.items())), line_width)
    failed = broken(records)
    if failed:
        sections += ["", "broken plugin modules (not listed above; see 'dropins plugins list'):"]
        sections += [f"  {record.name}: {record.reason}" for record in
                     sorted(failed, key=lambda record: record.name)]
    return "\n".join(sections)
