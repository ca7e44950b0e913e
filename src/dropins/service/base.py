"""The service tree: ``Service``, ``MultiService`` and the root ``Application``.

A service has a three-step lifecycle, driven by the runner (or by a parent):

1. ``privileged_start()``: synchronous, before the event loop serves anything and before the
   runner drops privileges; bind low ports and open protected files here.
2. ``await start()``: begin work on the running loop.  Raising reports that the service could
   not start; it is then not stopped.
3. ``await stop()``: release what ``start()`` acquired.  Called once per successful start.

``running`` is true between a successful ``start()`` and ``stop()``.  A ``MultiService`` drives
its children in order and stops them in reverse order, so a service may rely on the siblings
added before it.  Settings that concern the whole process (uid, gid, shutdown timeout) live on
the root ``Application``; descendants read them with ``root_setting``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from zope.interface import implementer

from dropins.service.errors import ServiceStartError
from dropins.service.interfaces import IService

__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "Application",
    "MultiService",
    "Service",
    "hangup_services",
    "root_setting",
    "service_label",
]

logger = logging.getLogger("dropins.service")

#: seconds open connections get to finish when no Application says otherwise
DEFAULT_SHUTDOWN_TIMEOUT = 10.0


@implementer(IService)
class Service:
    """A leaf of the service tree; subclass it and extend ``start`` and ``stop``.

    Subclasses that override ``start``/``stop`` should call ``super()`` so that ``running``
    stays true to the service's state.
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self.parent: MultiService | None = None
        self.running = False

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name is not None else ""
        return f"<{type(self).__name__}{label}>"

    def set_parent(self, parent: MultiService) -> None:
        """Attach to ``parent``, detaching from the current parent first."""
        parent.add_service(self)

    def privileged_start(self) -> None:
        """Do the work that needs privileges; the default does nothing."""

    async def start(self) -> None:
        """Start; the default only marks the service as running."""
        self.running = True

    async def stop(self) -> None:
        """Stop; the default only marks the service as stopped."""
        self.running = False


class MultiService(Service):
    """A service made of child services, started in order and stopped in reverse order.

    Adding or removing a child does not start or stop it: the tree is meant to be built before
    the runner starts it.  To grow a running tree, ``await child.start()`` after adding it.
    """

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self._children: list[Service] = []
        self._started: list[Service] = []

    def __iter__(self) -> Iterator[Service]:
        return iter(list(self._children))

    def __len__(self) -> int:
        return len(self._children)

    def add_service(self, child: Service) -> None:
        """Append ``child``; names must be unique among siblings (``None`` is not a name)."""
        if child.parent is self:
            return
        if child is self or (isinstance(child, MultiService) and _is_ancestor(child, self)):
            raise ValueError(f"cannot add {child!r} to {self!r}: it would contain itself")
        if child.name is not None and any(c.name == child.name for c in self._children):
            raise ValueError(f"{self!r} already has a child service named {child.name!r}")
        if child.parent is not None:
            child.parent.remove_service(child)
        self._children.append(child)
        child.parent = self

    def remove_service(self, child: Service) -> None:
        """Detach ``child``; raises ``ValueError`` if it is not a child of this service."""
        try:
            self._children.remove(child)
        except ValueError:
            raise ValueError(f"{child!r} is not a child of {self!r}") from None
        child.parent = None

    def get_service(self, name: str) -> Service:
        """The child named ``name``; raises ``KeyError`` naming the known children otherwise."""
        for child in self._children:
            if child.name == name:
                return child
        known = ", ".join(repr(c.name) for c in self._children if c.name is not None) or "none"
        raise KeyError(f"no child service named {name!r} in {self!r} (named children: {known})")

    def privileged_start(self) -> None:
        """Call each child's ``privileged_start`` in order."""
        for child in self._children:
            try:
                child.privileged_start()
            except ServiceStartError:
                raise
            except Exception as error:
                raise _start_error(child, error) from error

    async def start(self) -> None:
        """Start the children in order; on a failure, stop the started ones and raise.

        The error raised is a ``ServiceStartError`` naming the failing child and repeating the
        original message, which stays available as ``__cause__``.
        """
        self._started = []
        for child in list(self._children):
            try:
                await child.start()
            except BaseException as error:
                await self._stop_started()
                if isinstance(error, ServiceStartError | KeyboardInterrupt | SystemExit) or (
                    not isinstance(error, Exception)
                ):
                    raise
                raise _start_error(child, error) from error
            self._started.append(child)
        await super().start()

    async def stop(self) -> None:
        """Stop the started children in reverse order; a failure is logged, not raised."""
        await super().stop()
        await self._stop_started()

    async def start_child(self, child: Service) -> None:
        """Add ``child`` to this running service and start it (``privileged_start`` first).

        For changing a running tree (a configuration reload): the child is then stopped with
        its siblings.  If it fails to start it is removed again and the error raised.
        """
        self.add_service(child)
        try:
            child.privileged_start()
            await child.start()
        except BaseException:
            self.remove_service(child)
            raise
        self._started.append(child)

    async def stop_child(self, child: Service) -> None:
        """Stop ``child`` (if it was started) and remove it; a failure to stop is logged."""
        if child in self._started:
            self._started.remove(child)
            try:
                await child.stop()
            except Exception:
                logger.exception("error while stopping %s", service_label(child))
        self.remove_service(child)

    async def stop_in_place(self, child: Service) -> None:
        """Stop a started ``child`` but keep it in the tree (the admin's stop button), so that
        ``start_in_place`` can start it again and the tree's stop skips it meanwhile."""
        if child not in self._started:
            return
        self._started.remove(child)
        await child.stop()

    async def start_in_place(self, child: Service) -> None:
        """Start a child stopped by ``stop_in_place`` again (binding first)."""
        if child in self._started or child.parent is not self:
            return
        child.privileged_start()
        await child.start()
        self._started.append(child)
        self._started.sort(key=self._children.index)  # the stop order stays the reverse

    def order_children(self, names: list[str]) -> None:
        """Put the children named in ``names`` in that order (the start and stop order)."""
        rank = {name: index for index, name in enumerate(names)}

        def position(child: Service) -> int:
            return rank.get(child.name or "", len(rank))

        self._children.sort(key=position)
        self._started.sort(key=position)

    async def _stop_started(self) -> None:
        started, self._started = self._started, []
        for child in reversed(started):
            try:
                await child.stop()
            except Exception:
                logger.exception("error while stopping %s", service_label(child))


class Application(MultiService):
    """The root of a service tree, carrying process-wide settings.

    ``uid``/``gid`` are what the runner switches to after ``privileged_start``;
    ``shutdown_timeout`` is how long, in seconds, servers let open connections finish on stop.
    """

    def __init__(self, name: str | None = None, *, uid: int | None = None,
                 gid: int | None = None,
                 shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT) -> None:
        super().__init__(name)
        if shutdown_timeout < 0:
            raise ValueError(f"shutdown_timeout must be >= 0, got {shutdown_timeout!r}")
        self.uid = uid
        self.gid = gid
        self.shutdown_timeout = float(shutdown_timeout)
        #: While the tree stops: the ``time.monotonic()`` by which every server must be done.
        self.stop_deadline: float | None = None

    async def stop(self) -> None:
        """Stop the tree against one deadline, ``shutdown_timeout`` from now.

        Children stop one after another; if each server could wait the whole timeout for its
        connections, a tree with several servers would take a multiple of it.  Servers read
        ``stop_deadline`` (through ``root_setting``) and wait only for what is left of it.
        """
        import time

        self.stop_deadline = time.monotonic() + self.shutdown_timeout
        try:
            await super().stop()
        finally:
            self.stop_deadline = None


def hangup_services(root: Service) -> None:
    """Call ``hangup()`` on every service of the tree that defines it (the runner does on
    SIGHUP): how a server re-reads its own files, such as DNS zones, without a restart.  One
    service's failure is logged and does not keep the others from reloading."""
    stack: list[Service] = [root]
    while stack:
        service = stack.pop()
        hook = getattr(service, "hangup", None)
        if callable(hook):
            try:
                hook()
            except Exception:
                logger.exception("%s: error while reloading on SIGHUP", service_label(service))
        if isinstance(service, MultiService):
            stack.extend(reversed(list(service)))


def root_setting(service: Service, name: str, default: Any = None) -> Any:
    """The setting ``name`` of the nearest ancestor (or ``service`` itself) that has it.

    An attribute set to ``None`` counts as unset, so a service can take an optional override
    (``StreamServerService(..., shutdown_timeout=None)``) and still defer to its root.
    """
    node: Service | None = service
    while node is not None:
        value = vars(node).get(name)
        if value is not None:
            return value
        node = node.parent
    return default


def service_label(service: Service) -> str:
    """How messages name a service: ``service 'web'``, or ``a StreamServerService`` unnamed."""
    if service.name is not None:
        return f"service {service.name!r}"
    kind = type(service).__name__
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def _is_ancestor(candidate: MultiService, node: Service) -> bool:
    current: Service | None = node
    while current is not None:
        if current is candidate:
            return True
        current = current.parent
    return False


def _start_error(child: Service, error: BaseException) -> ServiceStartError:
    return ServiceStartError(f"{service_label(child)} failed to start: {error}", child)
