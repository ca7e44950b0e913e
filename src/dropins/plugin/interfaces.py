"""The marker interface every plugin object provides."""

from zope.interface import Interface


class IPlugin(Interface):
    """Marks a module-level object as a plugin.

    A plugin module may hold helpers, imports and constants besides its plugins; only objects
    that provide ``IPlugin`` (and one or more application interfaces) are collected.  Entry points
    that name a single object, and the names a namespace extension lists in ``__all__``, are
    explicit already and need not provide it.
    """
