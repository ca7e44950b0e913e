"""``ServiceMaker``: a service-maker plugin that imports its implementation only when used.

A plugin module is imported whenever its cache entry is (re)built, and every plugin module of a
package is imported by ``get_plugins``; so it should be cheap.  ``ServiceMaker`` lets the module
hold one line per command, naming the implementation module, which is imported only when the
command actually runs or shows its ``--help``::

    echo = ServiceMaker("echo", "dropins.servers.inetd:echo", "Echo back what clients send")

The target names a module that defines ``Options`` (an ``Options`` subclass) and
``make_service(options)``, or, as ``"module:name"``, an object in a module that has those two
attributes, which lets one module implement several commands.
"""

from __future__ import annotations

import importlib
from typing import Any

from zope.interface import implementer

from dropins.plugin.interfaces import IPlugin
from dropins.service.interfaces import IService, IServiceMaker


@implementer(IPlugin, IServiceMaker)
class ServiceMaker:
    """A lazily-implemented IServiceMaker.

    ``target`` is ``"package.module"`` (which defines ``Options`` and ``make_service``) or
    ``"package.module:name"`` (whose attribute ``name`` has ``Options`` and ``make_service``).
    """

    def __init__(self, name: str, target: str, description: str) -> None:
        self.name = name
        self.target = target
        self.description = description

    def __repr__(self) -> str:
        return f"ServiceMaker({self.name!r}, {self.target!r}, {self.description!r})"

    def _implementation(self) -> Any:
        module_name, _, attribute = self.target.partition(":")
        implementation: Any = importlib.import_module(module_name)
        if attribute:
            implementation = getattr(implementation, attribute)
        return implementation

    @property
    def options(self) -> Any:
        return self._implementation().Options

    def make_service(self, options: Any) -> IService:
        service: IService = self._implementation().make_service(options)
        return service
