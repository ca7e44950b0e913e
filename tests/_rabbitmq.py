"""A RabbitMQ node of the test session's own: Debian's ``rabbitmq-server`` started unprivileged on
free ports with its own data, log and HOME folders (its own Erlang cookie), never systemd."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

#: Debian's /usr/sbin scripts only run as root or the rabbitmq user; the real ones live here.
REAL_BIN = "/usr/lib/rabbitmq/bin"


def find_command(name: str) -> str | None:
    """The RabbitMQ script ``name`` an unprivileged user can run, or None when not installed."""
    real = shutil.which(name, path=REAL_BIN)
    if real:
        return real
    if shutil.which(name, path="/usr/sbin"):
        return None  # only the Debian wrapper, which insists on the rabbitmq user
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RabbitNode:
    """One broker node; ``url`` is its AMQP address (guest/guest, allowed on loopback)."""

    def __init__(self, root: Path, tag: str) -> None:
        self.root = root
        self.port = _free_port()
        self.dist_port = _free_port()
        self.name = f"dropins-test-{os.getpid()}-{tag}@localhost"
        home = root / "home"
        home.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "HOME": str(home), "RABBITMQ_NODENAME": self.name,
                    "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                    "RABBITMQ_NODE_PORT": str(self.port),
                    "RABBITMQ_DIST_PORT": str(self.dist_port),
                    "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
                    "RABBITMQ_LOG_BASE": str(root / "log"),
                    "RABBITMQ_PID_FILE": str(root / "node.pid"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
                    "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq"),
                    "RABBITMQ_ADVANCED_CONFIG_FILE": str(root / "advanced.config")}
        (root / "enabled_plugins").write_text("[].\n")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self, timeout: float = 90) -> None:
        server = find_command("rabbitmq-server")
        assert server is not None
        self.process = subprocess.Popen([server], env=self.env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited {self.process.returncode}; "
                                   f"see {self.root / 'log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"AMQP\x00\x00\x09\x01")
                    sock.settimeout(2)
                    if sock.recv(1):
                        return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"rabbitmq-server did not accept AMQP within {timeout:g} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        ctl = find_command("rabbitmqctl")
        if ctl:
            subprocess.run([ctl, "-n", self.name, "stop"], env=self.env, timeout=60,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=10)


def start_node(root: Path, tag: str) -> RabbitNode:
    """A started node, or a skip naming why there can be none."""
    import pytest

    if find_command("rabbitmq-server") is None:
        pytest.skip("rabbitmq-server is not installed (Debian package rabbitmq-server; "
                    ".ci/run installs it)")
    node = RabbitNode(root, tag)
    node.start()
    return node
