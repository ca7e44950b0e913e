"""Plugins from the directories of a plugin package, one cache file per directory.

Each ``*.py`` file in a directory of the package's ``__path__`` is a plugin module.  When the
package is a namespace package (``app.extensions``, no ``__init__.py``), each subpackage is also
a namespace extension (dripline style).  Every module has one cache entry, keyed on its file's
``(st_mtime_ns, st_size)``: any difference, including a replacement with an *older* mtime
(``cp -p``), is a miss, and only that module is imported again.

Cache location per directory: beside the modules (``dropins.cache.json``) when writable and not
inside an installation (site-packages, the Python prefixes), else in the user cache directory;
for namespace packages always the user cache directory.  Either way, uninstalling a
distribution leaves nothing behind in site-packages.
"""

from __future__ import annotations

import os

from dropins.plugin.cache import (
    CACHE_FILENAME,
    caching_enabled,
    in_installed_tree,
    override_directory,
    private_cache_path,
    read_cache,
    write_cache,
)
from dropins.plugin.diagnostics import debug, warn
from dropins.plugin.entries import file_key, is_broken, is_current
from dropins.plugin.listings import Listings
from dropins.plugin.records import PluginInfo, records_from_entry
from dropins.plugin.table import TABLE_LAYOUT, pack, plain_records, unpack

# Not typing's TYPE_CHECKING: importing typing costs more than a whole warm listing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dropins.plugin.discovery import ScanSession
    from dropins.plugin.entries import Entry

__all__ = ["scan_directory"]

#: directory -> table (``dropins.plugin.table``), as last read or written by this process:
#: repeated discovery calls neither re-read the JSON nor report a broken module twice.
_memory: dict[str, dict[str, Any]] = {}


def _list_modules(directory: str, namespace: bool,
                  relist: bool = False) -> tuple[list[str], list[tuple[int, int]]]:
    """``(names, keys)``, sorted by name: ``x.py`` for modules, ``x/`` for extensions.

    The names come from ``os.listdir``, or from the listing remembered while the directory's
    status is unchanged (``dropins.plugin.listings``; not for a namespace package, whose
    extension folders can gain an ``__init__.py`` without changing it; nor with ``relist``).
    Then one ``os.stat`` per file, relative to a descriptor of the directory where the platform
    allows it: a thousand of these stats are most of a warm listing, and a name resolved
    against a descriptor costs less than a whole path.  A file that vanishes while listed is
    left out.
    """
    if not (os.stat in os.supports_dir_fd and os.listdir in os.supports_fd):
        return _list_by_path(directory, namespace)  # pragma: no cover - Windows
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError as error:
        debug(f"cannot list plugin directory {directory}: {error}")
        return [], []
    try:
        if not namespace:
            return _list_plain(directory, handle, relist)
        listed = os.listdir(handle)
        names = sorted(_module_files(listed) + _extension_folders(listed))
        relative = [os.path.join(name, "__init__.py") if name[-1] == "/" else name
                    for name in names]
        return _stat_keys(names, relative, handle, some_missing=True)
    except OSError as error:
        debug(f"cannot list plugin directory {directory}: {error}")
        return [], []
    finally:
        os.close(handle)


def _list_by_path(directory: str,
                  namespace: bool) -> tuple[list[str], list[tuple[int, int]]]:  # pragma: no cover
    """``_list_modules`` where directory descriptors cannot be used (Windows)."""
    try:
        listed = os.listdir(directory)
    except OSError as error:
        debug(f"cannot list plugin directory {directory}: {error}")
        return [], []
    names = sorted(_module_files(listed) + (_extension_folders(listed) if namespace else []))
    relative = [os.path.join(directory, name, "__init__.py") if name[-1] == "/"
                else os.path.join(directory, name) for name in names]
    return _stat_keys(names, relative, None, some_missing=namespace)


def _extension_folders(listed: list[str]) -> list[str]:
    """Candidate namespace extensions (``x/``) among ``listed``: they count if the stat of
    their ``__init__.py`` succeeds."""
    return [name + "/" for name in listed if name.isidentifier()]


def _module_files(listed: list[str]) -> list[str]:
    """The plugin module files among directory entries ``listed``, sorted."""
    return sorted([name for name in listed if name[-3:] == ".py" and name != "__init__.py"
                   and name[:-3].isidentifier()])


def _list_plain(directory: str, handle: int,
                relist: bool) -> tuple[list[str], list[tuple[int, int]]]:
    """``_list_modules`` for a directory of plugin modules open as ``handle``."""
    listings = Listings("listing", directory, trusted=not relist)
    names = listings.names(directory, handle, _module_files)
    listings.save()
    return _stat_keys(names, names, handle, some_missing=False)


def _stat_keys(names: list[str], paths: list[str], handle: int | None, *,
               some_missing: bool) -> tuple[list[str], list[tuple[int, int]]]:
    """``(names, keys)``: the ``(st_mtime_ns, st_size)`` of each of ``paths``, leaving out (with
    its name) any that cannot be stat'ed: vanished while listing, or not a package after all.

    Each key is ``entries.file_key`` as a tuple.  Unless failures are expected
    (``some_missing``: candidate ``x/__init__.py`` files of a namespace package), one
    comprehension building them inline is tried first, freeing each ``stat_result`` at once:
    that common case, the warm listing, costs least (a function call per file would add a
    tenth to it).
    """
    if not some_missing:
        stat = os.stat
        try:
            return names, [((status := stat(path, dir_fd=handle)).st_mtime_ns, status.st_size)
                           for path in paths]
        except OSError:
            pass
    found: list[str] = []
    keys: list[tuple[int, int]] = []
    for name, path in zip(names, paths, strict=True):
        key = file_key(path, handle)
        if key is not None:
            found.append(name)
            keys.append((key[0], key[1]))
    return found, keys


class _DirectoryCache:
    """The cache files of one directory, read lazily layer by layer and written on change.

    Layers are the file beside the modules, then the private one: a system-wide cache built at
    install time may be stale for a module that only the private cache of this user knows.
    """

    def __init__(self, directory: str, namespace: bool) -> None:
        self.identity = directory
        self.enabled = caching_enabled()
        self._kind = "namespace" if namespace else "dir"
        beside = self.enabled and not namespace and not override_directory()
        # Paths are resolved only when read: the private one needs platformdirs.
        self._unread = (["beside"] if beside else []) + (["private"] if self.enabled else [])
        self._tables: list[dict[str, Any]] = []
        self._entries: list[dict[str, Any]] = []

    def _path(self, which: str) -> str:
        if which == "beside":
            return os.path.join(self.identity, CACHE_FILENAME)
        return private_cache_path(self._kind, self.identity)

    def _locations(self) -> list[str]:
        """Where this directory's cache may be written, in order of preference.

        Never beside the modules of an installed distribution: the installer does not know
        the file, so it would survive ``pip uninstall``.  Readers still look beside first
        (a cache an application ships), then in the user cache directory, where this writes.
        """
        beside = (self.enabled and self._kind == "dir" and not override_directory()
                  and not in_installed_tree(self.identity))
        return [self._path(which) for which in (["beside"] if beside else []) + ["private"]]

    def _more(self) -> bool:
        """Read the next existing, valid cache file; False when none is left."""
        while self._unread:
            table = read_cache(self._path(self._unread.pop(0)), self.identity, TABLE_LAYOUT)
            if table is not None:
                self._tables.append(table)
                return True
        return False

    def first(self) -> dict[str, Any] | None:
        """The table of the first readable cache file, if any."""
        if not self._tables:
            self._more()
        return self._tables[0] if self._tables else None

    def layer(self, index: int) -> dict[str, Any]:
        """The entries of the ``index``-th cache file read (none if there is no such file)."""
        while len(self._entries) <= index < len(self._tables):
            self._entries.append(_entries_of(self._tables[len(self._entries)]))
        return self._entries[index] if index < len(self._entries) else {}

    def lookup(self, name: str, key: list[int], module: str) -> Entry | None:
        """The cached entry for file ``name`` matching ``key`` and ``module`` in any layer."""
        index = 0
        while True:
            while index < len(self._tables):
                entry = self.layer(index).get(name)
                index += 1
                if is_current(entry, key, module):
                    return entry
            if not self._more():
                return None

    def save(self, table: dict[str, Any]) -> None:
        if not self.enabled:
            return
        for path in self._locations():
            if write_cache(path, self.identity, TABLE_LAYOUT, table):
                return


def _entries_of(table: dict[str, Any] | None) -> dict[str, Any]:
    """The entries of a cached ``table``; none when it is absent or malformed."""
    if table is None:
        return {}
    try:
        return unpack(table)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        debug("ignoring a malformed plugin cache table")
        return {}


def scan_directory(directory: str, package: str, session: ScanSession, *, namespace: bool = False,
                   claimed: set[str] | None = None) -> tuple[list[PluginInfo], list[PluginInfo]]:
    """Records of the plugin modules and (for a namespace package) extensions in ``directory``.

    Returns ``(module records, extension records)``, each sorted by module name.  ``claimed``
    holds the modules found in earlier directories of ``__path__``: those are unreachable by
    import here, so skipped with a warning; the modules found here are added.
    """
    directory = os.path.abspath(directory)
    names, keys = _list_modules(directory, namespace, relist=session.rebuild)
    # What a file claims: its name, or in a namespace package (where "x.py" and "x/" are the
    # same module) its stem; a package's directories are all namespace ones or none.
    claims = [name[:-1] if name[-1] == "/" else name[:-3] for name in names] if namespace \
        else names
    cache = _DirectoryCache(directory, namespace)
    remembered = _memory.get(directory)
    table = remembered if remembered is not None else cache.first()
    prefix = os.path.join(directory, "")
    if (table is not None and not session.rebuild and not namespace
            and (not claimed or claimed.isdisjoint(claims))):
        records = plain_records(table, package, names, keys, prefix)
        if records is not None:  # the warm listing: nothing changed, nothing broken
            if claimed is not None:
                claimed.update(claims)
            _memory[directory] = table
            return records, []
    memory = _entries_of(remembered) if remembered is not None else cache.layer(0)
    return _rescan_changed(directory, names, keys, claims, memory, cache, package, session,
                           claimed)


def _place(prefix: str, name: str) -> tuple[str, str, bool]:
    """``(stem, file path, is an extension)`` of the listed name ``x.py`` or ``x/``."""
    if name[-1] == "/":
        return name[:-1], os.path.join(prefix + name[:-1], "__init__.py"), True
    return name[:-3], prefix + name, False


#: module files already reported as hidden, so that repeated discovery in one process warns once
_hidden_reported: set[str] = set()


def _warn_hidden(path: str, module: str) -> None:
    """Say that a module file can never load because an earlier directory has the same name.

    Python imports ``package.name`` from the first directory of ``__path__`` that has it, so a
    development file named like a built-in plugin module (``dropins/plugins/web.py``) would be
    silently ignored; the author needs to hear it, once per process.
    """
    if path not in _hidden_reported:
        _hidden_reported.add(path)
        warn(f"plugin module {path} is ignored: {module} is already provided by an earlier"
             " directory of the package; rename the file")


def _rescan_changed(directory: str, names: list[str], keys: list[tuple[int, int]],
                    claims: list[str], memory: dict[str, Any], cache: _DirectoryCache,
                    package: str, session: ScanSession,
                    claimed: set[str] | None) -> tuple[list[PluginInfo], list[PluginInfo]]:
    """Module by module: the cached entry where current, else a rescan; saves on change.

    ``memory`` holds the entries this process last saw (or the first cache file's): the common
    case; other cache layers are looked up only for a module that is not current there.
    """
    entries: dict[str, Any] = {}
    changed = False
    plain: list[PluginInfo] = []
    extensions: list[PluginInfo] = []
    prefix = os.path.join(directory, "")
    for name, state, claim in zip(names, keys, claims, strict=True):
        key = list(state)  # entries keep JSON's lists
        stem, path, extension = _place(prefix, name)
        module = f"{package}.{stem}"
        if claimed is not None:
            if claim in claimed:
                _warn_hidden(path, module)
                continue
            claimed.add(claim)
        entry = memory.get(name)
        if session.rebuild:
            entry = None
        elif not is_current(entry, key, module):
            entry = cache.lookup(name, key, module)
        if entry is not None and is_broken(entry) and not session.still_broken(entry):
            entry = None  # retried: the import environment changed since it failed
        records = None
        if entry is not None:
            try:
                records = _records(entry, package, path, stem, extension)
            except (KeyError, IndexError, TypeError, ValueError):
                entry = None
            else:
                if session.strict:
                    session.check_cached(entry, path)
        if entry is None or records is None:
            old = memory.get(name)
            entry = session.rescan(module, path, key, mode="extension" if extension else "module",
                                   previous=old if isinstance(old, list) else None)
            records = _records(entry, package, path, stem, extension)
            changed = True
        entries[name] = entry
        (extensions if extension else plain).extend(records)
    table = pack(package, entries)
    _memory[directory] = table
    if changed or not set(memory) <= set(entries):  # rescanned, or modules were deleted
        cache.save(table)
    return plain, extensions


def _records(entry: Entry, package: str, path: str, stem: str,
             extension: bool) -> list[PluginInfo]:
    return records_from_entry(entry, package=package, path=path, fallback_name=stem,
                              source="namespace" if extension else "directory")
