"""Peak memory of ``dropins web`` while it receives one large upload (WSGI and ASGI).

For each gateway, a server is started with an application that reads the body in 1 MiB
pieces and counts it; after one small warm-up upload, one upload of ``--size`` MiB is sent
in 1 MiB blocks (the client never holds the body).  Reported: the growth of the server's
peak resident memory (VmHWM, Linux /proc) during the upload, and the upload's throughput.

Usage: ``.venv/bin/python bench/web_upload.py [--size 300]``.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APPS = '''
async def asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"%d" % size})


def wsgi(environ, start_response):
    size = 0
    while chunk := environ["wsgi.input"].read(1 << 20):
        size += len(chunk)
    start_response("200 OK", [])
    return [b"%d" % size]
'''


def peak_memory(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def upload(port: int, size: int) -> bytes:
    block = b"u" * (1 << 20)
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n" % size)
        remaining = size
        while remaining > 0:
            sock.sendall(block[:remaining])
            remaining -= len(block)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def measure(folder: Path, gateway: str, size: int) -> tuple[int, float]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DROPINS_")}
    env["PYTHONPATH"] = str(folder)
    server = subprocess.Popen(
        [sys.executable, "-m", "dropins", "web", f"--{gateway}", f"uploadapps:{gateway}",
         "--max-body-size", f"{size + 1}M", "--listen", "tcp:0:interface=127.0.0.1"],
        cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        port = 0
        for line in server.stderr:
            match = re.search(r"ready: .*tcp:127\.0\.0\.1:(\d+)", line)
            if match:
                port = int(match.group(1))
                break
        if not port:
            raise RuntimeError("the server did not start")
        upload(port, 3 << 20)
        before = peak_memory(server.pid)
        started = time.perf_counter()
        answer = upload(port, size << 20)
        elapsed = time.perf_counter() - started
        if not answer.endswith(b"%d" % (size << 20)):
            raise RuntimeError(f"unexpected answer {answer[-200:]!r}")
        return peak_memory(server.pid) - before, elapsed
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=300, help="upload size in MiB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "uploadapps.py").write_text(APPS)
        print(f"upload of {args.size} MiB       peak memory growth   throughput")
        for gateway in ("wsgi", "asgi"):
            grown, elapsed = measure(folder, gateway, args.size)
            print(f"dropins web --{gateway:4}      {grown / 2**20:8.1f} MiB"
                  f"        {args.size / elapsed:6.0f} MiB/s")


if __name__ == "__main__":
    main()
