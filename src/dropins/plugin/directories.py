"""Plugins from the directories of a plugin package, one cache file per directory.

Each ``*.py`` file in a directory of the package's ``__path__`` is a plugin module.  When the
package is a namespace package (``app.extensions``, no ``__init__.py``), each subpackage is also
a namespace extension (dripline style).  Every module has one cache entry, keyed on its file's
``(st_mtime_ns, st_size)``: any difference, including a replacement with an *older* mtime
(``cp -p``), is a miss, and only that module is imported again.

Cache location per directory: beside the modules (``dropins.cache.json``) when writable, else
in the user cache directory; for namespace packages always the user cache directory, so that
uninstalling the last extension leaves nothing behind in site-packages.
"""

from __future__ import annotations

import os

from dropins.plugin.cache import (
    CACHE_FILENAME,
    caching_enabled,
    override_directory,
    private_cache_path,
    read_cache,
    write_cache,
)
from dropins.plugin.diagnostics import debug
from dropins.plugin.entries import is_current
from dropins.plugin.records import PluginInfo, records_from_entry
from dropins.plugin.session import ScanSession

# Not typing's TYPE_CHECKING: importing typing costs more than a whole warm listing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dropins.plugin.entries import Entry

__all__ = ["scan_directory"]

#: cache identity -> entries, as last read or written by this process: repeated discovery calls
#: neither re-read the JSON nor report a broken module twice.
_memory: dict[str, dict[str, Any]] = {}


def _list_modules(directory: str, namespace: bool) -> dict[str, tuple[str, str, list[int]]]:
    """``{entry name: (stem, file path, key)}``: ``x.py`` for modules, ``x/`` for extensions.

    The directory is listed through a file descriptor where the platform allows it, so each
    ``stat`` resolves one name instead of the whole path: a thousand of them are most of a warm
    listing.
    """
    found: dict[str, tuple[str, str, list[int]]] = {}
    handle = None
    try:
        if os.scandir in os.supports_fd:
            handle = os.open(directory, os.O_RDONLY)
            iterator = os.scandir(handle)
        else:  # pragma: no cover - Windows
            iterator = os.scandir(directory)
    except OSError as error:
        if handle is not None:
            os.close(handle)
        debug(f"cannot list plugin directory {directory}: {error}")
        return found
    prefix = os.path.join(directory, "")
    try:
        with iterator:
            for item in iterator:
                name = item.name
                if name[-3:] == ".py":
                    stem = name[:-3]
                    if stem == "__init__" or not stem.isidentifier():
                        continue
                    try:
                        status = item.stat()
                    except OSError:
                        continue  # vanished while listing
                    found[name] = (stem, prefix + name, [status.st_mtime_ns, status.st_size])
                elif namespace and name.isidentifier() and item.is_dir():
                    init = os.path.join(prefix + name, "__init__.py")
                    try:
                        status = os.stat(init)
                    except OSError:
                        continue  # a directory that is not a package
                    found[name + "/"] = (name, init, [status.st_mtime_ns, status.st_size])
    finally:
        if handle is not None:
            os.close(handle)
    return found


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
        self._layers: list[dict[str, Any]] = []

    def _path(self, which: str) -> str:
        if which == "beside":
            return os.path.join(self.identity, CACHE_FILENAME)
        return private_cache_path(self._kind, self.identity)

    def _locations(self) -> list[str]:
        """Where this directory's cache may be written, in order of preference."""
        beside = self.enabled and self._kind == "dir" and not override_directory()
        return [self._path(which) for which in (["beside"] if beside else []) + ["private"]]

    def _more(self) -> bool:
        """Read the next existing, valid cache file; False when none is left."""
        while self._unread:
            entries = read_cache(self._path(self._unread.pop(0)), self.identity)
            if entries is not None:
                self._layers.append(entries)
                return True
        return False

    def first(self) -> dict[str, Any]:
        """The entries of the first readable cache file (or none)."""
        if not self._layers:
            self._more()
        return self._layers[0] if self._layers else {}

    def lookup(self, name: str, key: list[int], module: str,
               memory: dict[str, Any]) -> Entry | None:
        """The cached entry for file ``name`` matching ``key`` and ``module``, if any."""
        entry = memory.get(name)
        if is_current(entry, key, module):
            return entry
        index = 0
        while True:
            while index < len(self._layers):
                entry = self._layers[index].get(name)
                index += 1
                if is_current(entry, key, module):
                    return entry
            if not self._more():
                return None

    def save(self, entries: dict[str, Any]) -> None:
        if not self.enabled:
            return
        for path in self._locations():
            if write_cache(path, self.identity, entries):
                return


def scan_directory(directory: str, package: str, session: ScanSession, *, namespace: bool = False,
                   skip_modules: set[str] | None = None) -> tuple[list[PluginInfo],
                                                                  list[PluginInfo]]:
    """Records of the plugin modules and (for a namespace package) extensions in ``directory``.

    Returns ``(module records, extension records)``, each sorted by module name.  Module names in
    ``skip_modules`` (already found in an earlier directory of ``__path__``, so unreachable by
    import) are skipped, and the names found here are added to it.
    """
    directory = os.path.abspath(directory)
    files = _list_modules(directory, namespace)
    cache = _DirectoryCache(directory, namespace)
    memory = _memory.get(directory)
    if memory is None:
        memory = dict(cache.first())
    entries: dict[str, Any] = {}
    changed = False
    modules: list[PluginInfo] = []
    extensions: list[PluginInfo] = []
    for name in sorted(files):
        stem, path, key = files[name]
        module = f"{package}.{stem}"
        if skip_modules is not None:
            if module in skip_modules:
                debug(f"skipping {path}: module {module} is already provided by an earlier"
                      " directory of the package")
                continue
            skip_modules.add(module)
        extension = name[-1] == "/"
        entry = memory.get(name)  # the common case first: unchanged since this process or
        if session.rebuild:       # the first cache file saw it
            entry = None
        elif not is_current(entry, key, module):
            entry = cache.lookup(name, key, module, memory)
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
        (extensions if extension else modules).extend(records)
    _memory[directory] = entries
    if changed or not set(memory) <= set(entries):  # rescanned, or modules were deleted
        cache.save(entries)
    return modules, extensions


def _records(entry: Entry, package: str, path: str, stem: str,
             extension: bool) -> list[PluginInfo]:
    return records_from_entry(entry, package=package, path=path, fallback_name=stem,
                              source="namespace" if extension else "directory")
