"""Benchmark ``dropins --workers`` on a CPU-bound WSGI app against gunicorn and uvicorn, in one run.

The application burns about 1 ms of CPU per request (a fixed amount of work, calibrated once by
this script and written into the app, so that every server runs the same work).  Measured, on
loopback, with ``wrk -t1 -c16`` (one client thread: the machine has few cores to share):

* requests/s for ``dropins web --wsgi`` as one process, with ``--workers 1``, ``--workers 2``
  (sharing one socket) and ``--workers 2 --reuse-port`` (a socket each, balanced by the
  kernel); the goal: 2 workers give at least 1.6x of 1 worker on 2 cores; and for
  ``gunicorn -w 2 -k gthread`` and ``uvicorn --workers 2 --interface wsgi`` (uvicorn 0.54 still
  wraps a WSGI app in its own thread-pool middleware) on the same app;
* idle overhead of the process that supervises the workers (dropins' supervisor, gunicorn's
  arbiter, uvicorn's multiprocess manager): resident memory (VmRSS), and wake-ups per second,
  counted as the context switches of all its threads (/proc/PID/task/*/status) over
  ``--idle`` seconds with no client; and the resident memory of all its workers together.

Access logs are off everywhere (``--no-access-log``; gunicorn logs none by default).  Each
figure is the median of ``--runs`` runs; servers are measured in turns, run after run, so that
a change in machine load affects them alike.  Rows whose server cannot run (``--workers`` in a
dropins without it) say why instead of failing the whole run.

Usage: ``.venv/bin/python bench/workers.py [--runs 3] [--duration 5] [--idle 10]`` (needs wrk).
"""

from __future__ import annotations

import argparse
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

PYTHON = sys.executable
BIN = Path(PYTHON).parent

BURN_APP = '''
ROUNDS = {rounds}


def burn(rounds):
    total = 0
    for number in range(rounds):
        total += number * number
    return total


def app(environ, start_response):
    burn(ROUNDS)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\\n"]
'''

Command = Callable[[int], list[str]]


def dropins(*runner: str) -> Command:
    return lambda port: [PYTHON, "-m", "dropins", *runner, "web", "--wsgi", "burn:app",
                         "--no-access-log", "--listen", f"tcp:{port}:interface=127.0.0.1"]


SERVERS: dict[str, Command] = {
    "dropins web (one process)": dropins(),
    "dropins --workers 1 web": dropins("--workers", "1"),
    "dropins --workers 2 web": dropins("--workers", "2"),
    "dropins --workers 2 --reuse-port web": dropins("--workers", "2", "--reuse-port"),
    "gunicorn -w 2 -k gthread": lambda port: [
        str(BIN / "gunicorn"), "-w", "2", "-k", "gthread", "-b", f"127.0.0.1:{port}",
        "burn:app"],
    "uvicorn --workers 2 --interface wsgi": lambda port: [
        str(BIN / "uvicorn"), "--workers", "2", "--interface", "wsgi", "--no-access-log",
        "--host", "127.0.0.1", "--port", str(port), "burn:app"],
}
#: The rows whose top process only supervises workers (idle overhead is measured for these).
SUPERVISED = ("dropins --workers 2 web", "dropins --workers 2 --reuse-port web",
              "gunicorn -w 2 -k gthread", "uvicorn --workers 2 --interface wsgi")
#: The row the others' requests/s are compared with.
ONE = "dropins --workers 1 web"


def calibrate(target_ms: float = 1.0) -> int:
    """Rounds of the app's loop that take ``target_ms`` of CPU here (median of a few tries)."""
    namespace: dict[str, object] = {}
    exec(BURN_APP.format(rounds=0), namespace)
    burn: Callable[[int], int] = namespace["burn"]  # type: ignore[assignment]
    rounds, tries = 100_000, []
    for _ in range(7):
        started = time.thread_time()
        burn(rounds)
        tries.append(time.thread_time() - started)
    return max(1, int(rounds * target_ms / 1000 / statistics.median(tries)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(cwd: Path) -> dict[str, str]:
    """Byte-code caches on (as users run); the app's folder importable."""
    env = {key: value for key, value in os.environ.items()
           if key != "PYTHONDONTWRITEBYTECODE" and not key.startswith("DROPINS_")}
    env["PYTHONPATH"] = str(cwd)
    return env


def answers(port: int) -> bool:
    """Whether a whole HTTP request gets a 200 (a worker is up, not only the socket)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


@contextlib.contextmanager
def running(command: list[str], port: int, cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server and yield it once it answers; raise RuntimeError with its output if not."""
    log = cwd / "server.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=cwd, env=child_env(cwd),
                                   stdin=subprocess.DEVNULL, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 30
        while not answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(command[-8:])} did not start:\n"
                                   f"{log.read_text(errors='replace')[-1500:]}")
            time.sleep(0.05)
        for _ in range(20):  # every worker up: a few more answers warm them all
            answers(port)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def wrk(port: int, duration: int) -> tuple[float, float]:
    """(requests/s, wrk's own CPU use in CPUs): on a 2-core machine the client takes a share
    of the cores the servers need, which caps every row's ratio below 2x."""
    command = ["wrk", "-t1", "-c16", f"-d{duration}s", f"http://127.0.0.1:{port}/"]
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        started = time.monotonic()
        _pid, _status, usage = os.wait4(process.pid, 0)
        elapsed = time.monotonic() - started
        process.returncode = 0
        output.seek(0)
        text = output.read()
    match = re.search(r"Requests/sec:\s+([\d.]+)", text)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", text)
    if not match or errors:
        raise RuntimeError(f"wrk failed:\n{text}")
    return float(match.group(1)), (usage.ru_utime + usage.ru_stime) / elapsed


def _status_field(path: Path, field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+)", path.read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def rss_mib(pid: int) -> float:
    return _status_field(Path(f"/proc/{pid}/status"), "VmRSS") / 1024


def context_switches(pid: int) -> int:
    """Voluntary and involuntary switches of every thread of ``pid`` so far (its wake-ups)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            status = task / "status"
            total += (_status_field(status, "voluntary_ctxt_switches")
                      + _status_field(status, "nonvoluntary_ctxt_switches"))
    return total


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (the workers), from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def idle_overhead(pid: int, seconds: float) -> tuple[float, float, float]:
    """(supervisor MiB, supervisor wake-ups/s, all workers' MiB), idle for ``seconds``."""
    time.sleep(1)  # what the start-up and the warm-up requests left behind settles
    before = context_switches(pid)
    time.sleep(seconds)
    wakeups = (context_switches(pid) - before) / seconds
    return rss_mib(pid), wakeups, sum(rss_mib(child) for child in children(pid))


Figures = dict[str, dict[str, list[float]]]


def measure(work: Path, runs: int, duration: int, idle: float) -> tuple[Figures, dict[str, str]]:
    figures: Figures = {name: {"rps": [], "wrk_cpu": [], "rss": [], "wakeups": [],
                               "workers_rss": []}
                        for name in SERVERS}
    failed: dict[str, str] = {}
    for run in range(runs):
        for name, command in SERVERS.items():
            if name in failed:
                continue
            port = free_port()
            try:
                with running(command(port), port, work) as process:
                    rps, wrk_cpu = wrk(port, duration)
                    figures[name]["rps"].append(rps)
                    figures[name]["wrk_cpu"].append(wrk_cpu)
                    if name in SUPERVISED:
                        rss, wakeups, workers_rss = idle_overhead(process.pid, idle)
                        figures[name]["rss"].append(rss)
                        figures[name]["wakeups"].append(wakeups)
                        figures[name]["workers_rss"].append(workers_rss)
            except RuntimeError as error:
                failed[name] = str(error).splitlines()[-1][:120]
        print(f"  run {run + 1}/{runs} done", file=sys.stderr)
    return figures, failed


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(figures: Figures, failed: dict[str, str]) -> str:
    medians = {name: {key: _median(values) for key, values in data.items()}
               for name, data in figures.items()}
    reference = ONE if ONE not in failed else next(iter(SERVERS))
    one = medians[reference]["rps"]
    lines = [f"| server | req/s | x {reference} | wrk CPUs | supervisor idle MiB | wake-ups/s "
             "| workers MiB |", "|---|---|---|---|---|---|---|"]
    for name, values in medians.items():
        if name in failed:
            lines.append(f"| {name} | n/a: {failed[name]} | | | | | |")
            continue
        idle = ("| | | |" if name not in SUPERVISED else
                f"| {values['rss']:.1f} | {values['wakeups']:.1f} | {values['workers_rss']:.1f} |")
        lines.append(f"| {name} | {values['rps']:.0f} | {values['rps'] / one:.2f} "
                     f"| {values['wrk_cpu']:.2f} {idle}")
    lines.append("(medians; the app burns ~1 ms of CPU per request; goal: --workers 2 at least "
                 "1.6x --workers 1; wrk CPUs: the client's own CPU time / wall time, taken from "
                 f"the {os.cpu_count()} cores the servers share)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--idle", type=float, default=10.0,
                        help="seconds of idle time over which wake-ups are counted")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/workers.py needs wrk (Debian: apt-get install wrk)", file=sys.stderr)
        return 1
    rounds = calibrate()
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        (work / "burn.py").write_text(BURN_APP.format(rounds=rounds))
        print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {args.runs} runs, "
              f"wrk -t1 -c16 -d{args.duration}s, {rounds} rounds = ~1 ms of CPU per request",
              file=sys.stderr)
        figures, failed = measure(work, args.runs, args.duration, args.idle)
    print(table(figures, failed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
