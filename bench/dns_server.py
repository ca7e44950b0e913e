"""Benchmark: ``dropins dns`` against Twisted Names (``twistd dns --bindzone``), same zone.

Each server answers for one small zone on loopback.  A client in this process sends
``--queries`` A queries one at a time (each waits for its answer: latency-bound, what one
stub resolver sees) over UDP, and the same over TCP (500 queries a connection).  Each
measurement is repeated ``--runs`` times, the servers interleaved, and the table shows the
median queries a second and the ratio dropins / twisted.

The "new names" row asks for a different missing name every time (NXDOMAIN), which no answer
cache can serve: dropins caches recent answers by the query's bytes, so the other rows show
that cache at work.  Twisted Names' NXDOMAIN carries no SOA, which RFC 2308 asks for; dropins
renders one, name compression and all.  Every answer is checked (ID, rcode, number of answer
records), so a fast but wrong server cannot win.  dropins runs with a rate limit far above
the load (the default of 20 a second per client would, by design, slow this client).

Run:  unset PYTHONDONTWRITEBYTECODE
      .venv/bin/python bench/dns_server.py [--runs 5] [--queries 2000]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ZONE = """\
$TTL 3600
example.org.  IN SOA ns1.example.org. hostmaster.example.org. 1 3600 600 86400 300
example.org.  IN NS  ns1.example.org.
ns1.example.org. IN A 127.0.0.1
www.example.org. IN A 192.0.2.10
"""


def free_port() -> int:
    while True:
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(port)


def query(ident: int, name: str = "www.example.org") -> bytes:
    import dns.message

    message = dns.message.make_query(name, "A")
    message.id = ident
    return bytes(message.to_wire())


def check(wire: bytes, ident: int, missing: bool = False) -> None:
    """The answer to ``query``: one A record, or NXDOMAIN for a ``missing`` name."""
    import dns.message
    import dns.rcode

    reply = dns.message.from_wire(wire)
    wanted = dns.rcode.NXDOMAIN if missing else dns.rcode.NOERROR
    if reply.id != ident or reply.rcode() != wanted or len(reply.answer) != (0 if missing
                                                                             else 1):
        raise SystemExit(f"wrong answer: {reply}")


def wait_until_answering(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(0.5)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"server exited with {process.returncode}")
            client.sendto(query(1), ("127.0.0.1", port))
            try:
                check(client.recv(4096), 1)
                return
            except TimeoutError:
                continue
    raise SystemExit("server did not answer within 30 s")


def udp_rate(port: int, count: int, distinct: bool = False) -> float:
    """Sequential UDP queries: the same name each time, or a new missing name each time
    (``distinct``: no answer cache can help)."""
    names = [f"n{n}-{time.monotonic_ns()}.example.org" if distinct else "www.example.org"
             for n in range(count)]
    wires = [query(n % 65536, names[n]) for n in range(count)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        client.connect(("127.0.0.1", port))
        start = time.perf_counter()
        for n, wire in enumerate(wires):
            client.send(wire)
            check(client.recv(4096), n % 65536, missing=distinct)
        return count / (time.perf_counter() - start)


def tcp_rate(port: int, count: int, per_connection: int = 500) -> float:
    """Queries over TCP, a new connection every ``per_connection`` (dropins closes a
    connection after 1000 queries)."""
    wires = [query(n % 65536) for n in range(count)]
    start = time.perf_counter()
    for first in range(0, count, per_connection):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            reader = client.makefile("rb")
            for n in range(first, min(count, first + per_connection)):
                client.sendall(len(wires[n]).to_bytes(2, "big") + wires[n])
                size = int.from_bytes(reader.read(2), "big")
                check(reader.read(size), n % 65536)
    return count / (time.perf_counter() - start)


def start(name: str, zone: Path, port: int) -> subprocess.Popen[bytes]:
    if name == "dropins":
        command = [str(BIN / "dropins"), "dns", "--zone", f"example.org={zone}",
                   "--listen", f"udp:{port}:interface=127.0.0.1",
                   "--listen", f"tcp:{port}:interface=127.0.0.1", "--rate-limit", "1000000"]
    else:
        command = [str(BIN / "twistd"), "-n", "--pidfile=", "dns", "--bindzone", str(zone),
                   "-p", str(port), "-i", "127.0.0.1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=zone.parent)
    wait_until_answering(port, process)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        zone = Path(folder) / "example.org.zone"
        zone.write_text(ZONE)
        ports = {name: free_port() for name in ("dropins", "twisted")}
        servers = {name: start(name, zone, port) for name, port in ports.items()}
        try:
            for _ in range(max(1, args.runs)):
                for name in servers:
                    results.setdefault(("udp", name), []).append(
                        udp_rate(ports[name], args.queries))
                    results.setdefault(("udp, new names", name), []).append(
                        udp_rate(ports[name], args.queries, distinct=True))
                    results.setdefault(("tcp", name), []).append(
                        tcp_rate(ports[name], args.queries))
        finally:
            for process in servers.values():
                process.terminate()
                process.wait(10)
    print(f"{'queries':<16} {'dropins q/s':>12} {'twisted q/s':>12} {'dropins/twisted':>16}")
    for transport in ("udp", "udp, new names", "tcp"):
        ours = statistics.median(results[(transport, "dropins")])
        theirs = statistics.median(results[(transport, "twisted")])
        print(f"{transport:<16} {ours:>12.0f} {theirs:>12.0f} {ours / theirs:>16.2f}")


if __name__ == "__main__":
    main()
