"""systemd-socket-activate in front of ``dropins web``, one process and ``--workers 2``: the
sockets and NOTIFY_SOCKET a unit would pass, as docs/runner.md's unit and socket files do."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from _observe_helpers import NotifySocket, http_get
from _runner_helpers import Dropins, assert_no_traceback
from conftest import REPO, get_free_port

ACTIVATE = shutil.which("systemd-socket-activate")
pytestmark = pytest.mark.skipif(ACTIVATE is None or sys.platform == "win32",
                                reason="needs systemd-socket-activate (Debian: systemd)")


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["single", "workers"])
def test_socket_activation_serves_and_notifies(tmp_path: Path, workers: list[str]) -> None:
    (tmp_path / "index.html").write_text("activated\n")
    port, health = get_free_port(), get_free_port()
    folder = tempfile.mkdtemp(prefix="notify")
    notify_socket = NotifySocket(os.path.join(folder, "notify.sock"))
    try:
        # systemd-socket-activate passes only the variables named with -E, as systemd would.
        with Dropins("-l", f"127.0.0.1:{port}", "--fdname=web", "-E", "NOTIFY_SOCKET",
                     sys.executable, "-m", "dropins", *workers, "--health",
                     f"tcp:{health}:interface=127.0.0.1", "web", "--path", str(tmp_path),
                     "--listen", "systemd:domain=INET:name=web", executable=str(ACTIVATE),
                     env={"NOTIFY_SOCKET": notify_socket.name}) as dropins:
            dropins.wait_for_line(rf"Listening on 127\.0\.0\.1:{port}")
            # It launches dropins on the first connection, which waits in the backlog.
            assert http_get(port, "/") == (200, "text/html; charset=utf-8", "activated\n")
            notify_socket.wait_for("READY", "1")
            assert http_get(port, "/")[2] == "activated\n"
            assert http_get(health, "/readyz")[0] == 200
            assert dropins.stop() == 0
        notify_socket.wait_for("STOPPING", "1")
        assert notify_socket.kinds() == ["READY", "STOPPING"]
        if workers:
            assert "2 workers ready" in dropins.stderr
        assert_no_traceback(dropins.stderr)
    finally:
        notify_socket.close()
        os.rmdir(folder)


def documented_file(name: str) -> str:
    """The ``ini``/``toml`` block that follows the mention of ``name`` in docs/runner.md."""
    text = (REPO / "docs" / "runner.md").read_text()
    block = rf"`{re.escape(name)}`(?:(?!```).)*?:\n\n```(?:ini|toml)\n(.*?)```"
    match = re.search(block, text, re.S)
    assert match, f"docs/runner.md shows no {name}"
    return match.group(1)


def ini_value(text: str, key: str) -> str:
    match = re.search(rf"^{key}=(.*)$", text, re.M)
    assert match, key
    return match.group(1)


def test_the_documented_units_verify_and_run_behind_socket_activation(tmp_path: Path) -> None:
    socket_unit, service_unit = documented_file("shop.socket"), documented_file("shop.service")
    shop_toml = documented_file("/etc/shop/shop.toml")
    dropins_script = Path(sys.executable).parent / "dropins"
    units = tmp_path / "units"
    units.mkdir()
    (units / "shop.socket").write_text(socket_unit)
    (units / "shop.service").write_text(
        service_unit.replace("/opt/shop/bin/dropins", str(dropins_script)))
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        checked = subprocess.run([analyze, "verify", str(units / "shop.socket"),
                                  str(units / "shop.service")], capture_output=True,
                                 text=True, timeout=60)
        assert (checked.returncode, checked.stderr) == (0, "")
    assert ini_value(service_unit, "Type") == "notify"

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("shop\n")
    (tmp_path / "shop.toml").write_text(shop_toml.replace("/srv/shop", str(site)))
    port, health = get_free_port(), get_free_port()
    command = shlex.split(ini_value(service_unit, "ExecStart"))[1:]
    command = [{"tcp:9090:interface=127.0.0.1": f"tcp:{health}:interface=127.0.0.1",
                "/etc/shop/shop.toml": str(tmp_path / "shop.toml")}.get(arg, arg)
               for arg in command]
    watchdog_usec = str(int(ini_value(service_unit, "WatchdogSec")) * 1_000_000)
    folder = tempfile.mkdtemp(prefix="notify")
    notify_socket = NotifySocket(os.path.join(folder, "notify.sock"))
    try:
        # ListenStream=8080 is a dual-stack IPv6 socket: [::1] keeps the test on loopback.
        with Dropins("-l", f"[::1]:{port}",
                     f"--fdname={ini_value(socket_unit, 'FileDescriptorName')}",
                     "-E", "NOTIFY_SOCKET", "-E", "WATCHDOG_USEC", str(dropins_script), *command,
                     executable=str(ACTIVATE),
                     env={"NOTIFY_SOCKET": notify_socket.name,
                          "WATCHDOG_USEC": watchdog_usec}) as dropins:
            dropins.wait_for_line(rf"Listening on \[::1\]:{port}")
            assert http_get(port, "/", host="::1")[2] == "shop\n"
            ready = notify_socket.wait_for("READY", "1")
            assert notify_socket.messages[ready]["STATUS"].startswith("ready: 2 workers")
            notify_socket.wait_for("WATCHDOG", "1", after=ready)
            assert http_get(health, "/readyz")[0] == 200
            dropins.signal(signal.SIGHUP)  # ExecReload: a rolling restart of the workers
            reloading = notify_socket.wait_for("RELOADING", "1", after=ready)
            notify_socket.wait_for("READY", "1", after=reloading)
            assert http_get(port, "/", host="::1")[2] == "shop\n"
            assert dropins.stop() == 0
        notify_socket.wait_for("STOPPING", "1")
        assert notify_socket.kinds() == ["READY", "RELOADING", "READY", "STOPPING"]
        assert "restarted 2 workers" in dropins.stderr
        assert_no_traceback(dropins.stderr)
    finally:
        notify_socket.close()
        os.rmdir(folder)
