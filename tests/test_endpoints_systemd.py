"""Socket activation: sockets passed to a child process through LISTEN_FDS, as systemd does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import clean_env
from dropins.service import ListenError, StreamServerService

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="socket activation is POSIX")

# Starts like a systemd service: moves the passed sockets to fds 3, 4, ..., sets LISTEN_PID to
# its own pid, then execs the server (exec keeps the pid, as `sh -c 'LISTEN_PID=$$ exec ...'`).
LAUNCHER = """
import os, sys
fds = [int(fd) for fd in sys.argv[1].split(",")]
moved = [os.dup(fd) for fd in fds]  # out of the way of 3, 4, ... first
for target, fd in enumerate(moved, start=3):
    if fd != target:
        os.dup2(fd, target)
    os.set_inheritable(target, True)  # dup2(fd, fd) would leave it close-on-exec
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = str(len(fds))
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""

# Serves one connection on the given endpoint with the real service layer, then stops.
SERVER = """
import asyncio, sys
from dropins.service import Application, StreamServerService

async def main(description):
    served = asyncio.Event()

    async def handle(reader, writer):
        writer.write(b"activated " + (await reader.readline()))
        await writer.drain()
        served.set()

    app = Application(shutdown_timeout=2)
    service = StreamServerService(description, handle)
    service.set_parent(app)
    try:
        app.privileged_start()
    except Exception as error:
        print(f"error: {error}", flush=True)
        return 3
    await app.start()
    print("serving", *service.addresses, flush=True)
    await asyncio.wait_for(served.wait(), 15)
    await app.stop()
    return 0

sys.exit(asyncio.run(main(sys.argv[1])))
"""


def activate(tmp_path: Path, sockets: list[socket.socket], endpoint: str,
             names: str | None = None) -> subprocess.Popen[str]:
    launcher = tmp_path / "launcher.py"
    server = tmp_path / "server.py"
    launcher.write_text(textwrap.dedent(LAUNCHER))
    server.write_text(textwrap.dedent(SERVER))
    fds = [sock.fileno() for sock in sockets]
    extra = {"LISTEN_FDNAMES": names} if names is not None else {}
    return subprocess.Popen(
        [sys.executable, str(launcher), ",".join(map(str, fds)), str(server), endpoint],
        pass_fds=fds, env=clean_env(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def talk(address: tuple[str, int] | str, family: int = socket.AF_INET) -> bytes:
    with socket.socket(family) as client:
        client.settimeout(15)
        client.connect(address)
        client.sendall(b"hello\n")
        return client.recv(100)


def finish(child: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = child.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
    return child.returncode, out, err


def listener(family: int = socket.AF_INET, address: object = ("127.0.0.1", 0)) -> socket.socket:
    sock = socket.socket(family)
    sock.bind(address)
    sock.listen()
    return sock


def test_systemd_by_index(tmp_path: Path) -> None:
    with listener() as sock:
        port = sock.getsockname()[1]
        child = activate(tmp_path, [sock], "systemd:domain=INET:index=0")
        reply = talk(("127.0.0.1", port))
        status, out, err = finish(child)
    assert reply == b"activated hello\n"
    assert (status, out) == (0, f"serving tcp:127.0.0.1:{port}\n"), err


def test_systemd_by_name_among_several_sockets(tmp_path: Path) -> None:
    path = tmp_path / "activated.sock"
    with listener() as inet, listener(socket.AF_UNIX, str(path)) as unix:
        child = activate(tmp_path, [inet, unix], "systemd:domain=UNIX:name=control",
                         names="web:control")
        reply = talk(str(path), socket.AF_UNIX)
        status, out, err = finish(child)
    assert reply == b"activated hello\n"
    assert (status, out) == (0, f"serving unix:{path}\n"), err


@pytest.mark.parametrize(("endpoint", "names", "reason"), [
    ("systemd:domain=INET:index=1", None,
     "index 1 is out of range: systemd passed 1 socket(s) (indexes 0 to 0)"),
    ("systemd:domain=INET:name=admin", "web",
     "no passed socket is named 'admin' in LISTEN_FDNAMES (names: 'web')"),
    ("systemd:domain=INET6:index=0", None,
     "passed socket 0 (fd 3) is AF_INET/SOCK_STREAM, not AF_INET6/SOCK_STREAM"),
])
def test_systemd_errors_in_the_child(tmp_path: Path, endpoint: str, names: str | None,
                                     reason: str) -> None:
    with listener() as sock:
        status, out, err = finish(activate(tmp_path, [sock], endpoint, names=names))
    assert (status, out) == (
        3, f"error: a StreamServerService failed to start: cannot listen on {endpoint}: {reason}\n"
    ), err


def test_systemd_without_activation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    with pytest.raises(ListenError) as caught:
        StreamServerService("systemd:domain=INET:index=0", None).privileged_start()
    assert str(caught.value) == ("cannot listen on systemd:domain=INET:index=0: LISTEN_FDS is not "
                                 "set: this process was not started by systemd socket activation")


def test_systemd_sockets_meant_for_another_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("LISTEN_PID", str(os.getpid() + 1))
    with pytest.raises(ListenError) as caught:
        StreamServerService("systemd:domain=INET:index=0", None).privileged_start()
    assert str(caught.value) == (
        f"cannot listen on systemd:domain=INET:index=0: LISTEN_PID is {os.getpid() + 1}, not "
        f"this process ({os.getpid()}): the sockets were meant for another one")
