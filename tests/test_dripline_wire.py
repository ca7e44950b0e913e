"""dl-serve on a real RabbitMQ node, spoken to with plain aio-pika (not the project's client):
the headers dripline-cpp sends and expects, chunking, lockout, unknown routing keys, a raising
handler (999) and a broker restart in the middle of a run."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _rabbitmq import RabbitNode, start_node
from _runner_helpers import Dropins
from conftest import get_free_port, write_tree

aio_pika = pytest.importorskip("aio_pika")

FAULTY = {
    "dripline/extensions/__init__.py":
        "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n",
    "dripline/extensions/faulty/__init__.py": '''
        """An endpoint whose sensor is broken."""
        from dropins.dripline import Entity

        __all__ = ["Faulty"]
        version = "0.0.1"


        class Faulty(Entity):
            def read(self):
                raise RuntimeError("sensor on fire")
        ''',
}


def service_yaml(path: Path, name: str, port: int, **mesh: Any) -> Path:
    settings = "".join(f"  {key}: {value}\n" for key, value in mesh.items())
    path.write_text(f"""name: {name}
dripline_mesh:
  broker: 127.0.0.1
  broker_port: {port}
  heartbeat_interval_s: 1
{settings}endpoints:
  - name: {name}_store
    module: KeyValueStore
    initial_value: 0.75
  - name: {name}_boom
    module: Faulty
""")
    return path


def serve(config: Path, extensions: Path, *runner: str) -> Dropins:
    server = Dropins(*runner, "dl-serve", "-c", str(config), env={"PYTHONPATH": str(extensions)})
    server.ready(timeout=60)
    return server


@pytest.fixture(scope="module")
def extensions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("ext"), FAULTY)


@pytest.fixture(scope="module")
def served(rabbitmq: RabbitNode, extensions: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dropins]:
    config = service_yaml(tmp_path_factory.mktemp("cfg") / "wire.yaml", "wire", rabbitmq.port,
                          max_payload_size=1000)
    server = serve(config, extensions)
    with server:
        yield server
        server.stop()


async def raw_request(url: str, routing_key: str, operation: int, payload: Any, *,
                      specifier: str = "", lockout_key: str = "", chunk: int = 0,
                      timeout: float = 20) -> tuple[dict[str, Any], Any, list[Any]]:
    """Publish a request the way dripline-cpp does; return (headers, payload, raw replies)."""
    connection = await aio_pika.connect(url, timeout=20)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.declare_exchange("requests", aio_pika.ExchangeType.TOPIC)
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=queue.name)
        correlation = str(uuid.uuid4())
        body = json.dumps(payload)
        size = chunk or len(body) or 1
        pieces = [body[i:i + size] for i in range(0, len(body), size)]
        base = str(uuid.uuid4())
        headers = {"message_type": 3, "message_operation": operation, "specifier": specifier,
                   "lockout_key": lockout_key, "timestamp": "2026-01-01T00:00:00.000Z",
                   "sender_info": {"exe": "raw-test", "hostname": "h", "username": "u",
                                   "service_name": "", "versions": {}}}
        for index, piece in enumerate(pieces):
            await exchange.publish(aio_pika.Message(
                piece.encode(), content_encoding="application/json", correlation_id=correlation,
                message_id=f"{base}/{index}/{len(pieces)}", reply_to=queue.name,
                headers=headers), routing_key=routing_key, mandatory=True)
        replies: list[Any] = []
        async with asyncio.timeout(timeout), queue.iterator(no_ack=True) as messages:
            async for message in messages:
                replies.append(message)
                total = int(message.message_id.split("/")[2])
                if len(replies) == total:
                    break
        replies.sort(key=lambda m: int(m.message_id.split("/")[1]))
        reply_payload = json.loads(b"".join(m.body for m in replies))
        return dict(replies[0].headers), reply_payload, replies


def test_reply_headers_follow_dripline_cpp(served: Dropins, rabbitmq: RabbitNode) -> None:
    headers, payload, replies = asyncio.run(raw_request(rabbitmq.url, "wire_store", 1, {}))
    reply = replies[0]
    assert payload == {"value_raw": 0.75}
    assert reply.content_encoding == "application/json"
    assert reply.message_id.count("/") == 2 and reply.message_id.endswith("/0/1")
    assert headers["message_type"] == 2
    assert headers["return_code"] == 0
    assert headers["return_message"] == "success"
    assert "T" in headers["timestamp"]
    info = headers["sender_info"]
    assert info["service_name"] == "wire"
    assert set(info["versions"]) >= {"dropins"}


def test_50_kB_payload_is_chunked_both_ways(served: Dropins, rabbitmq: RabbitNode) -> None:
    big = "x" * 50_000
    headers, payload, _ = asyncio.run(raw_request(rabbitmq.url, "wire_store", 0,
                                                  {"values": [big]}, chunk=7000))
    assert headers["return_code"] == 0, headers
    headers, payload, replies = asyncio.run(raw_request(rabbitmq.url, "wire_store", 1, {}))
    assert payload == {"value_raw": big}
    assert len(replies) > 50  # max_payload_size 1000 characters
    assert len({reply.message_id.split("/")[0] for reply in replies}) == 1
    asyncio.run(raw_request(rabbitmq.url, "wire_store", 0, {"values": [0.75]}))


def test_lockout(served: Dropins, rabbitmq: RabbitNode) -> None:
    url = rabbitmq.url
    headers, payload, _ = asyncio.run(raw_request(url, "wire", 9, {}, specifier="lock"))
    assert headers["return_code"] == 0
    key = payload["key"]
    try:
        headers, _, _ = asyncio.run(raw_request(url, "wire_store", 0, {"values": [5]}))
        assert headers["return_code"] == 307
        headers, _, _ = asyncio.run(raw_request(url, "wire_store", 0, {"values": [5]},
                                                lockout_key="not-a-uuid"))
        assert headers["return_code"] == 308
        headers, _, _ = asyncio.run(raw_request(url, "wire_store", 1, {}))
        assert headers["return_code"] == 0  # reading stays open
        headers, _, _ = asyncio.run(raw_request(url, "wire_store", 0, {"values": [5]},
                                                lockout_key=key))
        assert headers["return_code"] == 0
        headers, _, _ = asyncio.run(raw_request(url, "wire", 9, {}, specifier="lock",
                                                lockout_key=key))
        assert headers["return_code"] == 200  # already locked, as dripline-cpp answers
    finally:
        headers, _, _ = asyncio.run(raw_request(url, "wire", 9, {"force": True},
                                                specifier="unlock"))
    assert headers["return_code"] == 0
    headers, _, _ = asyncio.run(raw_request(url, "wire", 9, {}, specifier="unlock"))
    assert headers["return_code"] == 1  # no action: not locked
    asyncio.run(raw_request(url, "wire_store", 0, {"values": [0.75]}))


def test_unknown_endpoint_is_returned_by_the_broker(served: Dropins,
                                                    rabbitmq: RabbitNode) -> None:
    with pytest.raises(aio_pika.exceptions.DeliveryError):
        asyncio.run(raw_request(rabbitmq.url, "nobody_here", 1, {}))


def test_raising_handler_is_999_and_the_service_lives(served: Dropins,
                                                      rabbitmq: RabbitNode) -> None:
    headers, _, _ = asyncio.run(raw_request(rabbitmq.url, "wire_boom", 1, {}))
    assert headers["return_code"] == 999
    assert "sensor on fire" in headers["return_message"]
    headers, _, _ = asyncio.run(raw_request(rabbitmq.url, "wire_store", 9, {},
                                            specifier="no_such_command"))
    assert headers["return_code"] == 306
    headers, _, _ = asyncio.run(raw_request(rabbitmq.url, "wire_store", 1, {},
                                            specifier="value"))
    assert headers["return_code"] == 0
    headers, _, _ = asyncio.run(raw_request(rabbitmq.url, "wire_store", 9, {"values": [1, 2]},
                                            specifier="on_get"))
    assert headers["return_code"] == 304
    headers, payload, _ = asyncio.run(raw_request(rabbitmq.url, "wire", 9, {}, specifier="ping"))
    assert headers["return_code"] == 0 and payload == {"message": "Hello, raw-test"}
    assert served.process.poll() is None


def test_heartbeats_are_alerts(served: Dropins, rabbitmq: RabbitNode) -> None:
    async def one_heartbeat() -> Any:
        connection = await aio_pika.connect(rabbitmq.url, timeout=20)
        async with connection:
            channel = await connection.channel()
            alerts = await channel.declare_exchange("alerts", aio_pika.ExchangeType.TOPIC)
            queue = await channel.declare_queue("", exclusive=True)
            await queue.bind(alerts, routing_key="heartbeat.wire")
            async with asyncio.timeout(20), queue.iterator(no_ack=True) as messages:
                async for message in messages:
                    return message
    message = asyncio.run(one_heartbeat())
    assert message.headers["message_type"] == 4
    assert json.loads(message.body)["name"] == "wire"


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=20) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_broker_restart_keeps_state(extensions: Path, tmp_path: Path) -> None:
    node = start_node(tmp_path / "node", "restart")
    try:
        config = service_yaml(tmp_path / "restart.yaml", "restart", node.port)
        health = get_free_port()
        with serve(config, extensions, "--health", f"tcp:{health}:interface=127.0.0.1"
                   ) as server:
            headers, _, _ = asyncio.run(raw_request(node.url, "restart_store", 0,
                                                    {"values": [42]}))
            assert headers["return_code"] == 0
            assert readyz(health) == 200
            node.stop()
            server.wait_for_line(r"connection lost", timeout=60)
            assert readyz(health) == 503
            node.start()
            server.wait_for_line(r"broker: reconnected", timeout=90)
            assert readyz(health) == 200
            headers, payload, _ = asyncio.run(raw_request(node.url, "restart_store", 1, {}))
            assert payload == {"value_raw": 42}
            assert server.process.poll() is None
            assert server.stop() == 0
    finally:
        node.stop()
