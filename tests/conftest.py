"""Shared test fixtures: the real CLI in a subprocess, free ports, wheels and one temporary venv.

Install tests share a single virtual environment per test session (``fresh_venv``): creating one
and installing dropins into it costs seconds, so each test installs and uninstalls only its own
plugin distributions there, under names no other test uses.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Runs a coroutine to completion on a fresh event loop (the ``run`` fixture's value).
LoopRunner = Callable[[Coroutine[object, object, None]], None]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a subprocess: no DROPINS_* settings leaking in from the caller."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DROPINS_")}
    env.pop("PYTHONPATH", None)
    if extra:
        env.update(extra)
    return env


def run_dropins(*args: str, env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
                timeout: float = 60, input: str | None = None,
                python: str | Path = sys.executable) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dropins ARGS`` to completion and return the result (text mode).

    Without ``input`` the child's stdin is /dev/null, never the terminal of whoever runs pytest.
    """
    stdin = subprocess.DEVNULL if input is None else None
    return subprocess.run([str(python), "-m", "dropins", *args], env=clean_env(env), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, input=input,
                          stdin=stdin)


def get_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_port() -> int:
    return get_free_port()


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    """Write ``{relative path: text}`` below ``root`` (text is dedented); return ``root``."""
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def build_wheel(project: Path, out: Path) -> Path:
    """Build ``project`` (a folder with pyproject.toml) into a wheel in ``out``; return its path."""
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(project)], check=True, capture_output=True, timeout=120)
    (wheel,) = set(out.glob("*.whl")) - before
    return wheel


class Venv:
    """A virtual environment driven by the test session's own pip (``pip --python``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bindir = path / ("Scripts" if os.name == "nt" else "bin")
        self.python = self.bindir / ("python.exe" if os.name == "nt" else "python")

    def bin(self, name: str) -> Path:
        return self.bindir / name

    def pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "pip", "--python", str(self.python), *args],
                                capture_output=True, text=True, timeout=300, env=clean_env())
        if result.returncode != 0:
            raise AssertionError(f"pip {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def install(self, *targets: str | Path, editable: bool = False) -> None:
        args = ["install", "-q", "--no-deps", "--no-build-isolation"]
        for target in targets:
            args += ["-e", str(target)] if editable else [str(target)]
        self.pip(*args)

    def uninstall(self, *names: str) -> None:
        self.pip("uninstall", "-y", "-q", *names)

    def run(self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60,
            cwd: str | Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command from this venv's bin folder (``dropins``, ``python``)."""
        command = [str(self.bin(args[0])), *args[1:]]
        return subprocess.run(command, env=clean_env(env), capture_output=True, text=True,
                              timeout=timeout, cwd=cwd)


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """One venv per session with dropins (built as a real wheel) and its dependencies installed."""
    path = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True,
                   timeout=120)
    venv = Venv(path)
    wheel = build_wheel(REPO, tmp_path_factory.mktemp("dropins-wheel"))
    venv.pip("install", "-q", "--no-build-isolation", f"{wheel}[web,auth]")
    return venv


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    return tmp_path / "wheels"


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> LoopRunner:
    """Run a coroutine on the standard loop, and again on uvloop (whose transports differ)."""
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.run  # type: ignore[no-any-return]
    return asyncio.run


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One RabbitMQ node for the session (see tests/_rabbitmq.py), stopped at the end."""
    from _rabbitmq import start_node

    node = start_node(tmp_path_factory.mktemp("rabbitmq"), "session")
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def notify_socket() -> Iterator[Any]:
    """A fake systemd NOTIFY_SOCKET that records what the process under test sends."""
    from _observe_helpers import NotifySocket

    folder = tempfile.mkdtemp(prefix="notify")  # short: a socket path has ~100 bytes at most
    sock = NotifySocket(os.path.join(folder, "notify.sock"))
    yield sock
    sock.close()
    os.rmdir(folder)
