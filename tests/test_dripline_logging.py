"""Entity logging (``log_interval``, ``max_interval``, ``max_absolute_change``,
``max_fractional_change``, ``log_on_set``) and ``AlertConsumer``: the decision in process, then
a sensor_value alert and an alert consumer on the session's RabbitMQ node, watched and fed with
plain aio-pika."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest

from _rabbitmq import RabbitNode
from dropins.dripline import AlertConsumer, KeyValueStore, Service
from dropins.dripline.endpoints import Entity
from dropins.dripline.mesh import Mesh


class Recorder:
    """Stands in for the service: keeps the alerts an endpoint sends."""

    def __init__(self) -> None:
        self.alerts: list[tuple[str, Any]] = []

    async def send_alert(self, routing_key: str, payload: Any) -> None:
        self.alerts.append((routing_key, payload))


def store(**options: Any) -> KeyValueStore:
    endpoint = KeyValueStore("peaches", initial_value=1.0, **options)
    endpoint.service = Recorder()
    return endpoint


def logged(endpoint: Entity, value: Any, *, ago: float = 0.0) -> Entity:
    """As if ``value`` had been logged ``ago`` seconds before."""
    endpoint._last_logged = (time.monotonic() - ago, value)
    return endpoint


def test_the_first_value_is_always_logged() -> None:
    assert store(max_absolute_change=1)._should_log({"value_raw": 1.0})
    assert store(max_interval=60)._should_log({"value_raw": 1.0})
    assert store()._should_log({"value_raw": 1.0})


def test_without_thresholds_or_max_interval_every_interval_logs() -> None:
    assert logged(store(), {"value_raw": 1.0})._should_log({"value_raw": 1.0})


def test_max_interval_alone_logs_only_when_it_passed() -> None:
    assert not logged(store(max_interval=60), {"value_raw": 1.0}, ago=1)._should_log(
        {"value_raw": 5.0})
    assert logged(store(max_interval=60), {"value_raw": 1.0}, ago=61)._should_log(
        {"value_raw": 1.0})


def test_max_absolute_change() -> None:
    endpoint = logged(store(max_absolute_change=0.5), {"value_raw": 1.0})
    assert not endpoint._should_log({"value_raw": 1.4})
    assert not endpoint._should_log({"value_raw": 0.5})  # exactly the threshold: not more
    assert endpoint._should_log({"value_raw": 1.6})
    assert endpoint._should_log({"value_raw": 0.4})  # downwards too


def test_max_fractional_change() -> None:
    endpoint = logged(store(max_fractional_change=0.1), {"value_raw": -10.0})
    assert not endpoint._should_log({"value_raw": -10.5})
    assert endpoint._should_log({"value_raw": -11.5})
    assert endpoint._should_log({"value_raw": -8.0})


def test_fractional_change_from_zero_is_logged() -> None:
    endpoint = logged(store(max_fractional_change=0.1), {"value_raw": 0.0})
    assert not endpoint._should_log({"value_raw": 0.0})
    assert endpoint._should_log({"value_raw": 0.001})


def test_thresholds_or_max_interval() -> None:
    endpoint = store(max_absolute_change=0.5, max_interval=60)
    assert not logged(endpoint, {"value_raw": 1.0}, ago=10)._should_log({"value_raw": 1.1})
    assert logged(endpoint, {"value_raw": 1.0}, ago=10)._should_log({"value_raw": 2.0})
    assert logged(endpoint, {"value_raw": 1.0}, ago=61)._should_log({"value_raw": 1.0})


def test_a_slow_drift_is_measured_from_the_last_logged_value() -> None:
    async def scenario() -> list[Any]:
        endpoint = store(max_absolute_change=0.5)
        for value in (1.0, 1.3, 1.6, 1.9):
            endpoint.value = value
            reading = await endpoint.handle("get", "", None)
            if endpoint._should_log(reading):
                await endpoint._log(reading)
        return [payload["value_raw"] for _, payload in endpoint.service.alerts]
    assert asyncio.run(scenario()) == [1.0, 1.6]


def test_non_numeric_values_log_when_they_change() -> None:
    endpoint = logged(store(max_absolute_change=0.5), {"value_raw": "open"})
    assert not endpoint._should_log({"value_raw": "open"})
    assert endpoint._should_log({"value_raw": "closed"})


def test_log_on_set_sends_the_new_calibrated_value() -> None:
    async def scenario() -> tuple[Any, list[tuple[str, Any]]]:
        endpoint = store(log_on_set=True, calibration="{}*2")
        result = await endpoint.handle("set", "", {"values": [3]})
        await endpoint.handle("set", "value", {"values": [4]})  # an attribute: not logged
        return result, endpoint.service.alerts
    result, alerts = asyncio.run(scenario())
    assert result == 3
    assert alerts == [("sensor_value.peaches", {"value_raw": 3, "value_cal": 6})]


def test_without_log_on_set_a_set_sends_nothing() -> None:
    async def scenario() -> list[tuple[str, Any]]:
        endpoint = store(get_on_set=True)
        assert await endpoint.handle("set", "", {"values": [3]}) == {"value_raw": 3}
        return endpoint.service.alerts
    assert asyncio.run(scenario()) == []


def test_log_loop_logs_every_interval_and_stops() -> None:
    async def scenario() -> list[Any]:
        endpoint = store(log_interval=0.02, max_absolute_change=0.5)
        alerts = endpoint.service.alerts
        await endpoint.start()
        while not alerts:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.07)  # unchanged for a few intervals: nothing more
        assert len(alerts) == 1
        endpoint.value = 9.0
        while len(alerts) < 2:
            await asyncio.sleep(0.01)
        await endpoint.stop()
        count = len(endpoint.service.alerts)
        await asyncio.sleep(0.05)
        assert len(endpoint.service.alerts) == count  # stopped
        return [payload["value_raw"] for _, payload in endpoint.service.alerts]
    assert asyncio.run(asyncio.wait_for(scenario(), 5)) == [1.0, 9.0]


aio_pika = pytest.importorskip("aio_pika")


def mesh(node: RabbitNode) -> Mesh:
    return Mesh(broker="127.0.0.1", broker_port=node.port, heartbeat_interval_s=3600,
                max_connection_attempts=1)


async def capture_alert(url: str, key: str, timeout: float = 10) -> tuple[Any, Any]:
    """A queue bound to ``key`` on the alerts exchange; returns (queue, connection)."""
    connection = await aio_pika.connect(url, timeout=10)
    channel = await connection.channel()
    alerts = await channel.declare_exchange("alerts", aio_pika.ExchangeType.TOPIC)
    queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
    await queue.bind(alerts, routing_key=key)
    return queue, connection


def test_log_interval_publishes_sensor_value_alerts(rabbitmq: RabbitNode) -> None:
    name = f"logged_{uuid.uuid4().hex[:8]}"

    async def scenario() -> Any:
        queue, connection = await capture_alert(rabbitmq.url, f"sensor_value.{name}")
        async with connection:
            endpoint = KeyValueStore(name, initial_value=0.75, calibration="{}*2",
                                     log_interval=0.1)
            service = Service(f"svc_{name}", [endpoint], mesh=mesh(rabbitmq))
            await service.start()
            try:
                async with asyncio.timeout(10), queue.iterator(no_ack=True) as messages:
                    async for message in messages:
                        return message
            finally:
                await service.stop()
    message = asyncio.run(scenario())
    assert message.routing_key == f"sensor_value.{name}"
    assert message.headers["message_type"] == 4  # an alert
    assert json.loads(message.body) == {"value_raw": 0.75, "value_cal": 1.5}





class Collector(AlertConsumer):
    """An AlertConsumer as meant to be used: ``on_alert`` overridden (a coroutine here)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def on_alert(self, routing_key: str, payload: Any, message: Any) -> None:
        await self.received.put((routing_key, payload))


def test_alert_consumer_receives_alerts_on_its_keys(rabbitmq: RabbitNode) -> None:
    tag = uuid.uuid4().hex[:8]

    async def scenario() -> tuple[str, Any]:
        consumer = Collector(f"consumer_{tag}", alert_keys=[f"watched_{tag}.#"],
                             mesh=mesh(rabbitmq))
        await consumer.start()
        try:
            connection = await aio_pika.connect(rabbitmq.url, timeout=10)
            async with connection:
                channel = await connection.channel()
                alerts = await channel.declare_exchange("alerts", aio_pika.ExchangeType.TOPIC)
                headers = {"message_type": 4, "timestamp": "2026-01-01T00:00:00.000Z",
                           "sender_info": {"exe": "raw-test", "hostname": "h", "username": "u",
                                           "service_name": "", "versions": {}}}

                def alert(payload: Any) -> Any:
                    return aio_pika.Message(json.dumps(payload).encode(),
                                            content_encoding="application/json",
                                            message_id=f"{uuid.uuid4()}/0/1", headers=headers)
                await alerts.publish(alert({"not": "bound"}), routing_key=f"other_{tag}.x")
                await alerts.publish(alert({"temperature": 4.2}),
                                     routing_key=f"watched_{tag}.fridge")
                async with asyncio.timeout(10):
                    return await consumer.received.get()
        finally:
            await consumer.stop()
    routing_key, payload = asyncio.run(scenario())
    assert routing_key == f"watched_{tag}.fridge"
    assert payload == {"temperature": 4.2}
