"""A dripline service: one robust AMQP connection, its own exclusive queue, request dispatch to
its endpoints, lockout, ping, heartbeats; and ``AlertConsumer`` for alerts.

The queue is named after the service and exclusive, so the broker itself refuses a second
service of the same name.  aio-pika's robust connection re-declares queues, bindings and
consumers after a broker restart (retrying with back-off); endpoints keep their state in the
process meanwhile, and ``ready()`` (``/readyz``) says False while the link is down.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from dropins.dripline.codes import ReturnCode, ThrowReply
from dropins.dripline.endpoints import Endpoint
from dropins.dripline.mesh import Mesh
from dropins.dripline.wire import (
    ALERT,
    OPERATION_NAMES,
    REPLY,
    REQUEST,
    Assembler,
    DecodeError,
    Message,
    chunks,
    sender_info,
)
from dropins.service.base import Service as BaseService

log = logging.getLogger("dropins.dripline")


class ServiceError(RuntimeError):
    """The service cannot start (a one-line reason for the runner)."""


class Service(BaseService):
    """Serves ``endpoints`` as ``<endpoint>.#`` (and itself as ``<name>.#``) on the mesh."""

    def __init__(self, name: str, endpoints: list[Endpoint] | None = None, *,
                 mesh: Mesh | None = None, broadcast_key: str = "broadcast",
                 versions: dict[str, Any] | None = None) -> None:
        super().__init__(name)
        self.mesh = mesh or Mesh()
        self.broadcast_key = broadcast_key
        self.endpoints: dict[str, Endpoint] = {}
        self.id = str(uuid.uuid4())
        self.lockout_key: str | None = None
        self.connection: Any = None
        self.sender = sender_info(name, versions)
        self._tasks: list[asyncio.Task[None]] = []
        self._assembler = Assembler(self.mesh.message_wait_ms / 1000)
        for endpoint in endpoints or []:
            self.add_endpoint(endpoint)

    def add_endpoint(self, endpoint: Endpoint) -> None:
        if endpoint.name in self.endpoints or endpoint.name == self.name:
            raise ValueError(f"endpoint name {endpoint.name!r} is used twice")
        endpoint.service = self
        self.endpoints[endpoint.name] = endpoint

    async def _connect(self) -> Any:
        """The robust connection; the first attempts back off (0.5 s doubling, 5 s at most)."""
        import aio_pika

        delay, attempts = 0.5, max(1, self.mesh.max_connection_attempts)
        for attempt in range(1, attempts + 1):
            try:
                return await aio_pika.connect_robust(self.mesh.url, timeout=10,
                                                     reconnect_interval=1.0)
            except (OSError, aio_pika.exceptions.AMQPError, TimeoutError) as error:
                if attempt == attempts:
                    raise ServiceError(f"cannot reach the broker at {self.mesh.broker}:"
                                       f"{self.mesh.broker_port} after {attempts} attempts: "
                                       f"{error or type(error).__name__}") from None
                log.warning("broker not reachable (%s); retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    async def start(self) -> None:
        import aio_pika
        import aiormq

        self.connection = await self._connect()
        self.connection.reconnect_callbacks.add(lambda *_: log.info("broker: reconnected"))
        self.connection.close_callbacks.add(lambda *_: log.warning("broker: connection lost"))
        channel = await self.connection.channel()
        self.requests = await channel.declare_exchange(self.mesh.requests_exchange,
                                                       aio_pika.ExchangeType.TOPIC)
        self.alerts = await channel.declare_exchange(self.mesh.alerts_exchange,
                                                     aio_pika.ExchangeType.TOPIC)
        try:
            queue = await channel.declare_queue(self.name, exclusive=True, auto_delete=True)
        except aiormq.exceptions.ChannelLockedResource:
            await self.connection.close()
            raise ServiceError(f"service name {self.name!r} is already in use on the broker "
                               "(another service holds its exclusive queue); give this one "
                               "another name") from None
        for key in (self.name, self.broadcast_key, *self.endpoints):
            await queue.bind(self.requests, routing_key=f"{key}.#")
        await queue.consume(self._on_message)
        for endpoint in self.endpoints.values():
            await endpoint.start()
        self._tasks.append(asyncio.create_task(self._heartbeats()))
        log.info("dripline service %r serving %s", self.name, ", ".join(self.endpoints) or "-")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for endpoint in self.endpoints.values():
            await endpoint.stop()
        if self.connection is not None:
            await self.connection.close()

    async def ready(self) -> bool:
        """Whether the broker link is up (``/readyz`` asks)."""
        return bool(self.connection is not None and not self.connection.is_closed
                    and self.connection.connected.is_set())

    async def send_alert(self, routing_key: str, payload: Any) -> None:
        message = Message(ALERT, payload, sender=self.sender)
        try:
            for piece in chunks(message, self.mesh.max_payload_size):
                await self.alerts.publish(piece, routing_key=routing_key)
        except Exception as error:  # the broker is away: the next one will do
            log.warning("alert %s not sent: %s", routing_key, error)

    async def _heartbeats(self) -> None:
        key = f"{self.mesh.heartbeat_routing_key}.{self.name}"
        while True:
            await self.send_alert(key, {"name": self.name, "id": self.id})
            await asyncio.sleep(self.mesh.heartbeat_interval_s)

    async def _on_message(self, incoming: Any) -> None:
        await incoming.ack()
        try:
            message = self._assembler.add(incoming)
        except DecodeError as error:
            await self._reply_to(incoming.reply_to, incoming.correlation_id, error.code,
                                 str(error))
            return
        if message is None or message.message_type != REQUEST:
            return
        code, text, payload = 0, "", None
        try:
            payload = await self._dispatch(message)
            code, text = ReturnCode.SUCCESS, "success"
        except ThrowReply as thrown:
            code, text, payload = thrown.code, thrown.message, thrown.payload
        except Exception as error:
            log.exception("request %s failed", message.routing_key)
            code, text = ReturnCode.UNHANDLED_EXCEPTION, f"{type(error).__name__}: {error}"
        await self._reply_to(message.reply_to, message.correlation_id, code, text, payload)

    async def _reply_to(self, reply_to: Any, correlation_id: Any, code: int, text: str,
                        payload: Any = None) -> None:
        if not reply_to:
            return
        reply = Message(REPLY, payload, return_code=int(code), return_message=text,
                        correlation_id=str(correlation_id or ""), sender=self.sender)
        try:
            for piece in chunks(reply, self.mesh.max_payload_size):
                await self.requests.publish(piece, routing_key=str(reply_to))
        except Exception as error:
            log.warning("reply to %s not sent: %s", reply_to, error)

    async def _dispatch(self, message: Message) -> Any:
        target_name = message.routing_key.split(".", 1)[0]
        operation = OPERATION_NAMES.get(-1 if message.operation is None else message.operation)
        if operation is None:
            raise ThrowReply(ReturnCode.INVALID_METHOD,
                             f"unknown message_operation {message.operation!r}")
        if operation != "get":
            self._check_lockout(message)
        if operation == "cmd" and message.specifier in ("lock", "unlock", "ping"):
            return self._core_command(message)
        if operation == "get" and message.specifier == "is-locked":
            return {"is_locked": self.lockout_key is not None}
        endpoint = self.endpoints.get(target_name)
        if endpoint is None:  # the service itself, or a broadcast
            if operation == "get" and not message.specifier:
                return {"name": self.name, "endpoints": sorted(self.endpoints)}
            raise ThrowReply(ReturnCode.INVALID_SPECIFIER,
                             f"{target_name!r} has no {operation} {message.specifier!r}")
        return await endpoint.handle(operation, message.specifier, message.payload)

    def _check_lockout(self, message: Message) -> None:
        if self.lockout_key is None:
            return
        if message.specifier == "unlock" and isinstance(message.payload, dict) and \
                message.payload.get("force"):
            return
        if message.lockout_key:
            try:
                key = str(uuid.UUID(message.lockout_key))
            except ValueError:
                raise ThrowReply(ReturnCode.INVALID_KEY,
                                 f"lockout_key {message.lockout_key!r} is not a UUID") from None
            if key == self.lockout_key:
                return
        raise ThrowReply(ReturnCode.ACCESS_DENIED,
                         f"{self.name!r} is locked; give its lockout key (-k) or unlock with "
                         "force")

    def _core_command(self, message: Message) -> Any:
        if message.specifier == "ping":
            return {"message": f"Hello, {message.sender.get('exe', 'there')}"}
        if message.specifier == "lock":
            if self.lockout_key is not None:
                raise ThrowReply(ReturnCode.RESOURCE_ERROR, "Unable to lock server: already "
                                 "locked")
            try:
                key = uuid.UUID(message.lockout_key) if message.lockout_key else uuid.uuid4()
            except ValueError:
                raise ThrowReply(ReturnCode.INVALID_KEY,
                                 f"lockout_key {message.lockout_key!r} is not a UUID") from None
            self.lockout_key = str(key)
            return {"key": self.lockout_key}
        if self.lockout_key is None:
            raise ThrowReply(ReturnCode.NO_ACTION, "already unlocked")
        self.lockout_key = None
        return {}


class AlertConsumer(Service):
    """A service that also binds ``alert_keys`` on the alerts exchange and passes each alert to
    ``on_alert(routing_key, payload, message)`` (override it)."""

    def __init__(self, name: str, endpoints: list[Endpoint] | None = None, *,
                 alert_keys: list[str] | None = None, **options: Any) -> None:
        super().__init__(name, endpoints, **options)
        self.alert_keys = alert_keys or ["#"]

    async def start(self) -> None:
        await super().start()
        channel = await self.connection.channel()
        queue = await channel.declare_queue(f"{self.name}-alerts", exclusive=True,
                                            auto_delete=True)
        alerts = await channel.get_exchange(self.mesh.alerts_exchange)
        for key in self.alert_keys:
            await queue.bind(alerts, routing_key=key)
        await queue.consume(self._on_alert, no_ack=True)

    async def _on_alert(self, incoming: Any) -> None:
        try:
            message = self._assembler.add(incoming)
        except DecodeError:
            return
        if message is not None:
            try:
                result = self.on_alert(message.routing_key, message.payload, message)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("alert %s: the handler failed", message.routing_key)

    def on_alert(self, routing_key: str, payload: Any, message: Message) -> Any:
        log.info("alert %s: %s", routing_key, payload)
