"""One discovery pass: rescanning on cache misses, reporting broken modules, strict mode.

Sources (directories, entry points, namespace extensions) decide *what* to rescan; the pass
does the rescanning the same way for all of them, importing ``dropins.plugin.scan`` (and with it
zope.interface) only when a rescan actually happens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dropins.plugin.diagnostics import warn
from dropins.plugin.records import PluginError

if TYPE_CHECKING:
    from dropins.plugin.scan import Importer

__all__ = ["ScanSession"]


class ScanSession:
    """State shared by the sources during one ``iter_plugin_info``/``get_plugins`` call.

    ``rebuild`` ignores every cached entry (``dropins plugins cache --rebuild``); ``strict``
    raises ``PluginError`` for a broken module, cached or fresh, instead of listing it.
    """

    def __init__(self, *, rebuild: bool = False, strict: bool = False) -> None:
        self.rebuild = rebuild
        self.strict = strict
        self.rescanned = 0
        self._importer: Importer | None = None

    def rescan(self, module_name: str, path: str, key: Any, **options: Any) -> dict[str, Any]:
        """Import and describe one module (see ``scan.scan_module``); report it if broken.

        A broken module is reported here, when its file state is new to the cache, and never
        when its broken entry is merely read back: that is "once per change of the file".
        """
        from dropins.plugin.scan import Importer, scan_module

        if self._importer is None:
            self._importer = Importer()
        self.rescanned += 1
        entry = scan_module(self._importer, module_name, path, key, **options)
        if entry["state"] == "broken":
            message = f"plugin module {path} failed to import: {entry['reason']}"
            if self.strict:
                raise PluginError(message)
            warn(message)
        return entry

    def check_cached(self, entry: dict[str, Any], path: str) -> None:
        """In strict mode, a broken module read from the cache raises as well."""
        if self.strict and entry.get("state") == "broken":
            raise PluginError(f"plugin module {path} failed to import: {entry.get('reason')}")
