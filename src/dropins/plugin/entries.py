"""The layout of one cached plugin-module entry.

Entries are JSON arrays rather than objects: a cache of a thousand modules parses in half the
time, and parsing is most of a warm listing.  The layout is written into every cache file
(``LAYOUT``) and checked on read, so a file with another layout is simply a miss.

An entry: ``[key, module, state, reason, version, plugins]`` where ``key`` is the file's
``[st_mtime_ns, st_size]`` when scanned, ``state`` is ``"ok"`` or ``"broken"``, ``reason`` the
one-line failure or null, ``version`` a namespace extension's version or null, and each plugin
is ``[name, attribute, description, [interface identifiers]]``.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs more than a warm listing
if TYPE_CHECKING:
    from typing import Any

    Entry = list[Any]

__all__ = ["LAYOUT", "Entry", "is_current", "new_entry"]

KEY, MODULE, STATE, REASON, VERSION, PLUGINS = range(6)
NAME, ATTRIBUTE, DESCRIPTION, INTERFACES = range(4)

LAYOUT = {"entry": ["key", "module", "state", "reason", "version", "plugins"],
          "plugin": ["name", "attribute", "description", "interfaces"]}


def new_entry(key: Any, module: str) -> Entry:
    """A fresh ``ok`` entry with no plugins, for a module scanned in file state ``key``."""
    return [key, module, "ok", None, None, []]


def is_current(entry: Any, key: Any, module: str) -> bool:
    """Whether ``entry`` is a well-formed entry for ``module`` scanned in file state ``key``."""
    return (isinstance(entry, list) and len(entry) == 6 and entry[KEY] == key
            and entry[MODULE] == module)


def is_broken(entry: Any) -> bool:
    return isinstance(entry, list) and len(entry) == 6 and entry[STATE] == "broken"
