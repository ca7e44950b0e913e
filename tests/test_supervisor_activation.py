"""systemd-socket-activate in front of ``dropins web``, one process and ``--workers 2``: the
sockets and NOTIFY_SOCKET a unit would pass, as docs/runner.md's unit and socket files do."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from _observe_helpers import NotifySocket, http_get
from _runner_helpers import Dropins, assert_no_traceback
from conftest import get_free_port

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
