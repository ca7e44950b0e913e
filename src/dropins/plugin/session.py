"""One discovery pass: rescanning on cache misses, reporting broken modules, strict mode.

Sources (directories, entry points, namespace extensions) decide *what* to rescan; the pass
does the rescanning the same way for all of them, importing ``dropins.plugin.scan`` (and with it
zope.interface) only when a rescan actually happens.
"""

from __future__ import annotations

from dropins.plugin.diagnostics import warn
from dropins.plugin.entries import REASON, STATE, is_broken
from dropins.plugin.records import PluginError

TYPE_CHECKING = False  # not typing's: importing typing costs more than a warm listing
if TYPE_CHECKING:
    from typing import Any

    from dropins.plugin.entries import Entry
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

    def rescan(self, module_name: str, path: str, key: Any, **options: Any) -> Entry:
        """Import and describe one module (see ``scan.scan_module``); report it if broken.

        A broken module is reported here, when its file state is new to the cache, and never
        when its broken entry is merely read back: that is "once per change of the file".
        """
        from dropins.plugin.scan import Importer, scan_module

        if self._importer is None:
            self._importer = Importer()
        self.rescanned += 1
        entry = scan_module(self._importer, module_name, path, key, **options)
        if entry[STATE] == "broken":
            message = f"plugin module {path} failed to import: {entry[REASON]}"
            if self.strict:
                raise PluginError(message)
            warn(message)
        return entry

    def check_cached(self, entry: Entry, path: str) -> None:
        """In strict mode, a broken module read from the cache raises as well."""
        if self.strict and is_broken(entry):
            raise PluginError(f"plugin module {path} failed to import: {entry[REASON]}")
