"""Listening sockets a process inherited instead of binding them itself.

A process that runs the service tree on sockets bound by another (a worker of ``dropins
--workers``, whose supervisor bound every endpoint before dropping privileges) *offers* them
here before ``privileged_start()``; each ``StreamServerService`` then *takes* the sockets
offered for its endpoint description instead of binding.  Several services may share one
description (two ``tcp:0`` servers): their sockets are handed out in the order they were
offered, which is the depth-first order of the tree, the order ``privileged_start()`` walks it
in.  The same arguments build the same tree, so the n-th server of a description in the worker
gets the sockets the n-th one bound in the supervisor.

This module knows nothing of where the sockets came from (service/ never imports the
supervisor); ``bound_sockets`` is the other half, which collects a bound tree's sockets.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["bound_sockets", "discard_offered", "is_shared", "offer", "take"]

#: description -> the socket lists offered for it, first taken first
_offered: dict[str, list[list[socket.socket]]] = {}
#: descriptors of the inherited sockets that other processes listen on too (no SO_REUSEPORT)
_shared: set[int] = set()


def offer(entries: Iterable[tuple[str, list[socket.socket]]]) -> None:
    """Offer ``(description, sockets)`` pairs, in the tree's depth-first order."""
    for description, sockets in entries:
        _offered.setdefault(description, []).append(list(sockets))
        _shared.update(sock.fileno() for sock in sockets if not _reuses_port(sock))


def is_shared(sock: socket.socket) -> bool:
    """Whether other processes accept on this listening socket too: an inherited socket
    without SO_REUSEPORT, which every worker of a supervisor watches.  Such a socket is
    accepted from one connection per wake-up (``dropins.service.accepting``), so that the
    kernel's wake-ups spread new connections over the workers instead of the first one
    awake taking the whole backlog."""
    return sock.fileno() in _shared


def _reuses_port(sock: socket.socket) -> bool:
    option = getattr(socket, "SO_REUSEPORT", None)
    if option is None:
        return False
    try:
        return bool(sock.getsockopt(socket.SOL_SOCKET, option))
    except OSError:
        return False


def take(description: str) -> list[socket.socket] | None:
    """The next sockets offered for ``description``, or None: then the service binds."""
    queue = _offered.get(description)
    if not queue:
        return None
    sockets = queue.pop(0)
    if not queue:
        del _offered[description]
    return sockets


def discard_offered(close: bool = True) -> list[str]:
    """Forget the sockets nobody took (the tree has fewer servers), closing them unless the
    caller still uses them; return their descriptions."""
    left = [description for description, queue in _offered.items() for _ in queue]
    for queue in _offered.values():
        for sockets in queue:
            for sock in sockets if close else ():
                _shared.discard(sock.fileno())
                sock.close()
    _offered.clear()
    return left


def bound_sockets(service: Any) -> list[tuple[str, list[socket.socket]]]:
    """Every ``(description, sockets)`` a bound tree listens on, in depth-first order."""
    return list(_walk(service))


def _walk(service: Any) -> Iterator[tuple[str, list[socket.socket]]]:
    listening = getattr(service, "listening_sockets", None)
    if callable(listening):
        sockets = listening()
        if sockets:
            yield str(service.description), list(sockets)
    try:
        children = list(service)
    except TypeError:
        return
    for child in children:
        yield from _walk(child)
