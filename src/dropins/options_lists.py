"""``optParameters`` and ``optFlags`` lists, as twisted.python.usage reads them.

So that a ``usage.Options`` class ports to dropins by changing its base class, a subclass of
``dropins.Options`` may declare its options as twisted's lists instead of attributes::

    optParameters = [["port", "p", 1235, "TCP port.", int]]   # long, short, default, help, coerce
    optFlags = [["verbose", "v", "Say more."]]                 # long, short, help

With twisted's meaning: an entry may be shorter (missing items are None), ``short`` may be None,
the value is stored under the long name as written (``options["max-conn"]``), a flag is False
unless given, and the lists of base classes add up.  The entries become ``Parameter`` and
``Flag`` declarations, so help, coercion errors and ``validate()`` work as for any option.
One difference, argparse's: a string default goes through the coerce function too
(``"1235"`` with ``int`` gives 1235 where twisted keeps ``"1235"``), as for every dropins
``Parameter``, so a value has one type whether given or not.
Where twisted silently lets the last of two entries with one long name win, and would make
``"--port"`` the option ``----port``, these are refused when the class is defined.
Imported only by a class that uses the lists, to keep other commands' start-up light.
"""

from __future__ import annotations

from typing import Any

from dropins.options import Flag, Option, Parameter

__all__ = ["declarations_from_lists", "refuse_unported"]


def _padded(entry: Any, size: int, list_name: str, owner: str) -> list[Any]:
    """``entry`` padded with None to ``size`` items, as twisted's ``util.padTo`` does."""
    if isinstance(entry, str) or not isinstance(entry, list | tuple):
        raise TypeError(f"{owner}.{list_name}: each entry is a list like"
                        f" {_EXAMPLES[list_name]}, got {entry!r}")
    if not 1 <= len(entry) <= size or not isinstance(entry[0], str) or not entry[0]:
        raise TypeError(f"{owner}.{list_name}: entry {list(entry)!r} must have 1 to {size}"
                        f" items, the first being the long name; e.g. {_EXAMPLES[list_name]}")
    return [*entry, *[None] * (size - len(entry))]


_EXAMPLES = {"optParameters": '["port", "p", 1235, "TCP port.", int]',
             "optFlags": '["verbose", "v", "Say more."]'}


def _check_names(declared: dict[str, Option], long: str, short: Any, list_name: str,
                 owner: str) -> None:
    """TypeError for a long name given twice or with dashes, or a short one not one letter."""
    if long.startswith("-"):
        raise TypeError(f"{owner}.{list_name}: long name {long!r} must be given without"
                        f" dashes: {long.lstrip('-')!r}")
    if long in declared:
        raise TypeError(f"{owner}.{list_name}: option {long!r} is already declared (each"
                        " long name is one key of the options); keep one entry")
    if short is not None and (not isinstance(short, str) or len(short) != 1 or short == "-"):
        raise TypeError(f"{owner}.{list_name}: the short name of {long!r} must be one"
                        f" character without a dash, or None; got {short!r}")


def declarations_from_lists(cls: type) -> dict[str, Option]:
    """The options that ``cls``'s own ``optParameters`` and ``optFlags`` declare, by key."""
    owner = cls.__qualname__
    declared: dict[str, Option] = {}
    for entry in vars(cls).get("optParameters", None) or ():
        long, short, default, help_text, coerce = _padded(entry, 5, "optParameters", owner)
        _check_names(declared, long, short, "optParameters", owner)
        if coerce is not None and not callable(coerce):
            raise TypeError(f"{owner}.optParameters: the coerce item of {long!r} must be"
                            f" callable, got {coerce!r}")
        declared[long] = Parameter(long, short, default=default, type=coerce,
                                   help=help_text or "")
    for entry in vars(cls).get("optFlags", None) or ():
        long, short, help_text = _padded(entry, 3, "optFlags", owner)
        _check_names(declared, long, short, "optFlags", owner)
        declared[long] = Flag(long, short, help=help_text or "")
    for key, option in declared.items():
        option.key = key
    return declared


#: What to use instead of each usage.Options feature that dropins.Options does not have.
_INSTEAD = {
    "postOptions": "rename it validate(self)",
    "parseArgs": "declare positional arguments with Argument(nargs=...)",
    "subCommands": "make each sub-command a service maker of its own",
    "defaultSubCommand": "make each sub-command a service maker of its own",
    "compData": "drop it (argparse needs no completion data)",
    "longdesc": "set description (shown under the usage line) or epilog",
    "synopsis": "drop it (the usage line is generated)",
}


def refuse_unported(cls: type) -> None:
    """TypeError for a twisted.python.usage feature that would be silently ignored here."""
    for name, value in vars(cls).items():
        if isinstance(value, Option):
            continue  # a declaration that happens to have such a name
        if name.startswith("opt_"):
            instead = ("declare Parameter(..., type=...) or Flag(...) and act on the value"
                       " in validate() or make_service()")
        elif name in _INSTEAD:
            instead = _INSTEAD[name]
        else:
            continue
        raise TypeError(f"{cls.__qualname__}.{name} is twisted.python.usage's and"
                        f" dropins.Options does not use it: {instead}")
