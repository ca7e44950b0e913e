"""Benchmark: the whole `dropins --help` process against `twistd --help`, with many plugins.

For each plugin count (default 0, 100 and 1000) a temporary folder is put on PYTHONPATH with
that many generated service-maker plugin modules, for both tools, in their development-folder
layout:

* ``dropins/plugins/bench_NNNN.py`` (no ``__init__.py``), each ``ServiceMaker("benchNNNN", ...)``;
* ``twisted/plugins/bench_NNNN.py`` (no ``__init__.py``), each an object providing
  ``IServiceMaker`` and ``IPlugin``, as the twistd plugin tutorial writes them.

Both caches are warmed first (dropins' JSON cache, Twisted's ``dropin.cache``), and compiled
bytecode is allowed, so the runs measure the steady state a user sees.  Each measurement is a
fresh process, run ``--runs`` times (at least 5), the tools interleaved so that machine noise
hits both alike; the table shows medians and the ratio twistd / dropins.  Every run's output is
checked to list all the generated commands, so a fast but wrong listing cannot win.

Run:  unset PYTHONDONTWRITEBYTECODE; /work/main/.venv/bin/python bench/cli.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
GOAL_MS = 60.0
GOAL_RATIO = 10.0

DROPINS_PLUGIN = '''\
from dropins.service.maker import ServiceMaker

bench_{n:04d} = ServiceMaker("bench{n:04d}", "dropins.servers.inetd:echo",
                             "Generated service maker number {n}")
'''

TWISTED_PLUGIN = '''\
from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer


class Options(usage.Options):
    optParameters = [["port", "p", 1235, "The port number to listen on."]]


@implementer(IServiceMaker, IPlugin)
class BenchMaker{n:04d}:
    tapname = "bench{n:04d}"
    description = "Generated service maker number {n}"
    options = Options

    def makeService(self, options):
        from twisted.application.service import Service
        return Service()


bench_{n:04d} = BenchMaker{n:04d}()
'''


def generate(root: Path, count: int) -> None:
    """Write ``count`` plugin modules for each tool below ``root``."""
    for package, template in (("dropins", DROPINS_PLUGIN), ("twisted", TWISTED_PLUGIN)):
        folder = root / package / "plugins"
        folder.mkdir(parents=True)
        for n in range(count):
            (folder / f"bench_{n:04d}.py").write_text(template.format(n=n))


def environment(root: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("DROPINS_") and key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(root)
    return env


def run_once(command: list[str], env: dict[str, str], count: int) -> float:
    """Seconds one fresh process takes; checks that it listed every generated command."""
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({result.returncode}):\n{result.stderr}")
    listed = sum(1 for n in range(count) if f"bench{n:04d}" in result.stdout)
    if listed != count:
        raise SystemExit(f"{' '.join(command)} listed {listed} of {count} generated commands")
    return elapsed


def measure(count: int, runs: int) -> dict[str, float]:
    tools = {
        "dropins": [str(BIN / "dropins"), "--help"],
        "twistd": [str(BIN / "twistd"), "--help"],
    }
    root = Path(tempfile.mkdtemp(prefix=f"bench-cli-{count}-"))
    try:
        generate(root, count)
        env = environment(root)
        for command in tools.values():  # warm caches and bytecode
            run_once(command, env, count)
            run_once(command, env, count)
        samples: dict[str, list[float]] = {name: [] for name in tools}
        for _ in range(runs):
            for name, command in tools.items():
                samples[name].append(run_once(command, env, count))
        return {name: statistics.median(values) * 1000 for name, values in samples.items()}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def baseline(runs: int) -> float:
    """A bare interpreter start, for scale."""
    env = environment(Path(tempfile.gettempdir()))
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True, timeout=60)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per measurement (>= 5)")
    parser.add_argument("--counts", type=int, nargs="+", default=[0, 100, 1000],
                        help="numbers of generated plugins")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set in this shell; the measured processes run "
              "without it", file=sys.stderr)
    print(f"python -c pass: {baseline(args.runs):.1f} ms (median of {args.runs})")
    print(f"{'plugins':>8} | {'dropins --help':>15} | {'twistd --help':>14} | "
          f"{'twistd/dropins':>14}")
    print(f"{'-' * 8}-+-{'-' * 15}-+-{'-' * 14}-+-{'-' * 14}")
    verdicts = []
    for count in args.counts:
        medians = measure(count, args.runs)
        ratio = medians["twistd"] / medians["dropins"]
        print(f"{count:>8} | {medians['dropins']:>12.1f} ms | {medians['twistd']:>11.1f} ms | "
              f"{ratio:>13.1f}x", flush=True)
        if count == max(args.counts):
            verdicts.append(medians["dropins"] <= GOAL_MS and ratio >= GOAL_RATIO)
    print(f"medians of {args.runs} fresh processes each; goal at the largest count: "
          f"<= {GOAL_MS:.0f} ms and >= {GOAL_RATIO:.0f}x faster than twistd: "
          f"{'met' if all(verdicts) else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
