"""Plugin records: what discovery knows about a plugin without importing it.

A ``PluginInfo`` is built from cached metadata, so listing plugins costs a JSON read and some
``stat`` calls.  The plugin object itself is imported only by ``load()``.
"""

from __future__ import annotations

# Not typing's TYPE_CHECKING: importing typing costs more than a whole warm listing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["STATES", "PluginError", "PluginInfo"]

#: Every state a record can be in.  Only ``ok`` records can be loaded.
STATES = ("ok", "broken", "disabled", "shadowed")

#: module name -> ``[st_mtime_ns, st_size]`` of its file when this process imported it, through
#: discovery (``scan.Importer``) or ``PluginInfo.load()``.  A later rescan after the file changed
#: then imports the module again instead of describing the old one under the new file's key,
#: which would poison the cache that every other process reads.
IMPORTED_AT: dict[str, list[int]] = {}


class PluginError(Exception):
    """A plugin or plugin package cannot be used.

    Raised by ``PluginInfo.load()`` for a record that is not ``ok`` (the message carries the
    reason), by discovery for an unknown plugin package, and in strict mode (``DROPINS_STRICT=1``
    or ``strict=True``) for a plugin module that fails to import.
    """


class PluginInfo:
    """One plugin as discovery sees it: where it lives, what it provides, whether it is usable.

    Attributes (all read-only by convention):

    ``name``
        The plugin's name: the object's ``name`` attribute when that is a string (service makers
        say ``name = "web"``), else the module-level variable name (the entry-point name for an
        entry point naming one object).
    ``description``
        One line: the object's ``description`` string attribute, else the first line of the
        docstring of a class or function; ``""`` for other objects without ``description``.
    ``interfaces``
        Dotted identifiers of every interface the object provides (for a class named by an entry
        point or a namespace extension, also those its instances implement), base interfaces
        included, ``zope.interface.Interface`` excluded.
    ``module``, ``attribute``
        ``load()`` is ``getattr(import_module(module), attribute)``.
    ``source``
        ``"directory"``, ``"entry-point"`` or ``"namespace"``.
    ``path``
        The file defining the plugin module (``__init__.py`` for a namespace extension).
    ``distribution``, ``version``
        The installed distribution providing it, and a version, where known; else ``None``.
    ``state``, ``reason``
        ``"ok"`` (reason ``None``), ``"broken"`` (reason ``"file:line: ErrorType: message"``),
        ``"disabled"`` (by ``DROPINS_DISABLE``) or ``"shadowed"`` (``"shadowed by ..."``).
    ``package``
        The plugin package it was found for, e.g. ``"dropins.plugins"``.
    """

    __slots__ = ("attribute", "description", "distribution", "interfaces", "module", "name",
                 "package", "path", "reason", "source", "state", "version")

    def __init__(self, *, name: str, module: str, attribute: str | None, source: str, path: str,
                 package: str, description: str = "", interfaces: tuple[str, ...] = (),
                 distribution: str | None = None, version: str | None = None,
                 state: str = "ok", reason: str | None = None) -> None:
        self.name = name
        self.description = description
        self.interfaces = interfaces
        self.module = module
        self.attribute = attribute
        self.source = source
        self.path = path
        self.package = package
        self.distribution = distribution
        self.version = version
        self.state = state
        self.reason = reason

    @classmethod
    def _cached(cls, name: str, description: str, interfaces: tuple[str, ...], module: str,
                attribute: str | None, source: str, path: str, package: str,
                distribution: str | None, version: str | None, state: str,
                reason: str | None) -> PluginInfo:
        """Positional construction for discovery: a warm listing builds a thousand of these,
        and keyword arguments cost a third of that."""
        self = object.__new__(cls)
        self.name = name
        self.description = description
        self.interfaces = interfaces
        self.module = module
        self.attribute = attribute
        self.source = source
        self.path = path
        self.package = package
        self.distribution = distribution
        self.version = version
        self.state = state
        self.reason = reason
        return self

    def provides(self, identifier: str) -> bool:
        """Whether the cached metadata says the plugin provides the interface ``identifier``."""
        return identifier in self.interfaces

    def load(self) -> Any:
        """Import the plugin's module and return the plugin object.

        Raises ``PluginError`` naming the reason when the record is not ``ok`` or when the import
        fails now (the environment may have changed since the cache was written).
        """
        if self.state != "ok":
            raise PluginError(f"plugin {self.name!r} is {self.state}: {self.reason}")
        if self.attribute is None:
            raise PluginError(f"plugin {self.name!r} has no object to load ({self.module})")
        import importlib
        import sys

        from dropins.plugin.entries import file_key

        fresh = self.module not in sys.modules
        key = file_key(self.path) if fresh else None  # before the import: never newer than it
        try:
            target: Any = importlib.import_module(self.module)
            if key is not None:
                IMPORTED_AT.setdefault(self.module, key)
            for part in self.attribute.split("."):
                target = getattr(target, part)
        except Exception as error:
            from dropins.plugin.diagnostics import describe_failure

            reason = describe_failure(error, self.path)
            raise PluginError(f"plugin {self.name!r} failed to load: {reason}") from error
        return target

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping of every attribute (what ``dropins plugins list --json`` prints)."""
        data = {slot: getattr(self, slot) for slot in self.__slots__}
        data["interfaces"] = list(self.interfaces)
        return data

    def __repr__(self) -> str:
        where = f"{self.module}:{self.attribute}" if self.attribute else self.module
        return f"<PluginInfo {self.name!r} {self.state} from {where} ({self.source})>"


def records_from_entry(entry: list[Any], *, package: str, source: str, path: str,
                       fallback_name: str, distribution: str | None = None,
                       version: str | None = None) -> list[PluginInfo]:
    """Build the records of one cached module entry (layout: ``dropins.plugin.entries``).

    A broken module keeps its last known good plugins, marked broken; one never seen working
    yields a single broken record named ``fallback_name``.  A plugin with a problem (a fifth
    item) in a module that imported is broken for that reason.  Malformed cached data raises
    (KeyError, IndexError, TypeError, ValueError) and the caller rescans the module.
    """
    _key, module, state, reason, entry_version, plugins, _environment = entry
    if state == "ok":
        reason = None
    elif state != "broken":
        raise ValueError(f"bad state {state!r}")
    if entry_version.__class__ is list:  # a namespace extension's [distribution, version]
        distribution, entry_version = entry_version
        if not isinstance(distribution, str):
            raise TypeError("malformed distribution")
    version = version or entry_version
    if state == "broken" and not plugins:
        return [PluginInfo(name=fallback_name, module=module, attribute=None, source=source,
                           path=path, package=package, distribution=distribution,
                           version=version, state=state, reason=reason)]
    make = PluginInfo._cached
    ok = state == "ok"  # a broken module's own failure is the reason, not an older problem
    return [make(plugin[0], plugin[2], tuple(plugin[3]), module, plugin[1], source, path, package,
                 distribution, version, *(("broken", f"{path}: {plugin[4]}")
                                          if ok and len(plugin) > 4 else (state, reason)))
            for plugin in plugins]
