"""The layout of one cached plugin-module entry.

Entries are JSON arrays rather than objects: a cache of a thousand modules parses in half the
time, and parsing is most of a warm listing.  The layout is written into every cache file
(``LAYOUT``) and checked on read, so a file with another layout is simply a miss.

An entry: ``[key, module, state, reason, version, plugins, environment]`` where ``key`` is the
file's ``[st_mtime_ns, st_size]`` when scanned, ``state`` is ``"ok"`` or ``"broken"``, ``reason``
the one-line failure or null, ``version`` a namespace extension's version (or ``[distribution,
version]`` when an installed distribution provides it) or null, each plugin
is ``[name, attribute, description, [interface identifiers]]``, and ``environment`` is null for
an ``ok`` entry and, for a broken one, the import environment it failed in (see
``import_environment``): a module broken by a missing dependency is tried again once something
may have been installed, although its own file did not change.

A plugin that imported but cannot be used (``dropins.plugin.scan._problem``: a twistd service
maker's ``tapname``/``makeService``) has a fifth item, the problem; its ``ok`` entry then also
has a ``reason``, the first problem, so that readers can skip the per-plugin check otherwise.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs more than a warm listing
if TYPE_CHECKING:
    from typing import Any

    Entry = list[Any]

__all__ = ["LAYOUT", "Entry", "file_key", "import_environment", "is_current", "is_porting_advice",
           "new_entry", "porting_advice"]

KEY, MODULE, STATE, REASON, VERSION, PLUGINS, ENVIRONMENT = range(7)
NAME, ATTRIBUTE, DESCRIPTION, INTERFACES, PROBLEM = range(5)

LAYOUT = {"entry": ["key", "module", "state", "reason", "version", "plugins", "environment"],
          "plugin": ["name", "attribute", "description", "interfaces", "problem (optional)"]}


def file_key(path: str | None, handle: int | None = None) -> list[int] | None:
    """The key an entry is cached under: ``[st_mtime_ns, st_size]`` of the file ``path``
    (relative to the directory open as ``handle``, if given); None if it cannot be stat'ed.

    Any difference is a change, including a replacement with an *older* mtime (``cp -p``).
    """
    if path is None:
        return None
    try:
        status = os.stat(path, dir_fd=handle)
    except OSError:
        return None
    return [status.st_mtime_ns, status.st_size]


def porting_advice(interfaces: list[str], old: list[str], new: list[str]) -> str:
    """The problem of a plugin ported without renaming: ``provides IServiceMaker but has
    tapname/makeService: rename to name/make_service``."""
    return (f"provides {', '.join(interfaces)} but has {'/'.join(old)}: rename to"
            f" {'/'.join(new)}")


def is_porting_advice(reason: str | None) -> bool:
    """Whether a record's ``reason`` is a ``porting_advice`` (its module imported fine) rather
    than a failure of its module: the runner then names the fix, not a broken module."""
    return reason is not None and " but has " in reason and ": rename to " in reason


def new_entry(key: Any, module: str) -> Entry:
    """A fresh ``ok`` entry with no plugins, for a module scanned in file state ``key``."""
    return [key, module, "ok", None, None, [], None]


def is_current(entry: Any, key: Any, module: str) -> bool:
    """Whether ``entry`` is a well-formed entry for ``module`` scanned in file state ``key``."""
    return (isinstance(entry, list) and len(entry) == 7 and entry[KEY] == key
            and entry[MODULE] == module)


def is_broken(entry: Any) -> bool:
    return isinstance(entry, list) and len(entry) == 7 and entry[STATE] == "broken"


def import_environment() -> list[list[Any]]:
    """A cheap fingerprint of where imports are looked up: ``[[directory, st_mtime_ns]]`` for
    each ``sys.path`` entry, in order (null when it cannot be stat'ed: missing, or a zip file's
    member).

    Installing a distribution, adding a module or a ``.pth`` file creates an entry in one of
    these directories, which changes its mtime; a new ``sys.path`` entry changes the list.  It
    costs one ``stat`` per ``sys.path`` entry and is computed only when a broken entry is met.
    """
    fingerprint: list[list[Any]] = []
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        directory = os.path.abspath(entry or os.curdir)
        try:
            mtime: int | None = os.stat(directory).st_mtime_ns
        except OSError:
            mtime = None
        fingerprint.append([directory, mtime])
    return fingerprint
