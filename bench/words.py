"""Messages per second fanned out to 100 and 1000 clients in one channel, and memory per idle
client, for ``dropins words`` against the Debian ngircd in the same run.

Each server runs as its own process on a free loopback port.  ``--senders`` clients of the
channel share ``--messages`` PRIVMSGs; the time runs until every client has received every
message it did not send.  Memory is the server's RSS growth divided by the clients connected.
Rounds alternate between the servers; medians are reported.  Run with the venv's interpreter:

    .venv/bin/python bench/words.py [--clients 100 1000] [--messages 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def wait_port(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise SystemExit(f"no server on port {port} within 15 s")


def start(kind: str, folder: Path, port: int) -> subprocess.Popen[bytes]:
    if kind == "words":
        command = [sys.executable, "-m", "dropins", "words", "--irc",
                   f"tcp:{port}:interface=127.0.0.1", "--db", str(folder / "bench.db"),
                   "--flood-rate", "1000000", "--send-queue", str(64 << 20)]
    else:
        config = folder / "ngircd.conf"
        config.write_text(f"[Global]\nName = irc.bench\nInfo = bench\nListen = 127.0.0.1\n"
                          f"Ports = {port}\nPidFile = {folder}/ngircd.pid\n"
                          "[Limits]\nMaxConnectionsIP = 0\nMaxJoins = 0\nMaxNickLength = 16\n"
                          "[Options]\nPAM = no\nIdent = no\nDNS = no\n")
        command = [shutil.which("ngircd") or "/usr/sbin/ngircd", "-n", "-f", str(config)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)


async def client(port: int, nick: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(f"NICK {nick}\r\nUSER {nick} 0 * :bench\r\nJOIN #bench\r\n".encode())
    while True:
        line = await asyncio.wait_for(reader.readline(), 20)
        if not line:
            raise SystemExit(f"{nick}: the server closed the connection")
        if b" 366 " in line:
            return reader, writer


async def one_round(kind: str, clients: int, messages: int,
                    senders: int) -> tuple[float, float]:
    from conftest import get_free_port

    with tempfile.TemporaryDirectory() as folder:
        port = get_free_port()
        server = start(kind, Path(folder), port)
        try:
            await wait_port(port)
            await asyncio.sleep(0.2)
            before = rss_kb(server.pid)
            peers = []
            for index in range(clients):
                try:
                    peers.append(await client(port, f"b{index}"))
                except (TimeoutError, OSError) as error:
                    raise SystemExit(f"{kind} did not take client {index + 1} of {clients}: "
                                     f"{error!r}") from None
            memory = (rss_kb(server.pid) - before) / clients
            per_sender = messages // senders
            expected = [messages - (per_sender if i < senders else 0) for i in range(clients)]

            async def receive(index: int) -> None:
                reader = peers[index][0]
                seen = 0
                while seen < expected[index]:
                    line = await reader.readline()
                    if not line:
                        raise SystemExit(f"{kind}: client {index} was disconnected")
                    if b" PRIVMSG #bench " in line:
                        seen += 1
                    elif line.startswith(b"PING"):
                        peers[index][1].write(b"PONG" + line[4:])

            started = time.perf_counter()
            tasks = [asyncio.create_task(receive(i)) for i in range(clients)]
            for i in range(senders):
                peers[i][1].write(b"".join(f"PRIVMSG #bench :message {i} {m}\r\n".encode()
                                           for m in range(per_sender)))
            await asyncio.wait_for(asyncio.gather(*tasks), 600)
            elapsed = time.perf_counter() - started
            for _, writer in peers:
                writer.close()
            return messages * (clients - 1) / elapsed, memory
        finally:
            server.terminate()
            server.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--servers", nargs="+", default=["words", "ngircd"],
                        choices=["words", "ngircd"])
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    have_ngircd = bool(shutil.which("ngircd")) or Path("/usr/sbin/ngircd").exists()
    kinds = [kind for kind in args.servers if kind == "words" or have_ngircd]
    print("| clients | server | deliveries/s (median) | ratio vs ngircd | KiB per idle client |")
    print("|---|---|---|---|---|")
    for clients in args.clients:
        results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
        failed: dict[str, str] = {}
        for _ in range(args.rounds):
            for kind in kinds:
                if kind in failed:
                    continue
                try:
                    results[kind].append(asyncio.run(one_round(kind, clients, args.messages,
                                                               args.senders)))
                except SystemExit as error:
                    failed[kind] = str(error)
        for kind, reason in failed.items():
            print(f"| {clients} | {kind} | failed: {reason} | - | - |")
        medians = {kind: (statistics.median(r[0] for r in rows),
                          statistics.median(r[1] for r in rows))
                   for kind, rows in results.items() if rows and kind not in failed}
        reference = medians.get("ngircd", (0.0, 0.0))[0]
        for kind, (rate, memory) in medians.items():
            ratio = f"{rate / reference:.2f}" if reference else "-"
            print(f"| {clients} | {kind} | {rate:,.0f} | {ratio} | {memory:.1f} |", flush=True)


if __name__ == "__main__":
    main()
