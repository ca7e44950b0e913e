"""``--health ENDPOINT``: a small HTTP server for probes and Prometheus, beside the services.

* ``/livez``: 200 while the event loop(s) answer; 503 with the reason otherwise.
* ``/readyz``: 200 once every service has started and its optional ``ready()`` hook passes;
  503 with a one-line reason during start-up, a reload and shutdown (which begins by failing
  readiness, so a load balancer stops sending before any listener closes).
* ``/metrics``: the Prometheus text format (``dropins[metrics]``; 501 with a hint without it).

It is served by the project's own machinery (an endpoint string, ``StreamServerService`` and
the web server's HTTP/1.1 connection, with its bounded heads and timeouts) but is kept out of
the application tree, so that a reload never touches it and it answers during start-up and
shutdown.  What it reports comes from a *view* (``ProcessView`` for one process, the
supervisor's for workers), so the same server serves both.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Protocol

from dropins.supervisor.lifecycle import Lifecycle, Phase
from dropins.supervisor.metrics import CONTENT_TYPE, collect_samples, metrics_available, walk

__all__ = ["HealthServer", "HealthView", "ProcessView", "ready_problem"]

log = logging.getLogger("dropins.supervisor")

#: How long one service's ``ready()`` hook may take before it counts as not ready.
READY_HOOK_TIMEOUT = 5.0
_TEXT = [(b"Content-Type", b"text/plain; charset=utf-8"), (b"Cache-Control", b"no-store")]
_NO_METRICS = ("/metrics needs prometheus-client: pip install 'dropins[metrics]'")


class HealthView(Protocol):
    """What the health server reports: the answers of one process, or of a supervisor."""

    lifecycle: Lifecycle

    def live_problem(self) -> str | None: ...

    async def ready_problem(self) -> str | None: ...

    async def samples(self) -> list[dict[str, Any]]: ...


async def ready_problem(application: Any) -> str | None:
    """Why a started tree is not ready (the first ``ready()`` hook that fails), or None."""
    for service in walk(application):
        hook = getattr(service, "ready", None)
        if not callable(hook):
            continue
        name = getattr(service, "name", None) or type(service).__name__
        try:
            result = hook()
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, READY_HOOK_TIMEOUT)
        except TimeoutError:
            return f"service {name!r}: ready() took over {READY_HOOK_TIMEOUT:g} s"
        except Exception as error:
            return f"service {name!r}: ready() failed: {type(error).__name__}: {error}"
        if not result:
            return f"service {name!r} is not ready"
    return None


class ProcessView:
    """The health of a single process: its loop answers if this code runs at all."""

    def __init__(self, application: Any, lifecycle: Lifecycle) -> None:
        self.application = application
        self.lifecycle = lifecycle

    def live_problem(self) -> str | None:
        return None

    async def ready_problem(self) -> str | None:
        return await ready_problem(self.application)

    async def samples(self) -> list[dict[str, Any]]:
        return collect_samples(self.application)


class HealthServer:
    """Serves a ``HealthView`` on ``endpoint`` (an endpoint string)."""

    def __init__(self, endpoint: str, view: HealthView) -> None:
        from dropins.service.stream import StreamServerService
        from dropins.web.server import Limits, WebServer

        self.view = view
        limits = Limits(max_head_size=8 * 1024, max_headers=50, max_body_size=0,
                        header_timeout=5.0, keepalive_timeout=5.0, send_timeout=10.0)
        server = WebServer(self.handle, limits, access_log=False)
        server.allow = b"GET, HEAD"
        self.service = StreamServerService(endpoint, server, name="health",
                                           shutdown_timeout=1.0)

    @property
    def addresses(self) -> list[str]:
        return self.service.addresses

    def privileged_start(self) -> None:
        self.service.privileged_start()

    async def start(self) -> None:
        await self.service.start()
        log.info("health: serving /livez, /readyz and /metrics on %s",
                 ", ".join(self.addresses))

    async def stop(self) -> None:
        await self.service.stop()

    async def handle(self, exchange: Any) -> None:
        path = exchange.path
        if path not in (b"/livez", b"/readyz", b"/metrics"):
            _answer(exchange, 404, "not found: try /livez, /readyz or /metrics")
            return
        if exchange.method not in (b"GET", b"HEAD"):
            _answer(exchange, 405, "only GET and HEAD", [(b"Allow", b"GET, HEAD")])
            return
        if path == b"/livez":
            problem = self.view.live_problem()
        elif path == b"/readyz":
            problem = await self._ready_problem()
        else:
            await self._metrics(exchange)
            return
        _answer(exchange, 200 if problem is None else 503, problem or "ok")

    async def _ready_problem(self) -> str | None:
        phase = self.view.lifecycle.phase
        if phase is not Phase.READY:
            return f"not ready: {phase.value}"
        problem = await self.view.ready_problem()
        if problem is None and self.view.lifecycle.phase is not Phase.READY:
            return f"not ready: {self.view.lifecycle.phase.value}"  # moved while we asked
        return None if problem is None else f"not ready: {problem}"

    async def _metrics(self, exchange: Any) -> None:
        if not metrics_available():
            _answer(exchange, 501, _NO_METRICS)
            return
        from dropins.supervisor.metrics import render

        body = render(await self.view.samples())
        exchange.respond(200, [(b"Content-Type", CONTENT_TYPE.encode()),
                               (b"Cache-Control", b"no-store")], body)


def _answer(exchange: Any, status: int, text: str,
            headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """A one-line plain-text answer, never cached (a probe must see the state of now)."""
    exchange.respond(status, [*_TEXT, *(headers or [])], text.encode("utf-8", "replace") + b"\n")
