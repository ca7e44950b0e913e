"""The service layer: a tree of services with a start/stop lifecycle, servers and timers.

``Application`` is the root of the tree, ``MultiService`` groups services, ``StreamServerService``
serves a protocol on an endpoint string such as ``tcp:8080`` (see ``dropins.service.endpoints``
for the syntax and the endpoint protocol), and ``TimerService`` calls a function periodically.

Names are imported lazily from their modules, so that importing ``dropins.service.maker`` or
``dropins.service.interfaces`` (as plugin modules do) does not import asyncio.
"""

from __future__ import annotations

from dropins._lazy import lazy_exports

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms per command

_EXPORTS: dict[str, str] = {
    "Service": "dropins.service.base",
    "MultiService": "dropins.service.base",
    "Application": "dropins.service.base",
    "StreamServerService": "dropins.service.stream",
    "DatagramServerService": "dropins.service.datagram",
    "TimerService": "dropins.service.timer",
    "parse_endpoint": "dropins.service.endpoints",
    "register_parser": "dropins.service.endpoints",
    "SocketEndpoint": "dropins.service.serving",
    "EndpointError": "dropins.service.errors",
    "ListenError": "dropins.service.errors",
    "ServiceStartError": "dropins.service.errors",
    "IService": "dropins.service.interfaces",
    "IServiceMaker": "dropins.service.interfaces",
    "IServerEndpointParser": "dropins.service.interfaces",
}

__all__ = [
    "Application",
    "DatagramServerService",
    "EndpointError",
    "IServerEndpointParser",
    "IService",
    "IServiceMaker",
    "ListenError",
    "MultiService",
    "Service",
    "ServiceStartError",
    "SocketEndpoint",
    "StreamServerService",
    "TimerService",
    "parse_endpoint",
    "register_parser",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from dropins.service.base import Application, MultiService, Service
    from dropins.service.datagram import DatagramServerService
    from dropins.service.endpoints import parse_endpoint, register_parser
    from dropins.service.errors import EndpointError, ListenError, ServiceStartError
    from dropins.service.interfaces import IServerEndpointParser, IService, IServiceMaker
    from dropins.service.serving import SocketEndpoint
    from dropins.service.stream import StreamServerService
    from dropins.service.timer import TimerService
