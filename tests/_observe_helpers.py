"""Helpers for the systemd notify and health tests: a fake NOTIFY_SOCKET, an HTTP probe, and
an ``--app`` whose services the test steers with files and signals (never with sleeps)."""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

TIMEOUT = 20.0


class NotifySocket:
    """A datagram socket standing in for systemd's: collects each message, in arrival order.

    ``name`` starting with ``@`` binds in the abstract namespace, as systemd may ask.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        address = b"\0" + name[1:].encode() if name.startswith("@") else name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.2)
        self.messages: list[dict[str, str]] = []
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            with self._changed:
                self.messages.append(fields)
                self._changed.notify_all()

    def wait_for(self, key: str, value: str | None = None, after: int = 0,
                 timeout: float = TIMEOUT) -> int:
        """The index of the first message from ``after`` on that has ``key`` (= ``value``)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index, message in enumerate(self.messages[after:], start=after):
                    if key in message and (value is None or message[key] == value):
                        return index
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {key}={value} within {timeout} s: {self.messages}")
                self._changed.wait(remaining)

    def kinds(self, ignore: tuple[str, ...] = ("WATCHDOG", "STATUS")) -> list[str]:
        """The first key of each message, leaving out pure WATCHDOG/STATUS ones."""
        with self._changed:
            return [next(iter(message)) for message in self.messages
                    if next(iter(message)) not in ignore]

    def close(self) -> None:
        self._closed = True
        self._thread.join(TIMEOUT)
        self.sock.close()
        if not self.name.startswith("@"):
            os.unlink(self.name)


def http_get(port: int, path: str, method: str = "GET",
             host: str = "127.0.0.1") -> tuple[int, str, str]:
    """(status, content type, body) of one request to host:port."""
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return (response.status, response.getheader("Content-Type") or "",
                response.read().decode())
    finally:
        connection.close()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


#: An --app steered by files in $TEST_TRIGGERS: ``go`` (``go1``, ``go2`` in worker 1, 2) lets
#: its start finish, ``unready`` makes its ready() hook fail, ``release`` lets its stop finish;
#: SIGUSR2 blocks its loop for $TEST_BLOCK_SECONDS (1.5), marked by X-BLOCK-BEGIN/X-BLOCK-END
#: datagrams into $TEST_MARK_SOCKET or NOTIFY_SOCKET (the same queue as the runner's own
#: messages, so their order is the order in which they were sent).
STEERED_APP = '''
import asyncio, os, signal, socket, time
from pathlib import Path
from dropins.service import Application, Service, StreamServerService

TRIGGERS = Path(os.environ["TEST_TRIGGERS"])


async def until(name):
    for _ in range(1500):
        if (TRIGGERS / name).exists():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(name)


def mark(text):
    address = os.environ.get("TEST_MARK_SOCKET") or os.environ.get("NOTIFY_SOCKET", "")
    if address:
        address = b"\\0" + address[1:].encode() if address.startswith("@") else address
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(text.encode(), address)


class Gate(Service):
    async def start(self):
        await until("go" + os.environ.get("DROPINS_WORKER", ""))
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, self.block)
        await super().start()

    def ready(self):
        return not (TRIGGERS / "unready").exists()

    def block(self):
        mark("X-BLOCK-BEGIN=1")
        time.sleep(float(os.environ.get("TEST_BLOCK_SECONDS", "1.5")))
        mark("X-BLOCK-END=1")

    async def stop(self):
        await super().stop()
        await until("release")


async def echo(reader, writer):
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()


application = Application(shutdown_timeout=30)
StreamServerService("tcp:0:interface=127.0.0.1", echo, name="echo").set_parent(application)
Gate("gate").set_parent(application)  # stopped first: the echo listener stays open meanwhile
'''


def send_mark(address: str, text: str) -> None:
    """A datagram from the test into the notify socket's queue, to order events against."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(text.encode(), address)


def write_steered_app(folder: Path) -> tuple[Path, Path]:
    """The app file and its trigger folder."""
    triggers = folder / "triggers"
    triggers.mkdir()
    app = folder / "steered.py"
    app.write_text(STEERED_APP)
    return app, triggers
