"""The cache layout of one plugin directory: its entries as parallel columns.

A warm listing parses this file on every call, and parsing costs per JSON value.  Rows of
nested arrays (one per module, one per plugin) made a thousand-module cache 15 values a module
and its parse the largest cost of a listing; as columns, a module costs about six values (the
derived module name, the state ``"ok"`` and the interface lists are not repeated), and the
common case -- nothing changed, every module ``ok`` -- becomes one comparison of the file keys
and one pass over zipped columns (``plain_records``).

A table (``TABLE_LAYOUT``)::

    package      the plugin package the modules were scanned as ("matsim.plugins")
    files        the listed names, sorted: "x.py" for a module, "x/" for a namespace extension
    mtimes       st_mtime_ns of each file when scanned (for "x/": of x/__init__.py)
    sizes        st_size of each file when scanned
    interfaces   the distinct lists of interface identifiers, referenced by index
    plugins      {"file": [index into files], "name": [...], "attribute": [null when equal to
                 the name], "description": [...], "interfaces": [index into interfaces]},
                 grouped by file in file order, each file's plugins in discovery order;
                 "attribute" and "interfaces" may be one value that every row holds, and
                 "file" null when row i is the one plugin of file i: the common case of one
                 plugin per module with the same interfaces then costs two values a plugin
    special      {file: [state, reason, version, environment, problems]} for the entries that
                 are not plain ok ones: broken modules, extensions with a version, modules with
                 unusable plugins (``problems``: that file's plugin rows' problems, in order,
                 null for a usable one; null when none has a problem)

Other code sees entries (``dropins.plugin.entries``): ``pack`` and ``unpack`` convert, and only
the warm path reads columns directly.
"""

from __future__ import annotations

from dropins.plugin.entries import (
    ATTRIBUTE,
    DESCRIPTION,
    ENVIRONMENT,
    INTERFACES,
    KEY,
    NAME,
    PLUGINS,
    PROBLEM,
    REASON,
    STATE,
    VERSION,
)
from dropins.plugin.records import PluginInfo

# Not typing's TYPE_CHECKING: importing typing costs more than a whole warm listing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dropins.plugin.entries import Entry

__all__ = ["TABLE_LAYOUT", "module_name", "pack", "plain_records", "unpack"]

TABLE_LAYOUT = {"table": ["package", "files", "mtimes", "sizes", "interfaces", "plugins",
                          "special"],
                "plugin": ["file", "name", "attribute", "description", "interfaces"],
                "special": ["state", "reason", "version", "environment", "problems"]}


def module_name(package: str, name: str) -> str:
    """The dotted module of listed name ``name`` (``x.py`` or ``x/``) in ``package``."""
    return f"{package}.{name[:-1] if name[-1] == '/' else name[:-3]}"


def pack(package: str, entries: dict[str, Entry]) -> dict[str, Any]:
    """The table of ``entries`` (listed name -> entry, every module of ``package``)."""
    files = sorted(entries)
    interfaces: list[list[str]] = []
    where: dict[tuple[str, ...], int] = {}
    columns: dict[str, list[Any]] = {field: [] for field in TABLE_LAYOUT["plugin"]}
    special: dict[str, list[Any]] = {}
    for index, name in enumerate(files):
        entry = entries[name]
        if (entry[STATE], entry[REASON], entry[VERSION], entry[ENVIRONMENT]) != \
                ("ok", None, None, None):
            problems = [plugin[PROBLEM] if len(plugin) > PROBLEM else None
                        for plugin in entry[PLUGINS]]
            special[name] = [entry[STATE], entry[REASON], entry[VERSION], entry[ENVIRONMENT],
                             problems if any(problems) else None]
        for plugin in entry[PLUGINS]:
            identifiers = tuple(plugin[INTERFACES])
            if identifiers not in where:
                where[identifiers] = len(interfaces)
                interfaces.append(list(identifiers))
            columns["file"].append(index)
            columns["name"].append(plugin[NAME])
            columns["attribute"].append(None if plugin[ATTRIBUTE] == plugin[NAME]
                                        else plugin[ATTRIBUTE])
            columns["description"].append(plugin[DESCRIPTION])
            columns["interfaces"].append(where[identifiers])
    if columns["file"] == list(range(len(files))):
        columns["file"] = None  # type: ignore[assignment]
    for field in ("attribute", "interfaces"):
        values = columns[field]
        if values and values.count(values[0]) == len(values):
            columns[field] = values[0]
    return {"package": package, "files": files,
            "mtimes": [entries[name][KEY][0] for name in files],
            "sizes": [entries[name][KEY][1] for name in files],
            "interfaces": interfaces, "plugins": columns, "special": special}


def _columns(plugins: dict[str, Any]) -> zip[tuple[Any, ...]]:
    """The rows of a ``plugins`` table as ``(file, name, attribute, description, interfaces)``,
    expanding the columns stored as one value (see the module docstring).

    Raises TypeError for values of the wrong type: a hand-edited or damaged cache must not
    give records whose name is a list, nor pass a negative index.  Checking a thousand names
    costs a warm listing about 20 microseconds this way: ``str.join`` takes nothing but strings.
    """
    names, descriptions = plugins["name"], plugins["description"]
    "".join(names)
    "".join(descriptions)
    count = len(names)
    file, attribute, interfaces = plugins["file"], plugins["attribute"], plugins["interfaces"]
    if file is None:
        file = range(count)
    elif not _indexes(file):
        raise TypeError("malformed plugin table: file indexes")
    if attribute.__class__ is list:
        "".join([name for name in attribute if name is not None])
    elif attribute is None or attribute.__class__ is str:
        attribute = [attribute] * count
    else:
        raise TypeError("malformed plugin table: attributes")
    if interfaces.__class__ is int and interfaces >= 0:
        interfaces = [interfaces] * count
    elif not _indexes(interfaces):
        raise TypeError("malformed plugin table: interface indexes")
    return zip(file, names, attribute, descriptions, interfaces, strict=True)


def _indexes(values: Any) -> bool:
    """Whether ``values`` is a list of indexes (ints, not bools, not negative)."""
    return values.__class__ is list and all(value.__class__ is int and value >= 0
                                            for value in values)


def _interface_lists(table: dict[str, Any]) -> list[tuple[str, ...]]:
    """The table's distinct interface lists, as tuples; TypeError if malformed."""
    lists = [tuple(identifiers) for identifiers in table["interfaces"]
             if identifiers.__class__ is list]
    if len(lists) != len(table["interfaces"]):
        raise TypeError("malformed plugin table: interfaces")
    for identifiers in lists:
        "".join(identifiers)
    return lists


def _is_owner(version: Any) -> bool:
    """Whether ``version`` is a namespace extension's ``[distribution, version or null]``."""
    return (version.__class__ is list and len(version) == 2 and version[0].__class__ is str
            and (version[1] is None or version[1].__class__ is str))


def unpack(table: dict[str, Any]) -> dict[str, Entry]:
    """The entries of ``table``, by listed name.

    Malformed data raises KeyError, IndexError, TypeError or ValueError; the caller then
    treats the table as empty.
    """
    package = table["package"]
    files = table["files"]
    if not isinstance(package, str) or not all(isinstance(name, str) and name
                                                for name in files):
        raise TypeError("malformed plugin table")
    special = table["special"]
    entries: dict[str, Entry] = {}
    problems_of: dict[str, list[Any]] = {}
    for name, mtime, size in zip(files, table["mtimes"], table["sizes"], strict=True):
        state, reason, version, environment, problems = special.get(
            name, ("ok", None, None, None, None))
        if not (version is None or version.__class__ is str or _is_owner(version)):
            raise TypeError(f"malformed plugin table: the version of {name}")
        if state not in ("ok", "broken") or not (reason is None or reason.__class__ is str):
            raise TypeError(f"malformed plugin table: the state of {name}")
        if problems is not None:
            if problems.__class__ is not list or not all(
                    text is None or text.__class__ is str for text in problems):
                raise TypeError(f"malformed plugin table: the problems of {name}")
            problems_of[name] = problems
        entries[name] = [[mtime, size], module_name(package, name), state, reason, version, [],
                         environment]
    interfaces = _interface_lists(table)
    for file, name, attribute, description, index in _columns(table["plugins"]):
        rows = entries[files[file]][PLUGINS]
        row = [name, name if attribute is None else attribute, description,
               list(interfaces[index])]
        problems = problems_of.get(files[file])
        if problems is not None and problems[len(rows)] is not None:  # IndexError if too few
            row.append(problems[len(rows)])
        rows.append(row)
    return entries


def plain_records(table: dict[str, Any], package: str, files: list[str],
                  keys: list[tuple[int, int]], prefix: str) -> list[PluginInfo] | None:
    """The records of every module, when ``table`` describes exactly ``files`` in the states
    ``keys`` (``(st_mtime_ns, st_size)`` each) and every module is a plain ``ok`` one
    (directory ``prefix``, with its separator); otherwise None.

    This is the warm listing.  Everything per module is done by comparisons of whole lists and
    one comprehension: with a thousand modules, each extra function call per module would cost
    as much as the ``stat`` that could not be avoided.  Malformed columns also give None (via
    the exceptions of a strict ``zip`` or a bad index), and the caller goes module by module.
    """
    try:
        if table["special"] or table["package"] != package or table["files"] != files \
                or list(zip(table["mtimes"], table["sizes"], strict=True)) != keys:
            return None
        interfaces = _interface_lists(table)
        dotted = package + "."
        modules = [dotted + name[:-3] for name in files]
        make = PluginInfo._cached
        return [make(name, description, interfaces[index], modules[file],
                     name if attribute is None else attribute, "directory",
                     prefix + files[file], package, None, None, "ok", None)
                for file, name, attribute, description, index in _columns(table["plugins"])]
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None
