"""Plugins from the entry points of installed distributions (group = the plugin package name).

``importlib.metadata.entry_points()`` reads every distribution's metadata on every call; a warm
listing here does not use it at all.  It finds the ``*.dist-info`` / ``*.egg-info`` folders of
each ``sys.path`` directory (listing it only when it changed: ``dropins.plugin.listings``) and
stats one file per distribution, ``entry_points.txt``; only a distribution whose file changed
(or is new) has its metadata read again.  Each entry point in the group also remembers the
state of its module file, because an editable install changes the module and not the metadata.

Distributions are taken in ``sys.path`` order and the first one of a (normalized) name wins, as
the import system would: an editable install shadowing a regular one is not listed twice.  The
cache is one file per (group, environment) in the user cache directory; the environment is
``sys.prefix`` plus the ``sys.path`` directories that hold distributions.
"""

from __future__ import annotations

import os
import sys

from dropins.plugin.cache import caching_enabled, private_cache_path, read_cache, write_cache
from dropins.plugin.entries import KEY, LAYOUT, STATE, file_key, is_broken
from dropins.plugin.listings import Listings
from dropins.plugin.records import PluginInfo, records_from_entry

# Not typing's TYPE_CHECKING: importing typing costs more than a whole warm listing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dropins.plugin.discovery import ScanSession

__all__ = ["find_distributions", "normalize_name", "read_metadata", "scan_entry_points"]

_memory: dict[str, dict[str, Any]] = {}
_SUFFIXES = (".dist-info", ".egg-info")


def normalize_name(name: str) -> str:
    """The comparable form of a distribution name (PEP 503): lower case, runs of -_. as -."""
    name = name.lower().replace("_", "-").replace(".", "-")
    while "--" in name:
        name = name.replace("--", "-")
    return name


def find_distributions(listings: Listings | None = None) -> tuple[
        list[tuple[str, str, list[int] | None]], list[str]]:
    """``([(metadata folder, normalized name, entry_points.txt key)], [sys.path directories
    holding them])``; the key is ``None`` when the distribution has no entry_points.txt.

    The first distribution of each normalized name on ``sys.path`` wins.  Each directory's
    metadata folders come from ``listings`` while the directory is unchanged, else from
    ``os.listdir`` (and are remembered there); their files are stat'ed relative to a descriptor
    of the directory: cheaper than ``DirEntry`` objects and whole paths, with a thousand
    distributions.
    """
    seen: set[str] = set()
    found: list[tuple[str, str, list[int] | None]] = []
    places: list[str] = []
    by_descriptor = os.stat in os.supports_dir_fd and os.listdir in os.supports_fd
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        directory = os.path.abspath(entry or os.curdir)
        handle = None
        try:
            if by_descriptor:
                handle = os.open(directory, os.O_RDONLY)
                names = _metadata_folders(directory, handle, listings)
            else:  # pragma: no cover - Windows
                names = _select_metadata(os.listdir(directory))
        except OSError:  # missing, a zip file, unreadable
            if handle is not None:
                os.close(handle)
            continue
        try:
            if not names:
                continue
            prefix = directory if directory.endswith(os.sep) else directory + os.sep
            here = len(found)
            for name in names:
                # "name-1.0.dist-info", "name-1.0-py3.11.egg-info", "name.egg-info"
                normalized = normalize_name(name.rpartition(".")[0].partition("-")[0])
                if normalized in seen:
                    continue
                seen.add(normalized)
                listing = name + os.sep + "entry_points.txt"
                found.append((prefix + name, normalized,
                              file_key(listing if handle is not None else prefix + listing,
                                        handle)))
            if len(found) > here:
                places.append(directory)
        finally:
            if handle is not None:
                os.close(handle)
    return found, places


def _metadata_folders(directory: str, handle: int, listings: Listings | None) -> list[str]:
    """The sorted ``*.dist-info`` / ``*.egg-info`` names in ``directory`` (open as ``handle``)."""
    if listings is None:
        return _select_metadata(os.listdir(handle))
    return listings.names(directory, handle, _select_metadata)


def _select_metadata(listed: list[str]) -> list[str]:
    return sorted([name for name in listed if name.endswith(_SUFFIXES)])


def read_metadata(folder: str) -> tuple[str, str | None]:
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
    entry = session.rescan(module, path or module, file_key(path),
                           mode="object" if attribute else "module",
                           attribute=attribute or None, default_name=name,
                           previous=previous[3] if previous else None)
    return [name, value, path, entry]


def _entry_point_current(point: list[Any], site: str, session: ScanSession) -> bool:
    """Whether a cached entry point's module is in the state it was scanned in.

    A module installed beside the metadata (in ``site``) changes only when the distribution is
    reinstalled, which rewrites entry_points.txt too, so it is not stat'ed: that halves the
    cost of a warm listing.  A module elsewhere (an editable install's checkout) is checked.
    A broken module is also retried when the import environment changed since it failed (a
    missing dependency may have been installed).
    """
    _name, value, path, entry = point
    if is_broken(entry) and not session.still_broken(entry):
        return False
    if path is None:  # its module could not be found then: is it there now?
        return is_broken(entry) and _module_origin(value.partition(":")[0].strip()) is None
    if path.startswith(site) and not is_broken(entry):
        return True
    return bool(entry[KEY] == file_key(path))


def _scan_distribution(session: ScanSession, folder: str, group: str, key: list[int] | None,
                       cached: Any) -> list[Any]:
    name, version = read_metadata(folder)
    previous: dict[str, Any] = {}
    if isinstance(cached, list) and len(cached) == 4 and isinstance(cached[3], list):
        previous = {point[0]: point for point in cached[3]
                    if isinstance(point, list) and len(point) == 4}
    points = [_scan_entry_point(session, ep_name, value, previous.get(ep_name))
              for ep_name, value in _parse_group(folder, group)] if key is not None else []
    return [key, name, version, points]


def scan_entry_points(group: str, session: ScanSession) -> list[PluginInfo]:
    """Records of the entry points in ``group``, by distribution name then entry-point name."""
    listings = Listings("path-listings", sys.prefix, trusted=not session.rebuild)
    distributions, places = find_distributions(listings)
    listings.save()
    identity = "\0".join([group, sys.prefix, *places])
    memory = _memory.get(identity)
    if memory is None:
        memory = {}
        if caching_enabled():
            document = read_cache(private_cache_path("entry-points", identity, hint=group),
                                  identity, LAYOUT)
            if document is not None and isinstance(document.get("entries"), dict):
                memory = document["entries"]
    entries: dict[str, Any] = {}
    listed: list[tuple[str, str, list[PluginInfo]]] = []
    changed = False
    for folder, normalized, key in distributions:
        cached = memory.get(folder)
        records = None
        if not session.rebuild and isinstance(cached, list) and cached[0] == key:
            try:
                records = _cached_records(cached, folder, group, session)
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
        write_cache(private_cache_path("entry-points", identity, hint=group), identity, LAYOUT,
                    {"entries": entries})
    listed.sort()  # normalized names are unique: the records lists are never compared
    return [record for _name, _folder, records in listed for record in records]


def _cached_records(dist: list[Any], folder: str, group: str,
                    session: ScanSession) -> list[PluginInfo] | None:
    """The records of a distribution whose entry_points.txt is unchanged, or None when one of
    its entry points' modules changed.

    The common case (a module installed beside the metadata, scanned ``ok``) is decided and
    built inline: with a thousand distributions, a function call per entry point costs as
    much as the stat of its entry_points.txt.
    """
    _key, name, version, points = dist
    if not points:  # most distributions have no entry point in the group
        return []
    site = folder.rpartition(os.sep)[0] + os.sep
    for point in points:
        path, entry = point[2], point[3]
        if not (path.__class__ is str and path.startswith(site) and entry[STATE] == "ok") \
                and not _entry_point_current(point, site, session):
            return None
    if len(points) > 1:
        points = sorted(points, key=_point_name)
    make = PluginInfo._cached
    records: list[PluginInfo] = []
    for ep_name, _value, path, entry in points:
        _key, module, state, reason, entry_version, plugins, _environment = entry
        if state != "ok" or reason is not None:  # broken, or some plugins have a problem
            records += records_from_entry(
                entry, package=group, source="entry-point", path=path or folder,
                fallback_name=ep_name, distribution=name, version=version)
            continue
        where, known = path or folder, version or entry_version
        for plugin_name, attribute, description, interfaces in plugins:
            records.append(make(plugin_name, description, tuple(interfaces), module, attribute,
                                "entry-point", where, group, name, known, "ok", None))
    if session.strict:
        for _name, _value, path, entry in points:
            session.check_cached(entry, path or folder)
    return records


def _point_name(point: list[Any]) -> str:
    return str(point[0])


def _records(dist: list[Any], folder: str, group: str) -> list[PluginInfo]:
    _key, name, version, points = dist
    records: list[PluginInfo] = []
    for ep_name, _value, path, entry in sorted(points, key=_point_name):
        records.extend(records_from_entry(
            entry, package=group, source="entry-point", path=path or folder,
            fallback_name=ep_name, distribution=name, version=version))
    return records
