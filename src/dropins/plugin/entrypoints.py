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

from dropins.plugin.cache import caching_enabled, private_cache_path, read_cache, write_cache
from dropins.plugin.entries import KEY, is_broken
from dropins.plugin.records import PluginInfo, records_from_entry
from dropins.plugin.session import ScanSession

# Not typing's TYPE_CHECKING: importing typing costs more than a whole warm listing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["find_distributions", "normalize_name", "scan_entry_points"]

_memory: dict[str, dict[str, Any]] = {}
_SUFFIXES = (".dist-info", ".egg-info")


def normalize_name(name: str) -> str:
    """The comparable form of a distribution name (PEP 503): lower case, runs of -_. as -."""
    name = name.lower().replace("_", "-").replace(".", "-")
    while "--" in name:
        name = name.replace("--", "-")
    return name


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
        directory = os.path.abspath(entry or os.curdir)
        try:
            iterator = os.scandir(directory)
        except OSError:
            continue  # missing, a zip file, unreadable
        here = False
        with iterator:
            names = sorted([item.name for item in iterator if item.name.endswith(_SUFFIXES)])
        prefix = directory if directory.endswith(os.sep) else directory + os.sep
        for name in names:
            # "name-1.0.dist-info", "name-1.0-py3.11.egg-info", "name.egg-info"
            normalized = normalize_name(name.rpartition(".")[0].partition("-")[0])
            if normalized in seen:
                continue
            seen.add(normalized)
            found.append((prefix + name, normalized))
            here = True
        if here:
            places.append(directory)
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


# A distribution's cache entry: [entry_points.txt key, name, version, entry points], each entry
# point being [name, value, module file or null, module entry (see dropins.plugin.entries)].


def _scan_entry_point(session: ScanSession, name: str, value: str,
                      previous: list[Any] | None) -> list[Any]:
    module, _, attribute = value.partition(":")
    module, attribute = module.strip(), attribute.strip()
    path = _module_origin(module)
    entry = session.rescan(module, path or module, _stat_key(path),
                           mode="object" if attribute else "module",
                           attribute=attribute or None, default_name=name,
                           previous=previous[3] if previous else None)
    return [name, value, path, entry]


def _entry_point_current(point: list[Any], site: str) -> bool:
    """Whether a cached entry point's module is in the state it was scanned in.

    A module installed beside the metadata (in ``site``) changes only when the distribution is
    reinstalled, which rewrites entry_points.txt too, so it is not stat'ed: that halves the
    cost of a warm listing.  A module elsewhere (an editable install's checkout) is checked.
    """
    _name, value, path, entry = point
    if path is None:  # its module could not be found then: is it there now?
        return is_broken(entry) and _module_origin(value.partition(":")[0].strip()) is None
    if path.startswith(site) and not is_broken(entry):
        return True
    return bool(entry[KEY] == _stat_key(path))


def _scan_distribution(session: ScanSession, folder: str, group: str, key: list[int] | None,
                       cached: Any) -> list[Any]:
    name, version = _read_metadata(folder)
    previous: dict[str, Any] = {}
    if isinstance(cached, list) and len(cached) == 4 and isinstance(cached[3], list):
        previous = {point[0]: point for point in cached[3]
                    if isinstance(point, list) and len(point) == 4}
    points = [_scan_entry_point(session, ep_name, value, previous.get(ep_name))
              for ep_name, value in _parse_group(folder, group)] if key is not None else []
    return [key, name, version, points]


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
        if not session.rebuild and isinstance(cached, list) and cached[0] == key:
            try:
                site = os.path.dirname(folder) + os.sep
                if all(_entry_point_current(point, site) for point in cached[3]):
                    records = _records(cached, folder, group)
                    for _name, _value, path, entry in cached[3]:
                        session.check_cached(entry, path or folder)
            except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                records = None  # malformed cached data: rescan this distribution
        if records is None:
            cached = _scan_distribution(session, folder, group, key, cached)
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


def _records(dist: list[Any], folder: str, group: str) -> list[PluginInfo]:
    _key, name, version, points = dist
    records: list[PluginInfo] = []
    for ep_name, _value, path, entry in sorted(points, key=lambda point: str(point[0])):
        records.extend(records_from_entry(
            entry, package=group, source="entry-point", path=path or folder,
            fallback_name=ep_name, distribution=name, version=version))
    return records
