"""The built-in authentication types for ``--auth TYPE:ARGS`` (ICheckerFactory plugins).

A third-party distribution adds a type the same way: a module-level object providing
``IPlugin`` and ``dropins.cred.interfaces.ICheckerFactory`` in a ``dropins.plugins`` module
(or the ``dropins.plugins`` entry-point group).
"""

from dropins.cred.factories import (
    AnonymousCheckerFactory,
    FileCheckerFactory,
    HtpasswdCheckerFactory,
    MemoryCheckerFactory,
)

memory = MemoryCheckerFactory()
file = FileCheckerFactory()
htpasswd = HtpasswdCheckerFactory()
anonymous = AnonymousCheckerFactory()
