"""Sending requests and waiting for their replies (dl-agent, the benchmark, tests).

As dripline-cpp does: a server-named exclusive reply queue bound on the requests exchange under
its own name, requests published ``mandatory`` so that one nobody is bound for comes back
(102, routing key not found) instead of timing out.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from dropins.dripline.codes import ReturnCode
from dropins.dripline.mesh import Mesh
from dropins.dripline.wire import OPERATIONS, REQUEST, Assembler, Message, chunks, sender_info


class Client:
    """One connection that sends requests; use as ``async with Client(mesh) as client``."""

    def __init__(self, mesh: Mesh, name: str = "dl-agent") -> None:
        self.mesh = mesh
        self.name = name
        self._waiting: dict[str, asyncio.Future[Message]] = {}
        self._assembler = Assembler(mesh.message_wait_ms / 1000)

    async def __aenter__(self) -> Client:
        import aio_pika

        self.connection = await aio_pika.connect(self.mesh.url, timeout=10)
        self.channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        self.exchange = await self.channel.declare_exchange(
            self.mesh.requests_exchange, aio_pika.ExchangeType.TOPIC)
        self.queue = await self.channel.declare_queue("", exclusive=True, auto_delete=True)
        await self.queue.bind(self.exchange, routing_key=self.queue.name)
        await self.queue.consume(self._on_reply, no_ack=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.connection.close()

    async def _on_reply(self, incoming: Any) -> None:
        try:
            message = self._assembler.add(incoming)
        except ValueError:
            return
        if message is not None:
            future = self._waiting.pop(message.correlation_id, None)
            if future is not None and not future.done():
                future.set_result(message)

    async def request(self, operation: str, routing_key: str, payload: Any = None, *,
                      specifier: str = "", lockout_key: str = "", timeout: float = 10
                      ) -> Message:
        """Send one request; return the reply (a 102/404 reply made here when none came)."""
        import aio_pika

        message = Message(REQUEST, payload if payload is not None else {},
                          specifier=specifier, operation=OPERATIONS[operation],
                          lockout_key=lockout_key, correlation_id=str(uuid.uuid4()),
                          reply_to=self.queue.name, sender=sender_info(self.name))
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[message.correlation_id] = future
        try:
            for piece in chunks(message, self.mesh.max_payload_size):
                try:
                    await self.exchange.publish(piece, routing_key=routing_key, mandatory=True)
                except aio_pika.exceptions.DeliveryError:
                    return _local_reply(ReturnCode.ROUTING_KEY_NOT_FOUND,
                                        f"no service is bound for routing key {routing_key!r}")
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return _local_reply(ReturnCode.CLIENT_TIMEOUT,
                                f"no reply from {routing_key!r} within {timeout:g} s")
        finally:
            self._waiting.pop(message.correlation_id, None)


def _local_reply(code: int, text: str) -> Message:
    return Message(2, None, return_code=int(code), return_message=text)
