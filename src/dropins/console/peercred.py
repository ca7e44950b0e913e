"""The console on a unix socket: no password, but the peer must be this process's user or root.

The socket file is created with mode 0600, and each connection's peer is checked as well
(``SO_PEERCRED``, Linux): file modes alone can be loosened by mistake, a directory may be
shared, and a socket may have been passed to another process.  The check is against the
process's effective uid when the connection arrives, so after ``--uid`` it is that user.
"""

from __future__ import annotations

import logging
import os
import socket
import struct

from dropins.console.lines import LineProtocol

__all__ = ["PeerCheckedProtocol", "peer_uid"]

log = logging.getLogger("dropins.console")


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a unix socket, or None if unknown."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    data = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", data)
    return int(uid)


def _user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


class PeerCheckedProtocol(LineProtocol):
    """Opens a session for a peer running as this process's user or as root; refuses others."""

    kind = "unix"

    def peer(self) -> str:
        sock = self.transport.get_extra_info("socket") if self.transport else None
        uid = peer_uid(sock) if sock is not None else None
        return "unknown uid" if uid is None else f"uid {uid}"

    async def welcome(self) -> None:
        sock = self.transport.get_extra_info("socket") if self.transport else None
        uid = peer_uid(sock) if sock is not None else None
        if uid is None or uid not in (os.geteuid(), 0):
            who = "a peer whose uid is unknown" if uid is None else f"uid {uid}"
            log.warning("console: refused %s on the unix socket (only uid %d or root may "
                        "connect)", who, os.geteuid())
            self.send(f"refused: this console is only for uid {os.geteuid()} and root\n")
            self.close()
            return
        self.open_session(_user_name(uid))
