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
from dropins.plugin.entries import KEY, MODULE, is_broken, is_current
from dropins.plugin.records import PluginInfo, records_from_entry

# Not typing's TYPE_CHECKING: importing typing costs more than a whole warm listing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dropins.plugin.discovery import ScanSession
    from dropins.plugin.entries import Entry

__all__ = ["scan_directory"]

#: cache identity -> entries, as last read or written by this process: repeated discovery calls
#: neither re-read the JSON nor report a broken module twice.
_memory: dict[str, dict[str, Any]] = {}


def _list_modules(directory: str, namespace: bool) -> tuple[list[str], list[list[int]]]:
    """``(names, keys)``, sorted by name: ``x.py`` for modules, ``x/`` for extensions.

    ``os.listdir`` and one ``os.stat`` per file, relative to a descriptor of the directory where
    the platform allows it: a thousand of these stats are most of a warm listing, and a name
    resolved against a descriptor costs less than a whole path, as a plain string list costs
    less than ``DirEntry`` objects.  A file that vanishes while listed is left out.
    """
    handle = None
    try:
        if os.stat in os.supports_dir_fd and os.listdir in os.supports_fd:
            handle = os.open(directory, os.O_RDONLY)
            listed = os.listdir(handle)
        else:  # pragma: no cover - Windows
            listed = os.listdir(directory)
    except OSError as error:
        if handle is not None:
            os.close(handle)
        debug(f"cannot list plugin directory {directory}: {error}")
        return [], []
    try:
        names = sorted([name for name in listed if name[-3:] == ".py" and name != "__init__.py"
                        and name[:-3].isidentifier()])
        relative = names
        if namespace:  # a subpackage counts when it has an __init__.py
            names = sorted(names + [name + "/" for name in listed if name.isidentifier()])
            relative = [os.path.join(name, "__init__.py") if name[-1] == "/" else name
                        for name in names]
        if handle is None:  # pragma: no cover - Windows
            relative = [os.path.join(directory, name) for name in relative]
        return _stat_keys(names, relative, handle, some_missing=namespace)
    finally:
        if handle is not None:
            os.close(handle)


def _stat_keys(names: list[str], paths: list[str], handle: int | None, *,
               some_missing: bool) -> tuple[list[str], list[list[int]]]:
    """``(names, keys)``: the ``[st_mtime_ns, st_size]`` of each of ``paths``, leaving out (with
    its name) any that cannot be stat'ed: vanished while listing, or not a package after all.

    Unless failures are expected (``some_missing``: candidate ``x/__init__.py`` files of a
    namespace package), one comprehension is tried first, freeing each ``stat_result`` at once:
    that common case costs least.
    """
    stat = os.stat
    if not some_missing:
        try:
            return names, [[(status := stat(path, dir_fd=handle)).st_mtime_ns, status.st_size]
                           for path in paths]
        except OSError:
            pass
    found: list[str] = []
    keys: list[list[int]] = []
    for name, path in zip(names, paths, strict=True):
        try:
            status = stat(path, dir_fd=handle)
        except OSError:
            continue
        found.append(name)
        keys.append([status.st_mtime_ns, status.st_size])
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
        self._layers: list[dict[str, Any]] = []

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
    names, keys = _list_modules(directory, namespace)
    cache = _DirectoryCache(directory, namespace)
    memory = _memory.get(directory)
    if memory is None:
        memory = cache.first()
    dotted = package + "."
    modules = [dotted + (name[:-1] if name[-1] == "/" else name[:-3]) for name in names]
    if not session.rebuild and (skip_modules is None or skip_modules.isdisjoint(modules)):
        found = _unchanged(directory, names, keys, modules, memory, package, session)
        if found is not None:
            if skip_modules is not None:
                skip_modules.update(modules)
            if len(memory) != len(names):  # modules were deleted
                memory = {name: memory[name] for name in names}
                cache.save(memory)
            _memory[directory] = memory
            return found
    return _rescan_changed(directory, names, keys, modules, memory, cache, package, session,
                           skip_modules)


def _unchanged(directory: str, names: list[str], keys: list[list[int]], modules: list[str],
               memory: dict[str, Any], package: str,
               session: ScanSession) -> tuple[list[PluginInfo], list[PluginInfo]] | None:
    """The records of every module when none changed since cached (the warm listing), else None.

    This is the per-module check of ``_rescan_changed`` done in bulk: the keys and module names
    of the cached entries are compared as whole lists, and the records of plain ``ok`` modules
    are built inline.  Per module, a function call or two would cost as much as the stat that
    ``_list_modules`` could not avoid.  Cached data of an unexpected shape gives None too, and
    the per-module path then rescans just that module.
    """
    entries: list[Any] = [memory.get(name) for name in names]
    prefix = os.path.join(directory, "")
    make = PluginInfo._cached
    plain: list[PluginInfo] = []
    extensions: list[PluginInfo] = []
    try:
        if [entry[KEY] for entry in entries] != keys or \
                [entry[MODULE] for entry in entries] != modules:
            return None
        for name, module, entry in zip(names, modules, entries, strict=True):
            _key, _module, state, _reason, version, plugins, _environment = entry
            if state == "ok" and name[-1] != "/":
                path = prefix + name
                for plugin_name, attribute, description, interfaces in plugins:
                    plain.append(make(plugin_name, description, tuple(interfaces), module,
                                      attribute, "directory", path, package, None, version,
                                      "ok", None))
            else:
                if state != "ok" and not session.still_broken(entry):
                    return None  # broken, but something may have been installed since
                stem, path, extension = _place(prefix, name)
                records = _records(entry, package, path, stem, extension)
                if session.strict:
                    session.check_cached(entry, path)
                (extensions if extension else plain).extend(records)
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return plain, extensions


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


def _rescan_changed(directory: str, names: list[str], keys: list[list[int]], modules: list[str],
                    memory: dict[str, Any], cache: _DirectoryCache, package: str,
                    session: ScanSession,
                    skip_modules: set[str] | None) -> tuple[list[PluginInfo], list[PluginInfo]]:
    """Module by module: the cached entry where current, else a rescan; saves on change."""
    entries: dict[str, Any] = {}
    changed = False
    plain: list[PluginInfo] = []
    extensions: list[PluginInfo] = []
    prefix = os.path.join(directory, "")
    for name, key, module in zip(names, keys, modules, strict=True):
        stem, path, extension = _place(prefix, name)
        if skip_modules is not None:
            if module in skip_modules:
                _warn_hidden(path, module)
                continue
            skip_modules.add(module)
        entry = memory.get(name)  # the common case first: unchanged since this process or
        if session.rebuild:       # the first cache file saw it
            entry = None
        elif not is_current(entry, key, module):
            entry = cache.lookup(name, key, module, memory)
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
    _memory[directory] = entries
    if changed or not set(memory) <= set(entries):  # rescanned, or modules were deleted
        cache.save(entries)
    return plain, extensions


def _records(entry: Entry, package: str, path: str, stem: str,
             extension: bool) -> list[PluginInfo]:
    return records_from_entry(entry, package=package, path=path, fallback_name=stem,
                              source="namespace" if extension else "directory")
