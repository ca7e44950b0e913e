"""dropins: plugins and services for extensible asyncio applications.

The public API is re-exported here lazily: ``import dropins`` costs almost nothing, and each
name is imported from its home module the first time it is used.  This keeps ``dropins --help``
and plugin listing fast, because neither needs zope.interface, asyncio or argparse until a
plugin is actually loaded or run.
"""

from __future__ import annotations

from dropins._lazy import lazy_exports

# Not ``from typing import TYPE_CHECKING``: importing typing (and re with it) costs milliseconds
# on every ``dropins --help``; type checkers treat this constant the same way.
TYPE_CHECKING = False

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    # plugins
    "IPlugin": "dropins.plugin.interfaces",
    "get_plugins": "dropins.plugin",
    "iter_plugin_info": "dropins.plugin",
    "plugin_package_paths": "dropins.plugin",
    "PluginInfo": "dropins.plugin",
    "PluginError": "dropins.plugin",
    # services
    "IService": "dropins.service.interfaces",
    "IServiceMaker": "dropins.service.interfaces",
    "IServerEndpointParser": "dropins.service.interfaces",
    "ServiceMaker": "dropins.service.maker",
    "Service": "dropins.service",
    "MultiService": "dropins.service",
    "Application": "dropins.service",
    "StreamServerService": "dropins.service",
    "TimerService": "dropins.service",
    "parse_endpoint": "dropins.service",
    # options
    "Options": "dropins.options",
    "Parameter": "dropins.options",
    "Flag": "dropins.options",
    "Argument": "dropins.options",
    "UsageError": "dropins.options",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from dropins.options import Argument, Flag, Options, Parameter, UsageError
    from dropins.plugin import (
        PluginError,
        PluginInfo,
        get_plugins,
        iter_plugin_info,
        plugin_package_paths,
    )
    from dropins.plugin.interfaces import IPlugin
    from dropins.service import (
        Application,
        MultiService,
        Service,
        StreamServerService,
        TimerService,
        parse_endpoint,
    )
    from dropins.service.interfaces import IServerEndpointParser, IService, IServiceMaker
    from dropins.service.maker import ServiceMaker
