"""Development directories of a plugin package, found on ``sys.path``.

An application's plugin package (``matsim/plugins/__init__.py``) calls
``__path__.extend(plugin_package_paths(__name__))`` so that a folder ``matsim/plugins/`` *without*
``__init__.py`` on any ``sys.path`` entry contributes plugin modules, the way a developer drops a
file into a checkout.  Only ``os`` and ``sys`` are used: this runs every time the package is
imported, including on the fast ``dropins --help`` path.
"""

from __future__ import annotations

import os
import sys

__all__ = ["plugin_package_paths"]


def plugin_package_paths(name: str) -> list[str]:
    """Return the directories named by the dotted path ``name`` below each ``sys.path`` entry
    that have no ``__init__.py``, in ``sys.path`` order, without duplicates.

    A directory *with* ``__init__.py`` is the package itself (or a rival package that the import
    system would pick instead), never a place for drop-in modules, so it is left out.
    """
    parts = name.split(".")
    found: list[str] = []
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        candidate = os.path.abspath(os.path.join(entry or os.curdir, *parts))
        if candidate in found or not os.path.isdir(candidate):
            continue
        if os.path.exists(os.path.join(candidate, "__init__.py")):
            continue
        found.append(candidate)
    return found
