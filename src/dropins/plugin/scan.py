"""Importing a plugin module and describing its plugins as cacheable metadata.

This is the only discovery module that imports zope.interface and plugin code, and it is imported
only on a cache miss.  Its output, an *entry*, is plain JSON-ready data::

    [[mtime_ns, size], "matsim.plugins.metals", "ok", null, null,
     [["steel_plate", "steel_plate", "Steel plate", ["matsim.IMaterial", ...]]]]

(see ``dropins.plugin.entries`` for the layout).

Which objects a module contributes depends on how it was reached:

* a plugin module (a file in a plugin directory, or an entry point naming a module): every
  module-level object providing ``IPlugin``, except classes and functions defined in another
  module, so ``from .base import SomePlugin`` does not list ``SomePlugin`` twice; other objects
  (instances) count wherever they are bound, since an instance does not record where it was made;
* an entry point ``module:attr``: that one object, whether or not it provides ``IPlugin``;
* a namespace extension (``app.extensions.<name>``): the names in its ``__all__`` (or, without
  ``__all__``, the plugin-module rule), and its ``version`` attribute.
"""

from __future__ import annotations

import importlib
import signal
import sys
import types
from typing import TYPE_CHECKING, Any

from zope.interface import Interface, implementedBy, providedBy

from dropins.plugin.diagnostics import describe_failure
from dropins.plugin.entries import (
    KEY,
    PLUGINS,
    PROBLEM,
    REASON,
    STATE,
    VERSION,
    new_entry,
    porting_advice,
)
from dropins.plugin.interfaces import IPlugin
from dropins.plugin.records import IMPORTED_AT

if TYPE_CHECKING:
    from dropins.plugin.entries import Entry

__all__ = ["Importer", "describe_object", "ended_process", "scan_module"]

MODULE, OBJECT, EXTENSION = "module", "object", "extension"
_FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType)


class Importer:
    """Imports plugin modules for one discovery pass.

    Import-system caches are invalidated once per pass, before the first import, so that files
    added since the process started are found.  A module already in ``sys.modules`` is used as
    it is when this process imported it from the file state being described (through discovery
    or ``PluginInfo.load()``), or when it was imported during this pass (by another plugin
    module).  Otherwise (its file changed since, or application code imported it at some
    unknown time) it is imported afresh: describing a stale module under the new file key
    would poison the cache that every other process reads.
    """

    #: module name -> file key when this process last imported it (through discovery or
    #: ``PluginInfo.load()``)
    imported_at: dict[str, Any] = IMPORTED_AT

    def __init__(self) -> None:
        self._invalidated = False
        #: whether a SIGINT (a real Ctrl-C) arrived during this pass
        self.interrupted = False
        #: the SIGINT handler to give back at ``close()``, if one was wrapped
        self._restore: Any = None
        #: the modules imported before this pass (taken at its first import)
        self._before: frozenset[str] = frozenset()

    def import_module(self, name: str, key: Any, path: str | None = None,
                      replaced: Any = None) -> types.ModuleType:
        """Import module ``name`` from file ``path`` in state ``key``; ``replaced`` is the key
        of the entry this import replaces, if any."""
        if not self._invalidated:  # the first import of the pass
            importlib.invalidate_caches()
            self._invalidated = True
            self._restore = self._watch_interrupts()
            self._before = frozenset(sys.modules)
        self.interrupted = False  # whether a Ctrl-C arrives during this import
        return self._import(name, key, path, replaced)

    def close(self) -> None:
        """End the pass: give SIGINT back to the handler it had."""
        if self._restore is not None:
            signal.signal(signal.SIGINT, self._restore)
            self._restore = None

    def _watch_interrupts(self) -> Any:
        """Note a SIGINT arriving during the pass, then handle it as before; return the
        handler to restore (None when nothing was installed).

        A module may raise KeyboardInterrupt itself, which makes it broken, while a real Ctrl-C
        must still stop the program: the flag tells them apart.  Only a Python-level handler
        (the default one raises KeyboardInterrupt) is wrapped; outside the main thread, or with
        SIGINT ignored or left to the system, a KeyboardInterrupt cannot come from the terminal.
        """
        previous = signal.getsignal(signal.SIGINT)
        if not callable(previous):
            return None

        def note_interrupt(signum: int, frame: Any) -> Any:
            self.interrupted = True
            return previous(signum, frame)

        try:
            signal.signal(signal.SIGINT, note_interrupt)
        except ValueError:  # not the main thread
            return None
        return previous

    def _import(self, name: str, key: Any, path: str | None, replaced: Any) -> types.ModuleType:
        existing = sys.modules.get(name)
        recorded = self.imported_at.get(name)
        if existing is not None and (recorded == key or (recorded is None
                                                         and name not in self._before)):
            module = existing
        else:
            # A changed file is imported afresh, not reloaded: a reload runs the new code in
            # the old namespace, so a plugin renamed or removed in the file would still be seen.
            sys.modules.pop(name, None)
            self.imported_at.pop(name, None)
            if path is not None and (_same_pyc_check(key, replaced)
                                     or _same_pyc_check(key, recorded)):
                _remove_byte_code(path)
            module = importlib.import_module(name)
        self.imported_at[name] = key
        return module


def _same_pyc_check(key: Any, old: Any) -> bool:
    """Whether file states ``key`` and ``old`` differ although a ``.pyc`` cannot tell them
    apart: it records the source's mtime in whole seconds and its size, so a same-size edit
    within the same second would load the old byte-code."""
    return (isinstance(old, list) and len(old) == 2 and isinstance(key, list) and old != key
            and isinstance(old[0], int) and old[0] // 1_000_000_000 == key[0] // 1_000_000_000
            and old[1] == key[1])


def _remove_byte_code(path: str) -> None:
    """Remove the cached byte-code of the source file ``path``, so the import compiles it."""
    import importlib.util
    import os

    try:
        os.unlink(importlib.util.cache_from_source(path))
    except (OSError, ValueError, NotImplementedError):  # none, not ours to remove, no pyc tag
        pass


def _first_line(text: Any) -> str:
    if not isinstance(text, str):
        return ""
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def _interfaces(obj: Any, include_implemented: bool) -> list[str]:
    specs = [providedBy(obj)]
    if include_implemented and isinstance(obj, type):
        specs.append(implementedBy(obj))
    identifiers: list[str] = []
    for spec in specs:
        for interface in spec.flattened():
            identifier = getattr(interface, "__identifier__", None)
            if interface is Interface or not isinstance(identifier, str):
                continue
            if identifier not in identifiers:
                identifiers.append(identifier)
    return identifiers


def _problem(obj: Any, explicit: bool) -> tuple[str | None, dict[str, str]]:
    """What makes ``obj`` unusable although it imported, and the renames it needs (new -> old).

    An interface may name, in its ``dropins.renamed`` tagged value, attributes that other
    frameworks call differently (``IServiceMaker``: twistd's ``tapname`` and ``makeService``).
    An object providing it that has an old name but not the new one was ported without them.
    """
    interfaces: list[str] = []
    renames: dict[str, str] = {}
    specs = [providedBy(obj)]
    if explicit and isinstance(obj, type):
        specs.append(implementedBy(obj))
    try:
        for spec in specs:
            for interface in spec.flattened():
                for old, new in (interface.queryDirectTaggedValue("dropins.renamed") or {}).items():
                    if new not in renames and hasattr(obj, old) and not hasattr(obj, new):
                        renames[new] = old
                        if interface.__name__ not in interfaces:
                            interfaces.append(interface.__name__)
    except Exception:  # an object with hostile attributes still gets listed
        return None, {}
    if not renames:
        return None, {}
    return porting_advice(interfaces, list(renames.values()), list(renames)), renames


def describe_object(obj: Any, attribute: str, default_name: str, *,
                    explicit: bool) -> list[Any]:
    """Cacheable metadata for one plugin object bound as ``attribute`` in its module.

    ``explicit`` is true when the object was named by an entry point or ``__all__``; a class named
    that way is also listed under the interfaces its instances implement.  An object that has
    the old names of some attributes (a twistd service maker's ``tapname``/``makeService``) gets
    a fifth item, the problem: it is listed as broken, under its old ``name`` if that is all it
    has, so that operators find it under the name they know.
    """
    is_class = isinstance(obj, type)
    name = default_name
    description = ""
    problem, renames = _problem(obj, explicit)
    try:
        if not is_class and isinstance(getattr(obj, "name", None), str):
            name = obj.name
        elif not is_class and "name" in renames \
                and isinstance(getattr(obj, renames["name"], None), str):
            name = getattr(obj, renames["name"])  # a twistd tapname: the name operators know
        own_description = getattr(obj, "description", None)
        if isinstance(own_description, str):
            description = _first_line(own_description)
        elif is_class:
            description = _first_line(vars(obj).get("__doc__"))
        elif isinstance(obj, _FUNCTION_TYPES):
            description = _first_line(obj.__doc__)
    except Exception:  # an object with hostile attributes still gets listed
        pass
    plugin = [name, attribute, description, _interfaces(obj, explicit)]
    return plugin if problem is None else [*plugin, problem]


def _provides_plugin(obj: Any) -> bool:
    try:
        return bool(IPlugin.providedBy(obj))
    except Exception:
        return False


def _module_plugins(module: types.ModuleType) -> list[list[Any]]:
    plugins = []
    for attribute, obj in list(vars(module).items()):
        if attribute.startswith("__") or not _provides_plugin(obj):
            continue
        if isinstance(obj, (type, *_FUNCTION_TYPES)) and \
                getattr(obj, "__module__", module.__name__) != module.__name__:
            continue  # defined elsewhere and merely imported here
        plugins.append(describe_object(obj, attribute, attribute, explicit=False))
    return plugins


def _extension_plugins(module: types.ModuleType) -> list[list[Any]]:
    exported = getattr(module, "__all__", None)
    if exported is None:
        return _module_plugins(module)
    plugins = []
    for attribute in exported:
        if not isinstance(attribute, str):
            raise TypeError(f"__all__ of {module.__name__} holds {attribute!r}, not a name")
        obj = getattr(module, attribute)  # AttributeError: __all__ names something missing
        plugins.append(describe_object(obj, attribute, attribute, explicit=True))
    return plugins


def scan_module(importer: Importer, module_name: str, path: str, key: Any, *, mode: str = MODULE,
                attribute: str | None = None, default_name: str | None = None,
                previous: Entry | None = None) -> Entry:
    """Import ``module_name`` (whose file is ``path``, in state ``key``) and return its entry.

    A failure gives a ``broken`` entry whose reason is ``file:line: ErrorType: message`` and whose
    plugins are the last known good ones from ``previous`` (so listings keep showing, as broken,
    the plugins that used to be there).
    """
    entry = new_entry(key, module_name)
    try:
        module = importer.import_module(module_name, key, path, previous[KEY] if isinstance(
            previous, list) and previous else None)
        if mode == OBJECT and attribute:
            obj: Any = module
            for part in attribute.split("."):
                obj = getattr(obj, part)
            entry[PLUGINS] = [describe_object(obj, attribute, default_name or attribute,
                                                explicit=True)]
        elif mode == EXTENSION:
            entry[PLUGINS] = _extension_plugins(module)
            version = getattr(module, "version", None) or getattr(module, "__version__", None)
            entry[VERSION] = _extension_version(path, module_name,
                                                None if version is None else str(version))
        else:
            entry[PLUGINS] = _module_plugins(module)
        problems = [plugin[PROBLEM] for plugin in entry[PLUGINS] if len(plugin) > PROBLEM]
        if problems:  # an ok entry with a reason: some of its plugins are unusable
            entry[REASON] = problems[0]
    except BaseException as error:  # sys.exit(), GeneratorExit, KeyboardInterrupt: broken too
        if isinstance(error, KeyboardInterrupt) and importer.interrupted:
            raise  # a real Ctrl-C from the terminal
        _mark_broken(entry, describe_failure(error, path), previous)
    return entry


def _extension_version(path: str, module_name: str, version: str | None) -> Any:
    """The version item of an extension's entry: ``[distribution, version]`` when an installed
    distribution provides ``path`` (its version, else the module's), else the module's
    ``version``."""
    from dropins.plugin.owners import distribution_of

    owner = distribution_of(path, module_name)
    return version if owner is None else [owner[0], owner[1] or version]


def ended_process(module_name: str, path: str, key: Any, previous: Entry | None) -> Entry:
    """The broken entry of a module whose last imports (in this file state) each ended their
    process (``os._exit()``, a crash, or a kill that may have had nothing to do with it): it
    is not imported again until the file or the environment changes."""
    entry = new_entry(key, module_name)
    _mark_broken(entry, f"{path}: the last 2 imports of {module_name} ended (or were killed)",
                 previous)
    return entry


def _mark_broken(entry: Entry, reason: str, previous: Entry | None) -> None:
    """Make ``entry`` broken for ``reason``, keeping the last known good plugins of
    ``previous`` (so listings keep showing, as broken, the plugins that used to be there)."""
    entry[STATE] = "broken"
    entry[REASON] = reason
    if isinstance(previous, list) and len(previous) == len(entry) and \
            isinstance(previous[PLUGINS], list):
        entry[PLUGINS] = previous[PLUGINS]
        entry[VERSION] = previous[VERSION]
