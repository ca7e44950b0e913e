"""Lazy re-exports for package ``__init__`` modules.

``dropins``, ``dropins.service`` and ``dropins.cred`` re-export names from their submodules, but
importing those submodules up front would cost every command the price of zope.interface,
asyncio or hashing libraries that it may never use.  Instead each package lists where its names
live, and a name's module is imported the first time the name is looked up (PEP 562).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms per command
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def lazy_exports(package: str, exports: dict[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose ``exports`` map name -> module."""
    namespace = vars(sys.modules[package])

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later lookups find it directly, without this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
