"""Plugin discovery: find plugin objects by interface, list them cheaply, explain failures.

The public names (also re-exported by ``dropins``)::

    get_plugins(interface, package=None)        loaded plugin objects providing interface
    iter_plugin_info(interface=None, package=None)   PluginInfo records, nothing imported
    plugin_package_paths(name)                  development directories of a plugin package
    PluginInfo, PluginError

Importing this package costs no zope.interface, importlib.metadata, platformdirs or asyncio:
those are imported only when a plugin module has to be scanned or loaded.  ``IPlugin`` lives in
``dropins.plugin.interfaces`` (which does import zope.interface).
"""

from dropins.plugin.discovery import get_plugins, iter_plugin_info, rebuild_cache
from dropins.plugin.records import PluginError, PluginInfo

TYPE_CHECKING = False  # not typing's: importing typing costs more than a warm listing
if TYPE_CHECKING:
    from dropins.plugin.paths import plugin_package_paths

__all__ = ["PluginError", "PluginInfo", "get_plugins", "iter_plugin_info",
           "plugin_package_paths", "rebuild_cache"]


def __getattr__(name: str) -> object:
    """``plugin_package_paths`` is imported on first use: a plugin package that does not extend
    its ``__path__`` (entry points only) should not pay for a module it never calls."""
    if name == "plugin_package_paths":
        from dropins.plugin.paths import plugin_package_paths

        globals()[name] = plugin_package_paths
        return plugin_package_paths
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
