"""Benchmark ``dropins web --proxy`` against nginx's ``proxy_pass``, on the same backend.

The backend is an nginx worker answering ``return 200 "Hello, world!"``, so that the proxy in
front of it is what is measured.  Rows, in the same run, each measured with
``wrk -t1 -c32`` on loopback:

* the backend itself, without a proxy (the ceiling);
* nginx ``proxy_pass`` with one worker process, keep-alive to the backend
  (``keepalive 32``, ``proxy_http_version 1.1``) and no access log: nginx at its best for this;
* ``dropins web --proxy /=...`` (one process, as nginx's one worker), without an access log,
  on asyncio and on uvloop.

Each figure is the median of ``--runs`` runs (default 5); servers are measured in turns, run
after run, so that a change in machine load affects them alike.

Usage: ``.venv/bin/python bench/proxy.py [--runs 5] [--duration 3]`` (needs ``wrk`` and
``nginx``).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from web import PYTHON, free_port, running, wrk

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

_NGINX_CONF = """
worker_processes 1;
daemon off;
error_log {work}/{name}-error.log warn;
pid {work}/{name}.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/{name}-body;
    proxy_temp_path {work}/{name}-proxy;
    fastcgi_temp_path {work}/{name}-fastcgi;
    uwsgi_temp_path {work}/{name}-uwsgi;
    scgi_temp_path {work}/{name}-scgi;
    {upstream}
    server {{
        listen 127.0.0.1:{port};
        location / {{ {location} }}
    }}
}}
"""


def nginx(work: Path, name: str, port: int, location: str, upstream: str = "") -> list[str]:
    conf = work / f"{name}.conf"
    conf.write_text(_NGINX_CONF.format(work=work, name=name, port=port, location=location,
                                       upstream=upstream))
    return [NGINX, "-p", str(work), "-c", str(conf)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    args = parser.parse_args()
    for tool in ("wrk", NGINX):
        if shutil.which(tool) is None:
            print(f"bench/proxy.py needs {tool} (Debian: apt-get install wrk nginx)",
                  file=sys.stderr)
            return 1
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        backend_port = free_port()
        backend = nginx(work, "backend", backend_port,
                        'default_type text/plain; return 200 "Hello, world!";')
        url = f"http://127.0.0.1:{backend_port}"
        rows = {
            "backend alone (no proxy)": lambda port: [],
            "nginx proxy_pass": lambda port: nginx(
                work, "proxy", port, "proxy_pass http://backend; proxy_http_version 1.1; "
                'proxy_set_header Connection "";',
                f"upstream backend {{ server 127.0.0.1:{backend_port}; keepalive 32; }}"),
            "dropins web --proxy": lambda port: [
                PYTHON, "-m", "dropins", "web", "--no-access-log", "--proxy", f"/={url}",
                "--listen", f"tcp:{port}:interface=127.0.0.1"],
            "dropins web --proxy (uvloop)": lambda port: [
                PYTHON, "-m", "dropins", "--loop", "uvloop", "web", "--no-access-log",
                "--proxy", f"/={url}", "--listen", f"tcp:{port}:interface=127.0.0.1"],
        }
        rates: dict[str, list[float]] = {name: [] for name in rows}
        print(f"Python {sys.version.split()[0]}, {args.runs} runs, wrk -t1 -c32 "
              f"-d{args.duration}s", file=sys.stderr)
        with running(backend, backend_port, work):
            for run in range(args.runs):
                for name, command in rows.items():
                    port = free_port()
                    if not command(port):
                        rates[name].append(wrk(url + "/", args.duration))
                        continue
                    with running(command(port), port, work):
                        time.sleep(0.3)
                        wrk(f"http://127.0.0.1:{port}/", 1)  # warm: pooled connections
                        rates[name].append(wrk(f"http://127.0.0.1:{port}/", args.duration))
                print(f"  run {run + 1}/{args.runs} done", file=sys.stderr)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    baseline = medians["nginx proxy_pass"]
    print("Proxied hello-world (backend: nginx return 200; wrk -t1 -c32)")
    print("| server | req/s | x nginx proxy_pass |")
    print("|---|---|---|")
    for name, value in medians.items():
        print(f"| {name} | {value:.0f} | {value / baseline:.2f} |")
    print("(medians; ratios against nginx proxy_pass, as 'times as many')")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
