"""Writing application files: the resolved form of a file (``config dump``) and TOML text.

TOML is written with ``tomli-w``, the small pure-Python writer by the author of ``tomli``
(the library ``tomllib`` came from): writing correct TOML (quoting, escapes, nested tables)
is exactly what a well-kept library should do.  It is imported only here.
"""

from __future__ import annotations

import argparse
from typing import Any

from dropins.config.resolve import NOT_IN_FILE, AppConfig, ServiceSpec, option_name

__all__ = ["resolved_data", "to_toml"]

_PLAIN = (str, int, float, bool)


def to_toml(data: dict[str, Any]) -> str:
    import tomli_w

    return tomli_w.dumps(data)


def _plain(value: Any) -> bool:
    if isinstance(value, list):
        return all(isinstance(item, _PLAIN) for item in value)
    return isinstance(value, _PLAIN)


def _runner_table(config: AppConfig, parser: argparse.ArgumentParser) -> dict[str, Any]:
    given = {key.replace("_", "-"): value for key, value in config.runner_values.items()}
    table: dict[str, Any] = {}
    for action in parser._actions:
        longs = [string[2:] for string in action.option_strings if string.startswith("--")]
        if not longs or longs[0] in NOT_IN_FILE:
            continue
        value = given.get(longs[0], action.default)
        if value is not None and _plain(value):
            table[longs[0]] = value
    return table


def _service_table(spec: ServiceSpec) -> dict[str, Any]:
    if spec.factory is not None:
        return {"factory": spec.factory, **spec.values}
    from dropins.options import Flag, Parameter

    given = {key.replace("_", "-"): value for key, value in spec.values.items()}
    table: dict[str, Any] = {"command": spec.command}
    for option in spec.maker.options.declared():
        name = option_name(option)
        if name in given:
            value = given[name]
        elif isinstance(option, Flag):
            value = False
        elif isinstance(option, Parameter) and option.multiple:
            value = list(option.default or [])
        else:
            value = option.default
        if value is not None and _plain(value):
            table[name] = value
    return table


def resolved_data(config: AppConfig, runner_parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The file as it will run: environment substituted, paths absolute, defaults filled."""
    data: dict[str, Any] = {}
    if config.name is not None:
        data["name"] = config.name
    data["runner"] = _runner_table(config, runner_parser)
    data["services"] = {name: _service_table(spec) for name, spec in config.services.items()}
    return data
