"""The ``systemd`` endpoint kind: a listening socket inherited through socket activation.

``systemd:domain=INET|INET6|UNIX:index=N`` takes the N-th passed socket (file descriptor 3+N);
``systemd:domain=...:name=NAME`` the first one named NAME in ``LISTEN_FDNAMES`` (the
``FileDescriptorName=`` of the .socket unit).  As in ``sd_listen_fds(3)``, the sockets belong
to this process only when ``LISTEN_PID`` is its pid.  The environment is left as it is, so that
several systemd endpoints can share it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence

from dropins.service.endpoints import bind_fields, parse_int
from dropins.service.errors import EndpointError, ListenError, listen_error
from dropins.service.serving import SocketEndpoint

__all__ = ["SystemdEndpoint", "parse_systemd"]

#: the first file descriptor passed by systemd
LISTEN_FDS_START = 3

_DOMAINS = ("INET", "INET6", "UNIX")


class SystemdEndpoint(SocketEndpoint):
    """Serve on a socket passed by systemd, chosen by ``index`` or by ``name``."""

    def __init__(self, domain: str, *, index: int | None = None, name: str | None = None,
                 description: str | None = None) -> None:
        if (index is None) == (name is None):
            raise ValueError("give exactly one of index and name")
        self.domain = domain
        self.index = index
        self.name = name
        chosen = f"index={index}" if name is None else f"name={name}"
        self.description = description or f"systemd:domain={domain}:{chosen}"

    def bind(self) -> list[socket.socket]:
        index = self._passed_index()
        fd = LISTEN_FDS_START + index
        try:
            sock = socket.socket(fileno=fd)
        except OSError as error:
            raise listen_error(self.description, error) from error
        expected = getattr(socket, f"AF_{self.domain}", None)
        if sock.family != expected or sock.type != socket.SOCK_STREAM:
            found = f"{sock.family.name}/{socket.SocketKind(sock.type).name}"
            sock.detach()  # not ours to close
            raise ListenError(self.description,
                              f"passed socket {index} (fd {fd}) is {found}, not "
                              f"AF_{self.domain}/SOCK_STREAM")
        os.set_inheritable(fd, False)
        sock.setblocking(False)
        return [sock]

    def _passed_index(self) -> int:
        """Check the activation environment and return the index of the chosen socket."""
        environ = os.environ
        if "LISTEN_FDS" not in environ:
            raise ListenError(self.description, "LISTEN_FDS is not set: this process was not "
                              "started by systemd socket activation")
        pid = environ.get("LISTEN_PID", "")
        if pid != str(os.getpid()):
            raise ListenError(self.description, f"LISTEN_PID is {pid or 'not set'}, not this "
                              f"process ({os.getpid()}): the sockets were meant for another one")
        count_text = environ["LISTEN_FDS"]
        if not count_text.isdigit():
            raise ListenError(self.description, f"LISTEN_FDS is not a number: {count_text!r}")
        count = int(count_text)
        if self.name is not None:
            names = environ.get("LISTEN_FDNAMES", "").split(":")[:count]
            if self.name not in names:
                listed = ", ".join(repr(n) for n in names if n) or "none"
                raise ListenError(self.description, f"no passed socket is named {self.name!r} "
                                  f"in LISTEN_FDNAMES (names: {listed})")
            return names.index(self.name)
        assert self.index is not None
        if self.index >= count:
            available = f"indexes 0 to {count - 1}" if count else "none"
            raise ListenError(self.description, f"index {self.index} is out of range: systemd "
                              f"passed {count} socket(s) ({available})")
        return self.index


def parse_systemd(args: Sequence[str], kwargs: Mapping[str, str], *,
                  description: str | None = None) -> SystemdEndpoint:
    """``systemd:domain=INET|INET6|UNIX:index=N`` or ``systemd:domain=...:name=NAME``."""
    fields = bind_fields("systemd", args, kwargs, [], ["domain", "index", "name"])
    domain = fields.get("domain", "").upper()
    if domain not in _DOMAINS:
        got = f", got {fields['domain']!r}" if "domain" in fields else " (it is missing)"
        raise EndpointError(f"domain must be one of {', '.join(_DOMAINS)}{got}")
    if ("index" in fields) == ("name" in fields):
        raise EndpointError("give exactly one of index=N (0 for the first socket) or name=NAME")
    if "name" in fields:
        if not fields["name"]:
            raise EndpointError("name is empty")
        return SystemdEndpoint(domain, name=fields["name"], description=description)
    index = parse_int(fields["index"], "index", 0, 65535)
    return SystemdEndpoint(domain, index=index, description=description)
