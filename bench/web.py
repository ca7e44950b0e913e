"""Benchmark ``dropins web`` against ``twistd web``, ``python -m http.server`` and uvicorn.

Measured for each server, on the same files, on loopback:

* start-up: from spawning the process until its port accepts a connection;
* idle memory: VmRSS of the server process once it accepts (Linux /proc);
* requests/s for a 1 KiB and a 100 KiB file with ``wrk -t1 -c32``;
* requests/s for a WSGI hello-world (``--wsgi``; dropins and twistd only);
* WebSocket echo messages/s for an ASGI echo application, dropins against uvicorn (both of
  its WebSocket implementations): 8 connections, each sending 16 messages of 16 bytes and
  reading their 16 echoes, over and over (a client on raw sockets, so that the client's own
  cost stays small; no compression is offered).

Each figure is the median of ``--runs`` runs (default 5); servers are measured in turns, run
after run, so that a change in machine load affects them alike.  Every server logs its access
lines to a regular scratch file (dropins ``--logfile``, twistd ``-l``), except the
``--no-access-log`` row, shown to tell the server's cost from the logging's, and http.server,
whose lines go to stderr, sent to /dev/null.  (Never give twistd ``-l /dev/null``: it rotates
its log at 1 MB by renaming the file, and would rename the device itself away.)

Usage: ``.venv/bin/python bench/web.py [--runs 5] [--duration 3] [--skip-static]
[--skip-wsgi] [--skip-websocket]`` (needs ``wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

#: The scratch folder for the servers' log files (set by main(), removed at the end).
LOGS = Path(".")

PYTHON = sys.executable
BIN = Path(PYTHON).parent
HELLO_WSGI = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, world!"]
'''

ECHO_ASGI = '''
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text"),
                    "bytes": message.get("bytes")})
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(cwd: Path) -> dict[str, str]:
    """Byte-code caches on (start-up as users see it); the work folder importable (--wsgi)."""
    env = {key: value for key, value in os.environ.items()
           if key != "PYTHONDONTWRITEBYTECODE" and not key.startswith("DROPINS_")}
    env["PYTHONPATH"] = str(cwd)
    return env


Command = Callable[[Path, int], list[str]]

STATIC: dict[str, Command] = {
    "dropins web": lambda site, port: [
        PYTHON, "-m", "dropins", "--logfile", str(LOGS / "dropins.log"), "web",
        "--path", str(site), "--listen", f"tcp:{port}:interface=127.0.0.1"],
    "dropins web (uvloop)": lambda site, port: [
        PYTHON, "-m", "dropins", "--logfile", str(LOGS / "dropins-uvloop.log"), "--loop",
        "uvloop", "web", "--path", str(site), "--listen", f"tcp:{port}:interface=127.0.0.1"],
    "dropins web --no-access-log": lambda site, port: [
        PYTHON, "-m", "dropins", "web", "--path", str(site), "--no-access-log",
        "--listen", f"tcp:{port}:interface=127.0.0.1"],
    "twistd web": lambda site, port: [
        str(BIN / "twistd"), "-n", "-l", str(LOGS / "twistd.log"), "--pidfile=", "web",
        "--path", str(site), "--listen", f"tcp:{port}:interface=127.0.0.1"],
    "python -m http.server": lambda site, port: [PYTHON, "-m", "http.server", "-b", "127.0.0.1",
                                                 "-d", str(site), str(port)],
}
WSGI: dict[str, Command] = {
    "dropins web --wsgi": lambda app, port: [
        PYTHON, "-m", "dropins", "--logfile", str(LOGS / "dropins-wsgi.log"), "web", "--wsgi",
        "hello.app", "--listen", f"tcp:{port}:interface=127.0.0.1"],
    "twistd web --wsgi": lambda app, port: [
        str(BIN / "twistd"), "-n", "-l", str(LOGS / "twistd-wsgi.log"), "--pidfile=", "web",
        "--wsgi", "hello.app", "--listen", f"tcp:{port}:interface=127.0.0.1"],
}


def _uvicorn(ws: str) -> Command:
    return lambda app, port: [PYTHON, "-m", "uvicorn", "echo:app", "--port", str(port), "--ws",
                              ws, "--log-level", "warning", "--no-access-log"]


WEBSOCKET: dict[str, Command] = {
    "dropins web --asgi": lambda app, port: [
        PYTHON, "-m", "dropins", "web", "--asgi", "echo.app", "--no-access-log",
        "--listen", f"tcp:{port}:interface=127.0.0.1"],
    "dropins web --asgi (uvloop)": lambda app, port: [
        PYTHON, "-m", "dropins", "--loop", "uvloop", "web", "--asgi", "echo.app",
        "--no-access-log", "--listen", f"tcp:{port}:interface=127.0.0.1"],
    "uvicorn --ws websockets": _uvicorn("websockets"),
    "uvicorn --ws wsproto": _uvicorn("wsproto"),
}


def why_not_started(command: list[str], cwd: Path) -> str:
    """Run a server that failed to start once more, briefly, to show its error output."""
    try:
        result = subprocess.run(command, cwd=cwd, env=child_env(cwd), capture_output=True,
                                text=True, timeout=5)
        return result.stderr[-2000:]
    except subprocess.TimeoutExpired as expired:
        return (expired.stderr or b"")[-2000:].decode(errors="replace")


@contextlib.contextmanager
def running(command: list[str], port: int, cwd: Path) -> Iterator[tuple[subprocess.Popen[bytes],
                                                                          float]]:
    """Start a server; yield it with the seconds it took until its port accepted."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=child_env(cwd), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = started + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.perf_counter() > deadline:
                    tail = why_not_started(command, cwd)
                    raise RuntimeError(f"server did not start: {' '.join(command)}\n{tail}"
                                       ) from None
                time.sleep(0.002)
        yield process, time.perf_counter() - started
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def rss_mib(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else float("nan")


def wrk(url: str, duration: int) -> float:
    result = subprocess.run(["wrk", "-t1", "-c32", f"-d{duration}s", url], capture_output=True,
                            text=True, timeout=duration + 30)
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if not match or errors:
        raise RuntimeError(f"wrk failed for {url}:\n{result.stdout}{result.stderr}")
    return float(match.group(1))


def measure(commands: dict[str, Command], target: Path, cwd: Path, paths: list[str],
            runs: int, duration: int) -> dict[str, dict[str, list[float]]]:
    figures: dict[str, dict[str, list[float]]] = {
        name: {key: [] for key in ("start", "rss", *paths)} for name in commands}
    for command in commands.values():  # warm-up: byte-code caches, page cache
        port = free_port()
        with running(command(target, port), port, cwd):
            pass
    for run in range(runs):
        for name, command in commands.items():
            port = free_port()
            with running(command(target, port), port, cwd) as (process, startup):
                figures[name]["start"].append(startup * 1000)
                time.sleep(0.3)
                figures[name]["rss"].append(rss_mib(process.pid))
                for path in paths:
                    figures[name][path].append(wrk(f"http://127.0.0.1:{port}{path}", duration))
        print(f"  run {run + 1}/{runs} done", file=sys.stderr)
    return figures


_HANDSHAKE = (b"GET / HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
_MESSAGE = b"hello, websocket"  # 16 bytes
_MASK = b"\x01\x02\x03\x04"
#: A masked text frame from the client, and the unmasked frame the echo comes back as.
_CLIENT_FRAME = bytes([0x81, 0x80 | len(_MESSAGE)]) + _MASK + bytes(
    byte ^ _MASK[index % 4] for index, byte in enumerate(_MESSAGE))
_SERVER_FRAME = bytes([0x81, len(_MESSAGE)]) + _MESSAGE


async def _echo_connection(port: int, until: float, depth: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_HANDSHAKE)
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"WebSocket handshake refused: {head!r}")
    batch, answer = _CLIENT_FRAME * depth, _SERVER_FRAME * depth
    count = 0
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        writer.write(batch)
        if await reader.readexactly(len(answer)) != answer:
            raise RuntimeError("the echo came back wrong")
        count += depth
    writer.close()
    return count


def websocket_echo_rate(port: int, duration: int, connections: int = 8,
                        depth: int = 16) -> float:
    """Echoed messages per second over ``connections`` WebSockets (see the docstring)."""
    async def run() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        counts = await asyncio.gather(*(_echo_connection(port, started + duration, depth)
                                        for _ in range(connections)))
        return sum(counts) / (loop.time() - started)
    return asyncio.run(run())


def measure_websocket(commands: dict[str, Command], cwd: Path, runs: int,
                      duration: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in commands}
    for run in range(runs):
        for name, command in commands.items():
            port = free_port()
            with running(command(cwd, port), port, cwd):
                rates[name].append(websocket_echo_rate(port, duration))
        print(f"  run {run + 1}/{runs} done", file=sys.stderr)
    return rates


def websocket_table(rates: dict[str, list[float]], reference: str, baseline: str) -> str:
    medians = {name: statistics.median(values) for name, values in rates.items()}
    lines = ["WebSocket echo (8 connections, 16 messages of 16 bytes in flight on each)",
             "| server | messages/s | x |", "|---|---|---|"]
    for name, value in medians.items():
        marker = " **" if name == reference else ""
        lines.append(f"| {name}{marker} | {value:.0f} | {value / medians[baseline]:.2f} |")
    lines.append(f"(medians; ratios against {baseline}, as 'times as many')")
    return "\n".join(lines)


def table(title: str, figures: dict[str, dict[str, list[float]]], paths: list[str],
          reference: str, baseline: str) -> str:
    medians = {name: {key: statistics.median(values) for key, values in data.items()}
               for name, data in figures.items()}
    base = medians[baseline]
    columns = ["start ms", "x faster", "idle MiB"]
    for path in paths:
        columns += [f"{path} req/s", "x"]
    lines = [title, "| server | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for name, values in medians.items():
        cells = [f"{values['start']:.0f}", f"{base['start'] / values['start']:.2f}",
                 f"{values['rss']:.1f}"]
        for path in paths:
            cells += [f"{values[path]:.0f}", f"{values[path] / base[path]:.2f}"]
        marker = " **" if name == reference else ""
        lines.append(f"| {name}{marker} | " + " | ".join(cells) + " |")
    lines.append(f"(medians; ratios against {baseline}: start-up as 'times faster', "
                 "requests/s as 'times as many')")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--skip-static", action="store_true")
    parser.add_argument("--skip-wsgi", action="store_true")
    parser.add_argument("--skip-websocket", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/web.py needs wrk (Debian: apt-get install wrk)", file=sys.stderr)
        return 1
    global LOGS
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        LOGS = work / "logs"
        LOGS.mkdir()
        site = work / "site"
        site.mkdir()
        (site / "1k.bin").write_bytes(os.urandom(1024))
        (site / "100k.bin").write_bytes(os.urandom(100 * 1024))
        (work / "hello.py").write_text(HELLO_WSGI)
        (work / "echo.py").write_text(ECHO_ASGI)
        print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {args.runs} runs, "
              f"wrk -t1 -c32 -d{args.duration:g}s", file=sys.stderr)
        if not args.skip_static:
            static = measure(STATIC, site, work, ["/1k.bin", "/100k.bin"], args.runs,
                             args.duration)
            print(table("Static files", static, ["/1k.bin", "/100k.bin"], "dropins web",
                        "twistd web"))
        if not args.skip_wsgi:
            wsgi = measure(WSGI, work, work, ["/"], args.runs, args.duration)
            print()
            print(table("WSGI hello-world", wsgi, ["/"], "dropins web --wsgi",
                        "twistd web --wsgi"))
        if not args.skip_websocket:
            rates = measure_websocket(WEBSOCKET, work, args.runs, args.duration)
            print()
            print(websocket_table(rates, "dropins web --asgi (uvloop)",
                                  "uvicorn --ws websockets"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
