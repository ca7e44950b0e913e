"""Plugins from the entry points of installed distributions (group = the plugin package name).

``importlib.metadata.entry_points()`` reads every distribution's metadata on every call; a warm
listing here does not use it at all.  It scans each ``sys.path`` directory with ``os.scandir``
for ``*.dist-info`` / ``*.egg-info`` folders and stats one file per distribution,
``entry_points.txt``; only a distribution whose file changed (or is new) has its metadata read
again.  Each entry point in the group also remembers the state of its module file, because an
editable install changes the module and not the metadata.

Distributions are taken in ``sys.path`` order and the first one of a (normalized) name wins, as
the import system would: an editable install shadowing a regular one is not listed twice.  The
cache is one file per (group, environment) in the user cache directory; the environment is
``sys.prefix`` plus the ``sys.path`` directories that hold distributions.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from dropins.plugin.cache import caching_enabled, private_cache_path, read_cache, write_cache
from dropins.plugin.records import PluginInfo, records_from_entry
from dropins.plugin.session import ScanSession

__all__ = ["find_distributions", "normalize_name", "scan_entry_points"]

_memory: dict[str, dict[str, Any]] = {}
_SUFFIXES = (".dist-info", ".egg-info")


def normalize_name(name: str) -> str:
    """The comparable form of a distribution name (PEP 503): lower case, runs of -_. as -."""
    out: list[str] = []
    for char in name.lower():
        if char in "-_.":
            if out and out[-1] == "-":
                continue
            char = "-"
        out.append(char)
    return "".join(out)


def find_distributions() -> tuple[list[tuple[str, str]], list[str]]:
    """``([(metadata folder, normalized name)], [sys.path directories holding them])``.

    The first distribution of each normalized name on ``sys.path`` wins.
    """
    seen: set[str] = set()
    found: list[tuple[str, str]] = []
    places: list[str] = []
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        directory = entry or os.curdir
        try:
            iterator = os.scandir(directory)
        except OSError:
            continue  # missing, a zip file, unreadable
        here = False
        with iterator:
            names = sorted(item.name for item in iterator if item.name.endswith(_SUFFIXES))
        for name in names:
            normalized = normalize_name(name.rpartition(".")[0].partition("-")[0])
            if normalized in seen:
                continue
            seen.add(normalized)
            found.append((os.path.abspath(os.path.join(directory, name)), normalized))
            here = True
        if here:
            places.append(os.path.abspath(directory))
    return found, places


def _stat_key(path: str | None) -> list[int] | None:
    if path is None:
        return None
    try:
        status = os.stat(path)
    except OSError:
        return None
    return [status.st_mtime_ns, status.st_size]


def _read_metadata(folder: str) -> tuple[str, str | None]:
    """Name and version from the METADATA / PKG-INFO headers, else from the folder name."""
    stem = os.path.basename(folder).rpartition(".")[0]
    name, _, rest = stem.partition("-")
    version: str | None = rest.partition("-")[0] or None
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(folder, filename), encoding="utf-8", errors="replace") as f:
                for line in f:
                    if not line.strip():
                        break
                    field, _, value = line.partition(":")
                    if field == "Name":
                        name = value.strip()
                    elif field == "Version":
                        version = value.strip()
            break
        except OSError:
            continue
    return name, version


def _parse_group(folder: str, group: str) -> list[tuple[str, str]]:
    """``[(name, value)]`` of the entry points of ``group`` in ``folder``/entry_points.txt."""
    try:
        with open(os.path.join(folder, "entry_points.txt"), encoding="utf-8",
                  errors="replace") as stream:
            lines = stream.read().splitlines()
    except OSError:
        return []
    found: list[tuple[str, str]] = []
    current = None
    for raw in lines:
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif current == group and "=" in line:
            name, _, value = line.partition("=")
            value = value.partition("[")[0].strip()  # drop extras: "mod:obj [extra]"
            if name.strip() and value:
                found.append((name.strip(), value))
    return found


def _module_origin(module: str) -> str | None:
    """The file that ``module`` would be imported from, without importing it if top-level."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except Exception:  # a broken parent package, an invalid name
        return None
    origin = getattr(spec, "origin", None)
    return origin if isinstance(origin, str) and os.path.exists(origin) else None


def _scan_entry_point(session: ScanSession, name: str, value: str,
                      previous: dict[str, Any] | None) -> dict[str, Any]:
    module, _, attribute = value.partition(":")
    module, attribute = module.strip(), attribute.strip()
    path = _module_origin(module)
    key = _stat_key(path)
    entry = session.rescan(module, path or module, key,
                           mode="object" if attribute else "module",
                           attribute=attribute or None, default_name=name, previous=previous)
    entry.update(ep=name, value=value, path=path)
    return entry


def _entry_point_current(entry: dict[str, Any]) -> bool:
    """Whether a cached entry point's module file is in the state it was scanned in."""
    path = entry.get("path")
    if path is None:  # its module could not be found then: is it there now?
        return entry.get("state") == "broken" and _module_origin(entry["value"].partition(":")[0]
                                                                 .strip()) is None
    return bool(entry.get("key") == _stat_key(path))


def _scan_distribution(session: ScanSession, folder: str, group: str, key: list[int] | None,
                       cached: dict[str, Any] | None) -> dict[str, Any]:
    name, version = _read_metadata(folder)
    previous = {ep.get("ep"): ep for ep in (cached or {}).get("eps", []) if isinstance(ep, dict)}
    eps = [_scan_entry_point(session, ep_name, value, previous.get(ep_name))
           for ep_name, value in _parse_group(folder, group)] if key is not None else []
    return {"key": key, "name": name, "version": version, "eps": eps}


def scan_entry_points(group: str, session: ScanSession) -> list[PluginInfo]:
    """Records of the entry points in ``group``, by distribution name then entry-point name."""
    distributions, places = find_distributions()
    identity = "\0".join([group, sys.prefix, *places])
    memory = _memory.get(identity)
    if memory is None:
        memory = {}
        if caching_enabled():
            memory = read_cache(private_cache_path("entry-points", identity, hint=group),
                                identity) or {}
    entries: dict[str, Any] = {}
    listed: list[tuple[str, str, list[PluginInfo]]] = []
    changed = False
    for folder, normalized in distributions:
        key = _stat_key(os.path.join(folder, "entry_points.txt"))
        cached = memory.get(folder)
        records = None
        if isinstance(cached, dict) and cached.get("key") == key and not session.rebuild:
            try:
                if all(_entry_point_current(ep) for ep in cached["eps"]):
                    records = _records(cached, folder, group)
                    for ep in cached["eps"]:
                        session.check_cached(ep, ep["path"] or folder)
            except (KeyError, TypeError, ValueError, AttributeError):
                records = None  # malformed cached data: rescan this distribution
        if records is None:
            cached = _scan_distribution(session, folder, group, key,
                                        cached if isinstance(cached, dict) else None)
            records = _records(cached, folder, group)
            changed = True
        entries[folder] = cached
        if records:
            listed.append((normalized, folder, records))
    _memory[identity] = entries
    if caching_enabled() and (changed or set(memory) != set(entries)):
        write_cache(private_cache_path("entry-points", identity, hint=group), identity, entries)
    listed.sort(key=lambda item: item[:2])
    return [record for _name, _folder, records in listed for record in records]


def _records(dist: dict[str, Any], folder: str, group: str) -> list[PluginInfo]:
    records: list[PluginInfo] = []
    for ep in sorted(dist["eps"], key=lambda ep: str(ep["ep"])):
        records.extend(records_from_entry(
            ep, package=group, source="entry-point", path=ep["path"] or folder,
            fallback_name=ep["ep"], distribution=dist["name"], version=dist["version"]))
    return records
