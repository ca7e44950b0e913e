"""What an HTTP connection can be handed over to after a 101 response.

A WebSocket (``wsconnection.py``) is one; a relay of an upgraded connection to a backend
(the reverse proxy's ``proxytunnel.py``) is another.  The HTTP connection stays the
transport's protocol and passes these calls on (``HttpConnection.switch_protocol``), so that
the server's set of connections, its limits on connections and its graceful stop keep
covering upgraded ones.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["UpgradedProtocol"]


class UpgradedProtocol(Protocol):
    """The calls an upgraded protocol gets from its HTTP connection (see the module)."""

    def data_received(self, data: bytes) -> None: ...

    def eof_received(self) -> bool | None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...

    def graceful_shutdown(self) -> None:
        """The server stops: end the conversation politely (e.g. a WebSocket close 1001)."""

    @property
    def backlogged(self) -> bool:
        """Whether reading should pause: the other side has more waiting than it takes."""
