"""The console over SSH, driven by the real OpenSSH client (``ssh``, and ``sshpass`` for
passwords), with the server's host key pinned in a known_hosts file of the test's own."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from _runner_helpers import Dropins
from conftest import get_free_port, run_dropins

pytestmark = pytest.mark.skipif(not (shutil.which("ssh") and shutil.which("sshpass")
                                     and shutil.which("ssh-keygen")),
                                reason="needs OpenSSH's ssh and ssh-keygen, and sshpass "
                                       "(installed by .ci/run)")


class Server:
    def __init__(self, folder: Path, port: int, process: Dropins) -> None:
        self.folder, self.port, self.process = folder, port, process
        self.known_hosts = folder / "known_hosts"
        self.client_key = folder / "client_key"


def start_server(folder: Path, port: int, host_key: Path) -> Dropins:
    process = Dropins("console", "--ssh", f"tcp:{port}:interface=127.0.0.1",
                      "--auth", "memory:alice:secret", "--authorized-keys",
                      str(folder / "authorized_keys"), "--host-key", str(host_key), cwd=folder)
    process.ready()
    return process


def pin_host_key(known_hosts: Path, port: int, host_key: Path) -> None:
    """Trust exactly the key the server wrote, for this port (no trust on first use)."""
    public = host_key.with_name(host_key.name + ".pub").read_text().split()
    with known_hosts.open("a") as file:
        file.write(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("ssh-console")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(folder / "client_key")], check=True, timeout=30)
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    port = get_free_port()
    with start_server(folder, port, folder / "host_key") as process:
        running = Server(folder, port, process)
        pin_host_key(running.known_hosts, port, folder / "host_key")
        yield running
        assert process.stop() == 0


def ssh_command(server: Server, user: str, *, password: str | None = None, port: int = 0,
                tty: bool = False) -> list[str]:
    command = ["ssh", "-F", "/dev/null", "-p", str(port or server.port),
               "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={server.known_hosts}",
               "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20",
               "-o", "LogLevel=ERROR", "-tt" if tty else "-T"]
    if password is None:
        command += ["-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
                    "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                    "-i", str(server.client_key)]
    else:
        command = ["sshpass", "-p", password, *command, "-o", "PubkeyAuthentication=no",
                   "-o", "PreferredAuthentications=password"]
    return [*command, f"{user}@127.0.0.1"]


def run_ssh(server: Server, user: str, script: str, **options: object
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(ssh_command(server, user, **options),  # type: ignore[arg-type]
                          input=script, capture_output=True, text=True, timeout=60)


def test_password_login_runs_statements_on_the_loop(server: Server) -> None:
    result = run_ssh(server, "alice", "await asyncio.sleep(0)\nprint(sorted(services))\n"
                                      "x = 5\nx * 2\n", password="secret")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("dropins console, Python")
    assert "['console', 'console/ssh']\n" in result.stdout
    assert ">>> 10\n" in result.stdout
    server.process.wait_for_line(r"console ssh#\d+: alice ran 'x \* 2'")


def test_public_key_login(server: Server) -> None:
    result = run_ssh(server, "bob", "print('key', 1 + 1)\n")
    assert result.returncode == 0, result.stderr
    assert "key 2\n" in result.stdout
    server.process.wait_for_line(r"console ssh#\d+: bob ran ")


def test_wrong_password_is_denied(server: Server) -> None:
    result = run_ssh(server, "alice", "print('in')\n", password="wrong")
    assert result.returncode != 0
    assert "dropins console" not in result.stdout
    server.process.wait_for_line(r"failed login of 'alice'")


def test_ctrl_c_in_a_pty_interrupts_the_statement(server: Server) -> None:
    """With a pty, asyncssh's line editor turns Ctrl-C into a break: the statement stops."""
    client = subprocess.Popen(ssh_command(server, "alice", password="secret", tty=True),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    assert client.stdin is not None and client.stdout is not None
    output = bytearray()
    reader = threading.Thread(target=copy_into, args=(client.stdout, output), daemon=True)
    reader.start()

    def wait_for(text: bytes, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in output:
            assert time.monotonic() < deadline, f"no {text!r} in {bytes(output)!r}"
            time.sleep(0.05)

    try:
        wait_for(b">>> ")
        client.stdin.write(b"await asyncio.sleep(60)\r")
        client.stdin.flush()
        server.process.wait_for_line(r"alice ran 'await asyncio.sleep\(60\)'")
        client.stdin.write(b"\x03")
        client.stdin.flush()
        wait_for(b"KeyboardInterrupt")
        client.stdin.write(b"print('after', 6 * 7)\r")
        client.stdin.flush()
        wait_for(b"after 42")
        client.stdin.write(b"\x04")
        client.stdin.close()
        assert client.wait(timeout=20) == 0
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()


def copy_into(stream: IO[bytes], output: bytearray) -> None:
    """Append what ``stream`` gives to ``output`` as it comes, until EOF."""
    while chunk := stream.read1(4096):  # type: ignore[attr-defined]
        output.extend(chunk)


def test_host_key_is_generated_private_and_kept_across_restarts(tmp_path: Path,
                                                                server: Server) -> None:
    host_key = tmp_path / "keys" / "host_key"
    shutil.copy(server.folder / "authorized_keys", tmp_path / "authorized_keys")
    port = get_free_port()
    with start_server(tmp_path, port, host_key) as first:
        assert first.stop() == 0
    assert stat.S_IMODE(os.stat(host_key).st_mode) == 0o600
    written = host_key.read_bytes()
    assert b"OPENSSH PRIVATE KEY" in written
    local = Server(tmp_path, port, first)
    local.client_key = server.client_key
    pin_host_key(local.known_hosts, port, host_key)
    with start_server(tmp_path, port, host_key) as second:
        result = run_ssh(local, "bob", "print('same key')\n")
        assert result.returncode == 0, result.stderr  # StrictHostKeyChecking=yes passed
        assert "same key" in result.stdout
        assert second.stop() == 0
    assert host_key.read_bytes() == written


@pytest.mark.parametrize(("content", "mode", "message"), [
    (None, 0o644, "is open to other users (mode 0644); make it private: chmod 600"),
    ("not a key\n", 0o600, "is not an SSH private key"),
])
def test_unusable_host_key_files_are_refused(tmp_path: Path, content: str | None, mode: int,
                                             message: str) -> None:
    host_key = tmp_path / "host_key"
    if content is None:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                       check=True, timeout=30)
    else:
        host_key.write_text(content)
    host_key.chmod(mode)
    result = run_dropins("console", "--ssh", f"tcp:{get_free_port()}:interface=127.0.0.1",
                         "--auth", "memory:alice:secret", "--host-key", str(host_key))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "WARNING" not in line]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_client_that_leaves_mid_statement_cancels_it(server: Server) -> None:
    client = subprocess.Popen(ssh_command(server, "alice", password="secret"),
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    assert client.stdin is not None
    try:
        client.stdin.write(b"try:\n    await asyncio.sleep(60)\nfinally:\n"
                           b"    app.ssh_client_left = True\n\n")
        client.stdin.flush()
        server.process.wait_for_line(r"alice ran 'try:.*sleep\(60\)")
    finally:
        client.kill()  # the connection drops, with no EOF first
        client.wait(timeout=20)
    deadline = time.monotonic() + 20
    while True:
        result = run_ssh(server, "alice", "print(getattr(app, 'ssh_client_left', False))\n",
                         password="secret")
        if "True\n" in result.stdout:
            break
        assert time.monotonic() < deadline, f"the statement was not cancelled: {result}"
        time.sleep(0.2)
