"""``dropins plugins``: list, explain, check and cache plugins.

This is the answer to "why isn't my plugin loaded?": ``list`` shows every plugin with its
source, distribution, version and state; ``why NAME`` tells where one came from or why it is
not usable; ``check`` verifies plugins against their interfaces; ``cache --rebuild`` writes the
caches (what a package manager or a Dockerfile runs after installing plugins).  Listing reads
the cache and imports no plugin code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from dropins.options import OneLineErrorParser
from dropins.plugin import PluginError, PluginInfo, iter_plugin_info, rebuild_cache
from dropins.plugin.discovery import DEFAULT_PACKAGE

__all__ = ["main"]

_MARKER = "dropins.plugin.interfaces.IPlugin"


def _build_parser(prog: str) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=prog, description=(
        "What is installed, and why isn't my plugin loaded? 'list' shows every plugin with its"
        " source, distribution, version and state; 'why NAME' tells where one comes from or why"
        " it is not usable; 'check' verifies plugins against their interfaces; 'cache"
        " --rebuild' rewrites the caches (run it after installing plugins, e.g. in a"
        " Dockerfile). Listing reads the caches and imports no plugin code. Run"
        f" '{prog} ACTION --help' for an action's options."))
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(name, help=help_text,
                                                           description=help_text)
        sub.add_argument("--package", "-p", default=DEFAULT_PACKAGE, metavar="PACKAGE",
                         help="The plugin package, e.g. matsim.plugins or app.extensions"
                              f" (default: {DEFAULT_PACKAGE}).")
        return sub

    listing = add("list", "List plugins with their source, version and state.")
    listing.add_argument("--interface", "-i", metavar="DOTTED",
                         help="Only plugins providing this interface, e.g."
                              " dropins.service.interfaces.IServiceMaker.")
    listing.add_argument("--json", action="store_true", help="Print JSON, for tools.")
    why = add("why", "Tell where a plugin comes from, or why it is not loaded.")
    why.add_argument("name", metavar="NAME", help="The plugin name.")
    add("check", "Verify every usable plugin against its interfaces (exit status 1 on failure).")
    cache = add("cache", "Refresh the plugin caches (--rebuild: rescan everything).")
    cache.add_argument("--rebuild", action="store_true",
                       help="Import every plugin module again and rewrite the caches.")
    return parser


def main(argv: Sequence[str], prog: str = "dropins plugins") -> int:
    args = _build_parser(prog).parse_args(list(argv))
    try:
        if args.action == "list":
            return _list(prog, args.package, args.interface, args.json)
        if args.action == "why":
            return _why(prog, args.package, args.name)
        if args.action == "check":
            return _check(args.package)
        return _cache(args.package, args.rebuild)
    except PluginError as error:  # unknown package, or a broken module under DROPINS_STRICT
        return _usage_error(prog, str(error))
    except BrokenPipeError:  # `dropins plugins list | head`: the reader has seen enough
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _usage_error(prog: str, message: str) -> int:
    sys.stderr.write(f"{prog}: error: {message}\n")
    return 2


def _short(identifier: str) -> str:
    return identifier.rpartition(".")[2]


def _origin(record: PluginInfo) -> str:
    if record.distribution:
        return f"{record.distribution} {record.version or ''}".strip()
    return record.version or "-"


def _resolve_interface(identifier: str) -> Any:
    """Import the interface named ``identifier``; raise LookupError with a reason if none."""
    import importlib

    module_name, _, attribute = identifier.rpartition(".")
    if not module_name:
        raise LookupError("give its full dotted name, e.g."
                          " dropins.service.interfaces.IServiceMaker")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise LookupError(f"cannot import {module_name}: {type(error).__name__}: {error}")
    interface = getattr(module, attribute, None)
    from zope.interface.interfaces import IInterface

    if interface is None or not IInterface.providedBy(interface):
        raise LookupError(f"{module_name} has no interface named {attribute}")
    return interface


def _list(prog: str, package: str, interface: str | None, as_json: bool) -> int:
    records = list(iter_plugin_info(package=package))
    if interface:
        known = {identifier for record in records for identifier in record.interfaces}
        if interface not in known:
            try:
                _resolve_interface(interface)
            except LookupError as error:
                return _usage_error(prog, f"unknown interface {interface!r}: {error}")
        records = [record for record in records if interface in record.interfaces
                   or (record.state == "broken" and not record.interfaces)]
    if as_json:
        json.dump([record.as_dict() for record in records], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not records:
        sys.stdout.write(f"no plugins in {package}\n")
        return 0
    rows = [("NAME", "INTERFACES", "SOURCE", "DISTRIBUTION", "STATE", "DESCRIPTION")]
    for record in records:
        interfaces = ",".join(_short(i) for i in record.interfaces if i != _MARKER) or "-"
        rows.append((record.name, interfaces, record.source, _origin(record), record.state,
                     record.description))
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        sys.stdout.write("  ".join([*cells, row[5]]).rstrip() + "\n")
    for record in records:
        if record.state != "ok":
            sys.stdout.write(f"{record.name}: {record.state}: {record.reason}\n")
    return 0


def _why(prog: str, package: str, name: str) -> int:
    records = list(iter_plugin_info(package=package))
    matching = [record for record in records if record.name == name]
    if not matching:
        from dropins.plugin.skipped import skipped_files

        skipped = [file for file in skipped_files(package) if file.mentions(name)]
        if skipped:  # a file discovery passes over on purpose: say why, and how to fix it
            sys.stdout.write("".join(f"{name}: skipped: {file.reason}\n" for file in skipped))
            return 0
        import difflib

        names = sorted({record.name for record in records})
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else (
            f"; see '{prog} list --package {package}'")
        _usage_error(prog, f"no plugin named {name!r} in {package}{hint}")
        return 1  # not a usage error: the answer is "nothing", as for grep
    for record in matching:
        where = f"{record.module}:{record.attribute}" if record.attribute else record.module
        lines = [f"{record.name}: {record.state}" + (f": {record.reason}" if record.reason else ""),
                 f"  object:       {where}",
                 f"  file:         {record.path}",
                 f"  source:       {record.source} plugin of {record.package}"]
        if record.distribution or record.version:
            lines.append(f"  distribution: {_origin(record)}")
        if record.interfaces:
            lines.append(f"  interfaces:   {', '.join(record.interfaces)}")
        if record.description:
            lines.append(f"  description:  {record.description}")
        if record.state == "broken":
            lines.append("  hint:         fixed it, and still listed as broken? run"
                         f" 'dropins plugins cache --rebuild --package {record.package}'")
        sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _verify(record: PluginInfo) -> list[str]:
    """Failures of one plugin against its interfaces, one line each."""
    from zope.interface.exceptions import Invalid
    from zope.interface.verify import verifyClass, verifyObject

    try:
        plugin = record.load()
    except PluginError as error:
        return [f"{record.name}: {error}"]
    failures = []
    for identifier in record.interfaces:
        if identifier == _MARKER:
            continue
        try:
            interface = _resolve_interface(identifier)
            if isinstance(plugin, type) and not interface.providedBy(plugin):
                verifyClass(interface, plugin)
            else:
                verifyObject(interface, plugin)
        except (Invalid, LookupError) as error:
            failures.append(f"{record.name}: {_short(identifier)}: {_one_line(str(error))}")
    return failures


def _check(package: str) -> int:
    failures: list[str] = []
    checked = 0
    for record in iter_plugin_info(package=package):
        if record.state == "broken":
            failures.append(f"{record.name}: broken: {record.reason}")
        elif record.state == "ok":
            checked += 1
            failures += _verify(record)
    for line in failures:
        sys.stdout.write(line + "\n")
    verdict = f"{len(failures)} problem(s)" if failures else "all verified"
    sys.stdout.write(f"checked {checked} plugin(s) of {package}: {verdict}\n")
    return 1 if failures else 0


def _cache(package: str, rebuild: bool) -> int:
    records = rebuild_cache(package) if rebuild else list(iter_plugin_info(package=package))
    broken = sum(record.state == "broken" for record in records)
    action = "rebuilt" if rebuild else "refreshed"
    sys.stdout.write(f"{action} plugin caches of {package}: {len(records)} plugin(s),"
                     f" {broken} broken\n")
    return 0
