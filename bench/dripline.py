"""Round trips per second and latency percentiles of dripline ``get`` on a KeyValueStore,
against a plain aio-pika RPC server and client (the floor the broker allows), in one run.

Both servers run as their own processes on a RabbitMQ node this script starts (or ``--url``);
rounds are interleaved and medians reported.  Run with the venv's interpreter:

    .venv/bin/python bench/dripline.py [--requests 2000] [--rounds 3] [--url amqp://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

BASELINE = """
import asyncio, sys, aio_pika
async def main():
    connection = await aio_pika.connect(sys.argv[1])
    channel = await connection.channel()
    exchange = await channel.declare_exchange("requests", aio_pika.ExchangeType.TOPIC)
    queue = await channel.declare_queue("baseline", exclusive=True, auto_delete=True)
    await queue.bind(exchange, routing_key="baseline.#")
    async def answer(message):
        await message.ack()
        await exchange.publish(aio_pika.Message(b'{"value_raw": 0.75}',
                               correlation_id=message.correlation_id),
                               routing_key=message.reply_to)
    await queue.consume(answer)
    print("ready", flush=True)
    await asyncio.Future()
asyncio.run(main())
"""


async def plain_client(url: str, requests: int, concurrency: int) -> list[float]:
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange("requests", aio_pika.ExchangeType.TOPIC)
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=queue.name)
        waiting: dict[str, asyncio.Future[Any]] = {}

        async def on_reply(message: Any) -> None:
            future = waiting.pop(message.correlation_id, None)
            if future is not None:
                future.set_result(json.loads(message.body))
        await queue.consume(on_reply, no_ack=True)

        async def one() -> float:
            correlation = str(uuid.uuid4())
            future = asyncio.get_running_loop().create_future()
            waiting[correlation] = future
            start = time.perf_counter()
            await exchange.publish(aio_pika.Message(b"{}", correlation_id=correlation,
                                                    reply_to=queue.name),
                                   routing_key="baseline")
            await future
            return time.perf_counter() - start
        return await _drive(one, requests, concurrency)


async def dripline_client(url: str, requests: int, concurrency: int) -> list[float]:
    from dropins.dripline.client import Client
    from dropins.dripline.mesh import Mesh

    host_port = url.rsplit("@", 1)[1].strip("/")
    host, port = host_port.split(":")
    async with Client(Mesh(broker=host, broker_port=int(port))) as client:
        async def one() -> float:
            start = time.perf_counter()
            reply = await client.request("get", "peaches")
            assert reply.return_code == 0, reply.return_message
            return time.perf_counter() - start
        return await _drive(one, requests, concurrency)


async def _drive(one: Any, requests: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    per_worker = requests // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            latencies.append(await one())
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.append(-elapsed)  # the total, marked by its sign
    return latencies


def summarize(samples: list[float]) -> tuple[float, float, float, float]:
    total = -min(samples)
    latencies = sorted(sample for sample in samples if sample >= 0)
    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
    return len(latencies) / total, pct(0.5), pct(0.9), pct(0.99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url")
    args = parser.parse_args()
    node = None
    url = args.url
    if url is None:
        from _rabbitmq import RabbitNode

        node = RabbitNode(Path(tempfile.mkdtemp(prefix="dl-bench-")), "bench")
        node.start()
        url = node.url
    host_port = url.rsplit("@", 1)[1].strip("/")
    host, port = host_port.split(":")
    folder = Path(tempfile.mkdtemp(prefix="dl-bench-cfg-"))
    (folder / "store.yaml").write_text(
        f"name: bench\ndripline_mesh: {{broker: {host}, broker_port: {port}}}\n"
        "endpoints: [{name: peaches, module: KeyValueStore, initial_value: 0.75}]\n")
    servers = [subprocess.Popen([sys.executable, "-m", "dropins", "dl-serve", "-c",
                                 str(folder / "store.yaml")], stderr=subprocess.PIPE, text=True),
               subprocess.Popen([sys.executable, "-c", BASELINE, url], stdout=subprocess.PIPE,
                                text=True)]
    try:
        assert servers[0].stderr is not None and servers[1].stdout is not None
        while "ready:" not in servers[0].stderr.readline():
            pass
        servers[1].stdout.readline()
        results: dict[tuple[str, int], list[tuple[float, float, float, float]]] = {}
        for _ in range(args.rounds):
            for concurrency in (1, 16):
                for name, client in (("aio-pika RPC", plain_client),
                                     ("dropins dripline", dripline_client)):
                    samples = asyncio.run(client(url, args.requests, concurrency))
                    results.setdefault((name, concurrency), []).append(summarize(samples))
        print(f"{'implementation':<18} {'clients':>7} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} "
              f"{'p99 ms':>7} {'vs aio-pika':>11}")
        for concurrency in (1, 16):
            floor = statistics.median(r[0] for r in results[("aio-pika RPC", concurrency)])
            for name in ("aio-pika RPC", "dropins dripline"):
                runs = results[(name, concurrency)]
                rate, p50, p90, p99 = (statistics.median(r[i] for r in runs) for i in range(4))
                print(f"{name:<18} {concurrency:>7} {rate:>8.0f} {p50:>7.2f} {p90:>7.2f} "
                      f"{p99:>7.2f} {rate / floor:>10.2f}x")
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        if node is not None:
            node.stop()


if __name__ == "__main__":
    main()
