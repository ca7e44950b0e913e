"""``--personal``: a user's own server on ``~/.dropins-web.sock``, for a ``--userdir`` front.

Twisted 0.19's ``mktap web --personal``: each user runs a server of their own (files, WSGI
or ASGI, as that user), and the front server relays ``/~USER.dropins/`` to it.

Why it binds in ``start()`` and not in ``privileged_start()`` like other listeners: with
``dropins --uid alice web --personal`` started by root, the socket must be created by alice,
in alice's home (looked up from the effective uid, not ``$HOME``, which is still root's), so
that it is owned by her and its peer credentials say alice: the front server checks both.

Access: the socket is 0600, so only its owner and root can connect.  A front server that runs
as another user (``--uid www-data``) is let in with ``--front-user www-data``, which adds one
POSIX ACL entry for that user alone (see ``socketaccess``); the front server accepts that
entry when it names its own user, and refuses the socket when anyone else can connect.
"""

from __future__ import annotations

import os
import socket

from dropins.service.endpoint_unix import UNIXServerEndpoint
from dropins.service.stream import StreamServerService
from dropins.web.userdir import SOCKET_NAME

__all__ = ["PersonalEndpoint", "PersonalServer"]



def own_home() -> str:
    """The home folder of the effective user, from the password database."""
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_dir


class PersonalEndpoint(UNIXServerEndpoint):
    """``unix:~/.dropins-web.sock:mode=0600`` for whoever the process is when it binds, plus
    an ACL entry for ``front_uid`` when given."""

    def __init__(self, front_uid: int | None = None) -> None:
        super().__init__(os.path.join("~", SOCKET_NAME), mode=0o600,
                         description=f"unix:~/{SOCKET_NAME}")
        self.front_uid = front_uid

    def bind(self) -> list[socket.socket]:
        self.path = os.path.join(own_home(), SOCKET_NAME)
        self.description = f"unix:{self.path}"
        sockets = super().bind()
        if self.front_uid is not None:
            from dropins.web.socketaccess import grant_user

            try:
                grant_user(self.path, self.front_uid)
            except OSError as error:
                self.close(sockets)
                from dropins.service.errors import ListenError

                raise ListenError(self.description,
                                  f"cannot add the ACL entry for --front-user: "
                                  f"{(error.strerror or str(error)).lower()}") from error
        return sockets


class PersonalServer(StreamServerService):
    """A StreamServerService that binds when it starts, as the user the process is then."""

    def privileged_start(self) -> None:
        """Nothing yet: binding now would create the socket as root (see the module doc)."""

    async def start(self) -> None:
        StreamServerService.privileged_start(self)
        await super().start()
