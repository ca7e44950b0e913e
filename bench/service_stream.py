"""Benchmark: the cost of StreamServerService against the servers it is built on, and Twisted.

Each server runs in its own process and echoes what it receives.  Two workloads, each run
``--runs`` times per server (median reported), servers interleaved so that machine noise hits
all of them alike:

* ``round trips``: ``--clients`` connections each send ``--trips`` 64-byte messages, one at a
  time, waiting for the echo (the per-message path: protocol callbacks, no tracking cost);
* ``connections``: ``--connections`` connect/send/receive/close cycles, 10 at a time (the
  per-connection path, where StreamServerService adds its connection tracking).

``--loop uvloop`` runs the asyncio and dropins servers on uvloop (Twisted keeps its reactor):
dropins accepts connections itself on both loops (``dropins.service.accepting``), so the
``connections`` ratio shows what that costs against the loop's own ``create_server``.

Run:  unset PYTHONDONTWRITEBYTECODE; /work/main/.venv/bin/python bench/service_stream.py
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

SERVERS = {
    "asyncio protocol": "asyncio-protocol",
    "asyncio streams": "asyncio-streams",
    "dropins protocol": "dropins-protocol",
    "dropins handler": "dropins-handler",
    "twisted protocol": "twisted",
}
BASELINE = "asyncio protocol"

SERVER_CODE = r'''
import asyncio, sys
kind, loop_name = sys.argv[1], sys.argv[2]

class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.transport.write(data)

async def echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()

async def wait_for_stdin_eof():
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

async def main():
    if kind.startswith("dropins"):
        from dropins.service import Application, StreamServerService
        app = Application(shutdown_timeout=1)
        service = StreamServerService("tcp:0:interface=127.0.0.1",
                                      Echo if kind == "dropins-protocol" else echo)
        service.set_parent(app)
        app.privileged_start()
        await app.start()
        port = int(service.addresses[0].rsplit(":", 1)[1])
        print(port, flush=True)
        await wait_for_stdin_eof()
        await app.stop()
        return
    loop = asyncio.get_running_loop()
    if kind == "asyncio-protocol":
        server = await loop.create_server(Echo, "127.0.0.1", 0)
    else:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await wait_for_stdin_eof()
    server.close()

if kind == "twisted":
    import threading
    from twisted.internet import protocol, reactor

    class TwistedEcho(protocol.Protocol):
        def dataReceived(self, data):
            self.transport.write(data)

    factory = protocol.Factory.forProtocol(TwistedEcho)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    print(port.getHost().port, flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), reactor.callFromThread(reactor.stop)),
                     daemon=True).start()
    reactor.run()
elif loop_name == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
'''


class Server:
    def __init__(self, kind: str, loop: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", SERVER_CODE, kind, loop],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def round_trips(port: int, clients: int, trips: int) -> float:
    message = b"x" * 64

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(trips):
            writer.write(message)
            await reader.readexactly(len(message))
        writer.close()

    began = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(client() for _ in range(clients))), 120)
    return clients * trips / (time.perf_counter() - began)


async def connections(port: int, count: int) -> float:
    gate = asyncio.Semaphore(10)

    async def once() -> None:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"ping")
            await reader.readexactly(4)
            writer.close()
            await writer.wait_closed()

    began = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(once() for _ in range(count))), 120)
    return count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--trips", type=int, default=500)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="the event loop of the asyncio and dropins servers")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5, for a meaningful median")

    results: dict[str, dict[str, list[float]]] = {
        name: {"round trips": [], "connections": []} for name in SERVERS}
    servers = {name: Server(kind, args.loop) for name, kind in SERVERS.items()}
    try:
        for _ in range(args.runs):
            for name, server in servers.items():
                results[name]["round trips"].append(
                    asyncio.run(round_trips(server.port, args.clients, args.trips)))
                results[name]["connections"].append(
                    asyncio.run(connections(server.port, args.connections)))
    finally:
        for server in servers.values():
            server.close()

    medians = {name: {work: statistics.median(values) for work, values in by_work.items()}
               for name, by_work in results.items()}
    base = medians[BASELINE]
    print(f"echo servers on {args.loop}, median of {args.runs} runs "
          f"({args.clients} clients x {args.trips} round trips; {args.connections} connections)")
    print(f"{'server':<18} {'round trips/s':>14} {'ratio':>6} {'connections/s':>14} {'ratio':>6}")
    for name, values in medians.items():
        trips, conns = values["round trips"], values["connections"]
        print(f"{name:<18} {trips:>14,.0f} {trips / base['round trips']:>6.2f} "
              f"{conns:>14,.0f} {conns / base['connections']:>6.2f}")


if __name__ == "__main__":
    main()
