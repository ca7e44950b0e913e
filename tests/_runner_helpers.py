"""Helpers for the runner's end-to-end tests: a `dropins` process we can wait on and signal,
loopback clients with deadlines, and the walkthrough's `myproject` plugin project."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import clean_env

READY = re.compile(r"ready: (?P<label>\S+) (?:listening on (?P<addresses>.+)|started)$")
TIMEOUT = 20.0


class Dropins:
    """``python -m dropins ARGS`` running in the background; its stderr is collected by a thread.

    Use as a context manager: on exit the process is killed if it is still alive, so a failing
    test never leaves a server behind.
    """

    def __init__(self, *args: str, env: Mapping[str, str] | None = None,
                 cwd: str | Path | None = None, python: str | Path = sys.executable,
                 executable: str | Path | None = None) -> None:
        command = [str(executable), *args] if executable else [str(python), "-m", "dropins",
                                                               *args]
        self.process = subprocess.Popen(command, env=clean_env(env), cwd=cwd,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.stdout = ""
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()
        self._stdout_chunks: list[str] = []
        self._stdout_reader = threading.Thread(target=self._collect_stdout, daemon=True)
        self._stdout_reader.start()

    def _collect_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._stdout_chunks.append(line)

    def _collect(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def stderr(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """The first stderr line matching ``pattern``; fails after ``timeout`` or on exit."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        index = 0
        with self._changed:
            while True:
                for line in self.lines[index:]:
                    match = regex.search(line)
                    if match:
                        return match
                index = len(self.lines)
                remaining = deadline - time.monotonic()
                if not self._reader.is_alive():
                    raise AssertionError(f"dropins exited ({self.process.poll()}) before "
                                         f"{pattern!r}; stderr:\n{self.stderr_unlocked()}")
                if remaining <= 0:
                    raise AssertionError(f"no {pattern!r} within {timeout} s; stderr:\n"
                                         f"{self.stderr_unlocked()}")
                self._changed.wait(min(remaining, 0.5))

    def stderr_unlocked(self) -> str:
        return "\n".join(self.lines)

    def ready(self, timeout: float = TIMEOUT) -> list[str]:
        """Wait for the ready line; return the addresses it names."""
        match = self.wait_for_line(READY.pattern, timeout)
        return (match.group("addresses") or "").split(", ") if match.group("addresses") else []

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = TIMEOUT) -> int:
        """Wait for the exit status; the collector thread is joined so stderr is complete."""
        status = self.process.wait(timeout=timeout)
        self._reader.join(timeout)
        self._stdout_reader.join(timeout)
        self.stdout = "".join(self._stdout_chunks)
        return status

    def stop(self, timeout: float = TIMEOUT) -> int:
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def __enter__(self) -> Dropins:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=TIMEOUT)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def host_port(address: str) -> tuple[str, int]:
    """``tcp:127.0.0.1:4321`` -> ("127.0.0.1", 4321)."""
    host, _, port = address.split(":", 1)[1].rpartition(":")
    return host.strip("[]"), int(port)


def connect(address: str, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(host_port(address), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def process_gone(pid: int, timeout: float = TIMEOUT) -> bool:
    """Wait until ``pid`` no longer exists (or is a zombie); False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(") ", 1)[1].startswith("Z"):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


@contextmanager
def small_filesystem(folder: Path, size: str = "64k") -> Iterator[Path]:
    """A real, tiny tmpfs mounted on ``folder`` (created), to fill up; unmounted afterwards.

    Skips the test when mounting is not permitted (not root, or a container without
    CAP_SYS_ADMIN): a full disk cannot be faked honestly otherwise.
    """
    folder.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                  str(folder)], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("cannot mount a small tmpfs to fill up: no mount command here")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def fill_up(folder: Path) -> Path:
    """Write a file into ``folder`` until its filesystem is full; return the filler's path."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def assert_no_traceback(*outputs: str) -> None:
    for output in outputs:
        assert "Traceback" not in output, output


#: The walkthrough's plugin project: a service maker named ``myproject`` (options ``--port/-p``,
#: default 1235) that answers each line with "myproject: " and the line in upper case.
MYPROJECT_PACKAGE = {
    "myproject/__init__.py": '''
        """An example service for the dropins walkthrough."""
        ''',
    "myproject/server.py": '''
        import asyncio

        from dropins import Options, Parameter, StreamServerService


        class Options(Options):
            description = "Shout back every line."
            port = Parameter(short="p", default=1235, type=int, help="The port to listen on.")


        async def shout(reader, writer):
            while line := await reader.readline():
                writer.write(b"myproject: " + line.upper())
                await writer.drain()


        def make_service(options):
            return StreamServerService(f"tcp:{options.port}:interface=127.0.0.1", shout)
        ''',
}

MYPROJECT_PLUGIN = '''
    from dropins import ServiceMaker

    myproject = ServiceMaker("myproject", "myproject.server", "Shout back every line, loudly")
    '''


def myproject_with_entry_point(root: Path) -> dict[str, str]:
    """The files of ``myproject`` as a distribution shipping its plugin as an entry point."""
    return {
        **MYPROJECT_PACKAGE,
        "myproject/plugin.py": MYPROJECT_PLUGIN,
        "pyproject.toml": '''
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "myproject"
            version = "1.2.3"
            dependencies = ["dropins"]

            [project.entry-points."dropins.plugins"]
            myproject = "myproject.plugin:myproject"

            [tool.setuptools]
            packages = ["myproject"]
            ''',
    }


def myproject_as_development_folder() -> dict[str, str]:
    """The files of ``myproject`` with its plugin in a ``dropins/plugins/`` development folder."""
    return {**MYPROJECT_PACKAGE, "dropins/plugins/myproject_plugin.py": MYPROJECT_PLUGIN}
