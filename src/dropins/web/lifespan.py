"""The ASGI lifespan protocol as a service: the application starts before the first request
and shuts down after the last one.

``start()`` runs the application with a ``lifespan`` scope, sends ``lifespan.startup`` and
waits for the answer: ``lifespan.startup.complete`` lets the server start;
``lifespan.startup.failed`` (or an exception once startup began) makes ``start()`` raise
``LifespanError`` with a one-line message, so the runner exits without serving.  An
application that raises at once on the lifespan scope does not support it (as the spec
allows): that is logged at debug level and serving goes on.  ``stop()`` sends
``lifespan.shutdown`` and waits, bounded by the shutdown timeout.

The ``state`` dictionary the application fills during startup is copied into every request's
scope, as the lifespan-state extension describes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from dropins.service.base import DEFAULT_SHUTDOWN_TIMEOUT, Service, root_setting
from dropins.web.asgi import ASGI_VERSION, AsgiApp, Message

__all__ = ["AsgiLifespan", "LifespanError"]

logger = logging.getLogger("dropins.web")


class LifespanError(RuntimeError):
    """The application reported that it could not start (or stop)."""


class AsgiLifespan(Service):
    """Runs an ASGI application's startup and shutdown around the servers."""

    def __init__(self, app: AsgiApp, name: str, state: dict[str, Any]) -> None:
        super().__init__("asgi-lifespan")
        self.app = app
        self.app_name = name
        self.state = state
        self._to_app: asyncio.Queue[Message] | None = None
        self._from_app: asyncio.Queue[Message] | None = None
        self._task: asyncio.Task[None] | None = None
        self._supported = True
        self._phase = "startup"

    async def start(self) -> None:
        self._to_app = asyncio.Queue()
        self._from_app = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())
        await self._to_app.put({"type": "lifespan.startup"})
        message = await self._answer()
        if message["type"] == "lifespan.startup.failed":
            raise LifespanError(f"application {self.app_name}: "
                                f"{message.get('message') or 'no reason given'}")
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if not self._supported or self._task is None or self._task.done():
            return
        assert self._to_app is not None
        self._phase = "shutdown"
        await self._to_app.put({"type": "lifespan.shutdown"})
        timeout = float(root_setting(self, "shutdown_timeout", DEFAULT_SHUTDOWN_TIMEOUT))
        try:
            message = await asyncio.wait_for(self._answer(), timeout)
        except TimeoutError:
            logger.warning("ASGI application %s did not finish its shutdown in %.3g s",
                           self.app_name, timeout)
            self._task.cancel()
            return
        if message["type"] == "lifespan.shutdown.failed":
            logger.error("ASGI application %s failed to shut down: %s", self.app_name,
                         message.get("message") or "no reason given")

    async def _run(self) -> None:
        assert self._to_app is not None and self._from_app is not None
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        started = False

        async def receive() -> Message:
            nonlocal started
            assert self._to_app is not None
            message = await self._to_app.get()
            started = True
            return message

        async def send(message: Message) -> None:
            assert self._from_app is not None
            await self._from_app.put(message)

        try:
            await self.app(scope, receive, send)
        except Exception as error:
            if started:
                logger.exception("error in the lifespan of ASGI application %s", self.app_name)
                await self._from_app.put({"type": "lifespan.error", "message": _one_line(error)})
                return
            logger.debug("ASGI application %s does not support lifespan (%s)", self.app_name,
                         _one_line(error))
            self._supported = False
            await self._from_app.put({"type": "lifespan.unsupported"})
            return
        await self._from_app.put({"type": "lifespan.returned"})

    async def _answer(self) -> Message:
        """The application's reply to the last event (unsupported/errors mapped to types)."""
        assert self._from_app is not None
        message = await self._from_app.get()
        kind = message.get("type")
        if kind == "lifespan.unsupported":
            return {"type": "lifespan.startup.complete"}
        if kind == "lifespan.error":
            return {"type": f"lifespan.{self._phase}.failed", "message": message["message"]}
        if kind == "lifespan.returned":
            self._supported = False
            return {"type": f"lifespan.{self._phase}.complete"}
        return message


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
