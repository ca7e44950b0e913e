"""``ConsoleService``: the console's transports under one service, and where sessions open.

Its children are the listeners (a ``StreamServerService`` per ``--telnet`` and ``--socket``,
an ``SSHConsoleService`` per ``--ssh``); each connection, once its user is known, asks
``open_session`` for a ``ConsoleSession`` with a namespace of its own.  While the service
runs, ``sys.stdout``, ``sys.stderr`` and ``sys.displayhook`` are routed per session
(``routing``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from dropins.console import routing
from dropins.console.namespace import make_namespace
from dropins.console.session import ConsoleSession, next_label
from dropins.service.base import MultiService

__all__ = ["ConsoleService"]

log = logging.getLogger("dropins.console")


class ConsoleService(MultiService):
    """The console: its transports are its children; see the module docstring."""

    def __init__(self, name: str = "console") -> None:
        super().__init__(name)

    def open_session(self, user: str, kind: str, peer: str, write: Callable[[str], None],
                     close: Callable[[], None]) -> ConsoleSession:
        """A new session for ``user`` on a ``kind`` transport (``telnet``) from ``peer``."""
        label = next_label(kind)
        log.info("console %s: %s logged in from %s", label, user, peer)
        namespace = make_namespace(self, asyncio.get_running_loop())
        return ConsoleSession(namespace, user=user, label=label, write=write, close=close)

    async def start(self) -> None:
        routing.install()
        try:
            await super().start()
        except BaseException:
            routing.uninstall()
            raise

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            routing.uninstall()
