"""systemd notify, the watchdog and ``--health`` with ``--workers 2``: one view of all workers."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from _observe_helpers import NotifySocket, http_get, send_mark, wait_until, write_steered_app
from _runner_helpers import Dropins, assert_no_traceback, connect
from conftest import get_free_port

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="workers are POSIX")



def test_ready_once_both_workers_are_aggregated_metrics_and_a_stuck_worker_stops_the_watchdog(
        tmp_path: Path, notify_socket: NotifySocket) -> None:
    app, triggers = write_steered_app(tmp_path)
    (triggers / "release").touch()
    port = get_free_port()
    env = {"NOTIFY_SOCKET": notify_socket.name, "WATCHDOG_USEC": "400000",
           "TEST_MARK_SOCKET": notify_socket.name, "TEST_TRIGGERS": str(triggers),
           "TEST_BLOCK_SECONDS": "6"}  # past the supervisor's 3 s without a heartbeat
    with Dropins("--workers", "2", "--health", f"tcp:{port}:interface=127.0.0.1",
                 "--app", str(app), env=env) as dropins:
        dropins.wait_for_line(r"health: serving")
        (triggers / "go1").touch()
        dropins.wait_for_line(r"worker 1 pid \d+ ready")
        assert http_get(port, "/readyz")[::2] == (503, "not ready: starting\n")
        assert "READY" not in notify_socket.kinds()  # one worker of two is not enough

        (triggers / "go2").touch()
        (address,) = dropins.ready()
        pids = [int(pid) for pid in dropins.wait_for_line(r"workers ready: pids (.+)$")
                .group(1).split(", ")]
        ready = notify_socket.wait_for("READY", "1")
        assert notify_socket.messages[ready]["MAINPID"] == str(dropins.process.pid)
        assert notify_socket.messages[ready]["STATUS"].startswith("ready: 2 workers, ")
        assert http_get(port, "/readyz")[::2] == (200, "ok\n")
        (triggers / "unready").touch()
        status, _, body = http_get(port, "/readyz")
        assert status == 503
        assert re.fullmatch(r"not ready: worker \d pid \d+: service 'gate' is not ready\n", body)
        (triggers / "unready").unlink()
        assert http_get(port, "/livez")[::2] == (200, "ok\n")

        clients = [connect(address) for _ in range(3)]
        try:
            for client in clients:
                client.sendall(b"ping\n")
                assert client.recv(100) == b"ping\n"
            text = http_get(port, "/metrics")[2]
        finally:
            for client in clients:
                client.close()
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(text) for s in family.samples}
        echo = (("endpoint", "tcp:0:interface=127.0.0.1"), ("service", "echo"))
        assert samples[("dropins_connections_open", echo)] == 3  # summed over both workers
        assert samples[("dropins_connections_total", echo)] == 3
        assert samples[("dropins_workers_ready", ())] == 2
        for worker in ("1", "2", "supervisor"):
            assert samples[("process_resident_memory_bytes", (("worker", worker),))] > 0

        watchdog = notify_socket.wait_for("WATCHDOG", "1", after=ready)
        os.kill(pids[0], signal.SIGUSR2)  # that worker's loop blocks for 6 s
        notify_socket.wait_for("X-BLOCK-BEGIN", after=watchdog)
        wait_until(lambda: http_get(port, "/livez")[0] == 503, "/livez says 503", 10)
        send_mark(notify_socket.name, "X-LIVEZ-FAILED=1")
        failed = notify_socket.wait_for("X-LIVEZ-FAILED")
        end = notify_socket.wait_for("X-BLOCK-END", after=failed)
        assert not [m for m in notify_socket.messages[failed:end] if "WATCHDOG" in m]
        notify_socket.wait_for("WATCHDOG", "1", after=end)  # its heartbeats are back
        wait_until(lambda: http_get(port, "/livez")[0] == 200, "/livez says 200 again")

        assert dropins.stop() == 0
    notify_socket.wait_for("STOPPING", "1")
    assert notify_socket.kinds() == ["READY", "X-BLOCK-BEGIN", "X-LIVEZ-FAILED", "X-BLOCK-END",
                                    "STOPPING"]
    assert_no_traceback(dropins.stderr)
