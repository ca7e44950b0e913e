"""Benchmark: plugin discovery and loading, dropins against Twisted, stevedore, importlib.metadata.

Run on demand (not in CI)::

    env -u PYTHONDONTWRITEBYTECODE /work/main/.venv/bin/python bench/plugins.py [--runs 5]

It generates N plugin modules in a plugin package (one tree for dropins, an identical one whose
objects provide Twisted's IPlugin for Twisted, and a copy of each for the cold cases, which
delete their cache before every run) and M fake installed distributions (``*.dist-info`` with
METADATA and entry_points.txt, plus one module each) in a temporary site directory, for
N = M = 10, 100, 1000.  Every measurement is a fresh interpreter; it reports

* ``total``: from before the library is imported to the result (what a command pays), and
* ``call``: the discovery call alone, after the imports.

Each figure is the median of ``--runs`` processes (at least 5), the cases of a size interleaved
round-robin so that machine noise hits all of them alike.  Byte-code is compiled before
measuring, so "cold" means "no discovery cache", not "no .pyc".  stevedore's name listing uses
``stevedore._cache.get_group_all``, which is what ``ExtensionManager.list_entry_points`` calls.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

INTERFACE = "benchapp.interfaces.IThing"

PLUGIN_MODULE = """\
from zope.interface import implementer
from {iplugin_module} import IPlugin
from {app}.interfaces import IThing


@implementer(IPlugin, IThing)
class Thing:
    description = "thing number {index}"

    def __init__(self, name):
        self.name = name


{var} = Thing("{name}")
"""

INTERFACES = """\
from zope.interface import Interface


class IThing(Interface):
    \"\"\"A benchmark plugin.\"\"\"
"""


def generate(root: Path, size: int) -> dict[str, Path]:
    """Write the plugin trees and the fake distributions for one size; return their roots."""
    # The cold cases delete their tree's cache before each run: they get identical trees of their
    # own, so that the warm cases see folders nothing touched since their caches were written.
    trees = {"dropins": ("benchapp", "dropins.plugin.interfaces"),
             "dropins-cold": ("benchapp", "dropins.plugin.interfaces"),
             "twisted": ("benchtw", "twisted.plugin"),
             "twisted-cold": ("benchtw", "twisted.plugin")}
    places: dict[str, Path] = {}
    for label, (app, iplugin) in trees.items():
        base = root / label
        plugins = base / app / "plugins"
        plugins.mkdir(parents=True)
        (base / app / "__init__.py").write_text("")
        (base / app / "interfaces.py").write_text(INTERFACES)
        (plugins / "__init__.py").write_text("")
        for index in range(size):
            name = f"thing_{index:04}"
            (plugins / f"{name}.py").write_text(PLUGIN_MODULE.format(
                iplugin_module=iplugin, app=app, index=index, name=name, var=name))
        places[label] = base
    site = root / "site"
    (site / "benchep" / "plugins").mkdir(parents=True)
    (site / "benchep" / "__init__.py").write_text("")
    (site / "benchep" / "plugins" / "__init__.py").write_text("")
    (site / "benchapp_ep_interfaces.py").write_text(INTERFACES)
    for index in range(size):
        dist = f"bench_dist_{index:04}"
        info = site / f"{dist}-1.{index}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: bench-dist-{index:04}\nVersion: 1.{index}\n")
        (info / "entry_points.txt").write_text(
            f"[benchep.plugins]\nep_{index:04} = {dist}_mod:thing\n\n"
            f"[console_scripts]\nbench-{index:04} = {dist}_mod:main\n")
        (site / f"{dist}_mod.py").write_text(PLUGIN_MODULE.replace(
            "from {app}.interfaces", "from benchapp_ep_interfaces").format(
            iplugin_module="dropins.plugin.interfaces", app="", index=index,
            name=f"ep_thing_{index:04}", var="thing"))
    places["site"] = site
    return places


# Each case: (paths key, imports timed as "import", work timed as "call" that sets n, setup).
CASES: dict[str, tuple[str, str, str]] = {
    "bare imports": ("dropins", "import importlib",
                     "n = len([importlib.import_module('benchapp.plugins.' + m)"
                     " for m in MODULES])"),
    # Not a peer: what any warm listing that keys each module on its file state must pay, the
    # package import and one os.stat per module (relative to the folder, the cheapest form).
    "floor: import + N stats": ("dropins", "import os",
                                "import benchapp.plugins as package\n"
                                "handle = os.open(package.__path__[0], os.O_RDONLY)\n"
                                "n = len([os.stat(m + '.py', dir_fd=handle) for m in MODULES])"),
    "dropins list warm": ("dropins", "from dropins.plugin import iter_plugin_info",
                          f"n = len(list(iter_plugin_info({INTERFACE!r}, 'benchapp.plugins')))"),
    "dropins load warm": ("dropins", "from dropins.plugin import get_plugins",
                          f"n = len(list(get_plugins({INTERFACE!r}, 'benchapp.plugins')))"),
    "dropins load cold": ("dropins-cold", "from dropins.plugin import get_plugins",
                          f"n = len(list(get_plugins({INTERFACE!r}, 'benchapp.plugins')))"),
    "twisted getPlugins cold": ("twisted-cold", "from twisted.plugin import getPlugins\n"
                                "import benchtw.plugins as pkg\n"
                                "from benchtw.interfaces import IThing",
                                "n = len(list(getPlugins(IThing, pkg)))"),
    "twisted getPlugins warm": ("twisted", "from twisted.plugin import getPlugins\n"
                                "import benchtw.plugins as pkg\n"
                                "from benchtw.interfaces import IThing",
                                "n = len(list(getPlugins(IThing, pkg)))"),
    "twisted names only warm": ("twisted", "from twisted.plugin import getCache\n"
                                "import benchtw.plugins as pkg",
                                "n = sum(len(d.plugins) for d in getCache(pkg).values())"),
    "ep: bare imports": ("site", "import importlib",
                         "n = len([importlib.import_module(m) for m in EP_MODULES])"),
    "ep: dropins list warm": ("site", "from dropins.plugin import iter_plugin_info",
                              "n = len(list(iter_plugin_info(package='benchep.plugins')))"),
    "ep: dropins list cold": ("site", "from dropins.plugin import iter_plugin_info",
                              "n = len(list(iter_plugin_info(package='benchep.plugins')))"),
    "ep: dropins load warm": ("site", "from dropins.plugin import get_plugins",
                              "n = len(list(get_plugins('benchapp_ep_interfaces.IThing',"
                              " 'benchep.plugins')))"),
    "ep: stevedore names warm": ("site", "from stevedore import _cache",
                                 "n = len(list(_cache.get_group_all('benchep.plugins')))"),
    "ep: stevedore names cold": ("site", "from stevedore import _cache",
                                 "n = len(list(_cache.get_group_all('benchep.plugins')))"),
    "ep: stevedore load warm": ("site", "from stevedore import ExtensionManager",
                                "n = len(ExtensionManager('benchep.plugins').extensions)"),
    "ep: importlib.metadata": ("site", "from importlib.metadata import entry_points",
                               "n = len(entry_points(group='benchep.plugins'))"),
}

CHILD = """\
import sys, time
sys.path[:0] = {paths!r}
MODULES = {modules!r}
EP_MODULES = {ep_modules!r}
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
{work}
t2 = time.perf_counter()
assert n == {expected}, n
print((t2 - t0) * 1000, (t2 - t1) * 1000)
"""


class Runner:
    """Runs single measurements in fresh interpreters with a private cache home."""

    def __init__(self, root: Path, places: dict[str, Path], size: int) -> None:
        self.root = root
        self.places = places
        self.size = size
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith(("DROPINS_", "PYTHON"))}
        self.env["XDG_CACHE_HOME"] = str(root / "cache-home")

    def reset(self, case: str) -> None:
        """Remove the discovery caches a "cold" case must not find."""
        if case == "dropins load cold":
            (self.places["dropins-cold"] / "benchapp/plugins/dropins.cache.json").unlink(
                missing_ok=True)
        elif case == "twisted getPlugins cold":
            (self.places["twisted-cold"] / "benchtw/plugins/dropin.cache").unlink(missing_ok=True)
        elif case == "ep: dropins list cold":
            for path in (self.root / "cache-home" / "dropins").glob("entry-points-benchep*"):
                path.unlink()
        elif case == "ep: stevedore names cold":
            shutil.rmtree(self.root / "cache-home" / "python-entrypoints", ignore_errors=True)

    def measure(self, case: str) -> tuple[float, float]:
        key, imports, work = CASES[case]
        self.reset(case)
        code = CHILD.format(
            paths=[str(self.places[key])], imports=imports, work=work, expected=self.size,
            modules=[f"thing_{i:04}" for i in range(self.size)],
            ep_modules=[f"bench_dist_{i:04}_mod" for i in range(self.size)])
        result = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True,
                                text=True, timeout=300, cwd=self.root)
        if result.returncode != 0:
            raise SystemExit(f"{case} (size {self.size}) failed:\n{result.stderr}")
        total, call = (float(value) for value in result.stdout.split())
        return total, call


def bench_size(size: int, runs: int) -> dict[str, tuple[float, float]]:
    root = Path(tempfile.mkdtemp(prefix=f"dropins-bench-{size}-"))
    try:
        places = generate(root, size)
        runner = Runner(root, places, size)
        for case in CASES:  # compile byte-code and build every warm cache once
            runner.measure(case)
        # Folders changed less than two seconds ago are listed on every call rather than
        # remembered (dropins.plugin.listings): let the new trees settle, as any installed
        # plugins have, and run once more so that what the next call would remember is.
        time.sleep(2.5)
        for case in CASES:
            runner.measure(case)
        samples: dict[str, list[tuple[float, float]]] = {case: [] for case in CASES}
        for _ in range(runs):
            for case in CASES:
                samples[case].append(runner.measure(case))
        return {case: (statistics.median(s[0] for s in values),
                       statistics.median(s[1] for s in values))
                for case, values in samples.items()}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def print_table(results: dict[int, dict[str, tuple[float, float]]]) -> None:
    references = {"bare imports": None, "floor: import + N stats": "dropins list warm",
                  "dropins list warm": "twisted names only warm",
                  "dropins load warm": "bare imports", "dropins load cold": "bare imports",
                  "ep: dropins list warm": "ep: stevedore names warm",
                  "ep: dropins list cold": "ep: stevedore names cold",
                  "ep: dropins load warm": "ep: stevedore load warm"}
    header = f"{'case':<26}{'N/M':>6}{'total ms':>11}{'call ms':>10}  ratio (total, call)"
    print(header)
    print("-" * len(header))
    for case in CASES:
        for size, by_case in results.items():
            total, call = by_case[case]
            peer = references.get(case)
            ratio = ""
            if peer:
                peer_total, peer_call = by_case[peer]
                ratio = f"{total / peer_total:5.2f}x {call / peer_call:6.2f}x  vs {peer}"
            print(f"{case:<26}{size:>6}{total:>11.2f}{call:>10.2f}  {ratio}")


def print_goals(results: dict[int, dict[str, tuple[float, float]]]) -> None:
    if 1000 not in results:
        return
    r = results[1000]

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    list_call = r["dropins list warm"][1]
    goals = [
        ("list warm N=1000, call <= 5 ms", f"{list_call:.2f} ms", list_call <= 5),
        ("list warm vs Twisted names-only >= 10x (total)",
         f"{r['twisted names only warm'][0] / r['dropins list warm'][0]:.2f}x",
         r["twisted names only warm"][0] / r["dropins list warm"][0] >= 10),
        ("list warm vs stevedore names warm >= 3x (total)",
         f"{r['ep: stevedore names warm'][0] / r['dropins list warm'][0]:.2f}x",
         r["ep: stevedore names warm"][0] / r["dropins list warm"][0] >= 3),
        ("load warm <= 1.1x bare imports (total)",
         f"{r['dropins load warm'][0] / r['bare imports'][0]:.2f}x",
         r["dropins load warm"][0] / r["bare imports"][0] <= 1.1),
        ("first run (no cache) <= 1.2x bare imports (total)",
         f"{r['dropins load cold'][0] / r['bare imports'][0]:.2f}x",
         r["dropins load cold"][0] / r["bare imports"][0] <= 1.2),
        ("entry points M=1000, list warm vs stevedore warm >= 3x (total)",
         f"{r['ep: stevedore names warm'][0] / r['ep: dropins list warm'][0]:.2f}x",
         r["ep: stevedore names warm"][0] / r["ep: dropins list warm"][0] >= 3),
    ]
    print("\ngoals (N = M = 1000):")
    for text, value, ok in goals:
        print(f"  {text:<66}{value:>10}  {verdict(ok)}")
    floor = r["floor: import + N stats"][1]
    print(f"  (of the listing's {list_call:.2f} ms, the package import and one stat per module"
          f" alone take {floor:.2f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=textwrap.dedent(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="processes per case (at least 5)")
    parser.add_argument("--sizes", default="10,100,1000", help="comma-separated N = M values")
    args = parser.parse_args()
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        raise SystemExit("unset PYTHONDONTWRITEBYTECODE: without .pyc files every import"
                         " compiles, which is not what users run")
    runs = max(5, args.runs)
    sizes = [int(size) for size in args.sizes.split(",")]
    results = {size: bench_size(size, runs) for size in sizes}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, median of {runs}"
          " fresh processes per case\n")
    print_table(results)
    print_goals(results)


if __name__ == "__main__":
    main()
