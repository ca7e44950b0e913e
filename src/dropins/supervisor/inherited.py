"""The listening sockets a supervisor hands to each worker it spawns.

The supervisor binds every endpoint once (``privileged_start()``, before ``--uid/--gid``) and
keeps the sockets for as long as it runs: each worker it spawns, replacements included, gets
them through ``pass_fds`` (same descriptor numbers in the worker) and a JSON description in its
environment, ``[[endpoint description, [fd, ...]], ...]`` in the tree's depth-first order
(``dropins.service.inherited`` matches them up on the worker side).

With ``--reuse-port`` a TCP socket is not shared: the supervisor keeps it bound but not
listening (so that the kernel sends it no connection, and the port, even a port 0 one, stays
reserved), and makes each worker a listening socket of its own on the same address with
``SO_REUSEPORT``; the kernel then balances connections between the workers.  Unix and
systemd-activated sockets are shared as usual (they cannot be bound twice).
"""

from __future__ import annotations

import json
import socket

__all__ = ["HandedSockets"]

#: listen() backlog of a worker's own --reuse-port socket
REUSE_PORT_BACKLOG = 1024

Entries = list[tuple[str, list[socket.socket]]]


def _reuse_port_socket(address: tuple, family: socket.AddressFamily, listen: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        if listen:
            sock.listen(REUSE_PORT_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


#: The endpoint kinds whose sockets --reuse-port gives each worker its own copy of (the others,
#: unix and systemd sockets above all, cannot be bound twice).
REUSE_PORT_KINDS = ("tcp", "tcp6", "ssl")


def _reusable(description: str, sock: socket.socket) -> bool:
    return (description.split(":", 1)[0].lower() in REUSE_PORT_KINDS
            and sock.family in (socket.AF_INET, socket.AF_INET6))


class HandedSockets:
    """The sockets of one bound tree, and the per-worker copies ``--reuse-port`` asks for."""

    def __init__(self, entries: Entries, reuse_port: bool = False) -> None:
        self.reuse_port = reuse_port
        self.entries = [(description, self._template(description, sockets))
                        for description, sockets in entries] if reuse_port else entries

    def _template(self, description: str, sockets: list[socket.socket]) -> list[socket.socket]:
        """The bound sockets, each TCP one replaced by a non-listening SO_REUSEPORT twin."""
        templates = []
        for sock in sockets:
            if not _reusable(description, sock) or not sock.getsockopt(
                    socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                # not TCP, or a template already (a reload's new tree took the old ones)
                templates.append(sock)
                continue
            address, family = sock.getsockname(), sock.family
            sock.close()  # it had no SO_REUSEPORT: no twin could bind beside it
            templates.append(_reuse_port_socket(address, family, listen=False))
        return templates

    def for_worker(self) -> tuple[str, list[int], list[socket.socket]]:
        """(environment value, descriptors to pass, sockets to close once spawned)."""
        described, fds, own = [], [], []
        for description, sockets in self.entries:
            numbers = []
            for sock in sockets:
                if self.reuse_port and _reusable(description, sock):
                    sock = _reuse_port_socket(sock.getsockname(), sock.family, listen=True)
                    own.append(sock)
                numbers.append(sock.fileno())
            described.append([description, numbers])
            fds += numbers
        return json.dumps(described), fds, own

    def sockets(self) -> list[socket.socket]:
        return [sock for _description, sockets in self.entries for sock in sockets]
