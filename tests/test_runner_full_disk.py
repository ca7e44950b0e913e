"""A log file on a full disk: lines are dropped (and counted), the service keeps serving.

The disk is a real 64 KiB tmpfs, filled up by a filler file and freed again by deleting it.
"""

from __future__ import annotations

import re
import signal
import sys
import time
from pathlib import Path

import pytest

from _runner_helpers import (
    Dropins,
    assert_no_traceback,
    connect,
    fill_up,
    recv_exactly,
    small_filesystem,
)
from conftest import write_tree

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="mounts a tmpfs")

#: Logs a line every 20 ms, and echoes on a loopback port (to show it keeps serving).
TICKING_ECHO = """
    import logging

    from dropins import Application, StreamServerService, TimerService

    log = logging.getLogger("tick")


    async def echo(reader, writer):
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()


    application = Application()
    application.add_service(StreamServerService("tcp:0:interface=127.0.0.1", echo))
    application.add_service(TimerService(0.02, lambda: log.info("tick %s", "x" * 200)))
    """


def wait_for_text(path: Path, pattern: str, timeout: float = 20.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while True:
        match = re.search(pattern, path.read_text(errors="replace") if path.exists() else "")
        if match:
            return match
        assert time.monotonic() < deadline, f"no {pattern!r} in {path} within {timeout} s"
        time.sleep(0.05)


def test_full_disk_drops_lines_says_so_once_and_counts_them(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app.py": TICKING_ECHO})
    with small_filesystem(tmp_path / "disk") as disk:
        logfile = disk / "app.log"
        with Dropins("--logfile", str(logfile), "--app", "app.py", cwd=tmp_path) as dropins:
            address = wait_for_text(logfile, r"ready: \S+ listening on (\S+)").group(1)
            filler = fill_up(disk)
            dropins.wait_for_line(rf"log file {re.escape(str(logfile))}: no space left; "
                                  "dropping lines$")
            time.sleep(1.0)  # a second of ticks (~50 lines) with the disk still full
            with connect(address) as sock:  # still serving
                sock.sendall(b"full\n")
                assert recv_exactly(sock, 5) == b"full\n"
            assert dropins.process.poll() is None
            filler.unlink()
            match = dropins.wait_for_line(rf"log file {re.escape(str(logfile))}: writing "
                                          r"again; dropped (\d+) lines$")
            dropped = int(match.group(1))
            assert dropped >= 10
            # the note starts a line of its own, even after a line the failed write cut short
            wait_for_text(logfile, rf"\n\S+ \S+ WARNING dropins.runner: dropped {dropped} lines "
                                   r"while log file .* could not be written: no space left\n"
                                   r"(.*\n)*.* tick x+\n")
            dropins.signal(signal.SIGTERM)
            assert dropins.wait(timeout=20) == 0
        assert dropins.stderr.count("dropping lines") == 1
        assert_no_traceback(dropins.stderr)
        assert "Logging error" not in dropins.stderr


def test_reopen_on_a_full_disk_closes_the_old_file_and_counts_its_lines(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """reopen() used to raise from flushing the old stream after replacing it: its descriptor
    leaked and the lines it held were lost without being counted."""
    import asyncio
    import logging

    from dropins.runner.logs import ReopenableFileHandler

    def record(text: str) -> logging.LogRecord:
        return logging.LogRecord("app", logging.INFO, __file__, 0, text, None, None)

    with small_filesystem(tmp_path / "disk") as disk:
        path = disk / "app.log"
        handler = ReopenableFileHandler(str(path), encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        try:
            async def rotate_before_the_flush() -> object:
                for index in range(3):  # held in the stream: the loop's next turn flushes
                    handler.handle(record(f"held {index}"))
                fill_up(disk)
                path.rename(disk / "app.log.1")  # logrotate, then SIGHUP
                old = handler.stream
                handler.reopen()
                return old

            old = asyncio.run(rotate_before_the_flush())
            assert old.closed  # type: ignore[attr-defined]
            assert capfd.readouterr().err == (f"dropins: log file {path}: no space left; "
                                              "dropping lines\n")
            (disk / "filler").unlink()
            handler.handle(record("after"))
            assert path.read_text().splitlines() == [
                f"dropped 3 lines while log file {path} could not be written: no space left",
                "after"]
            assert capfd.readouterr().err == (f"dropins: log file {path}: writing again; "
                                              "dropped 3 lines\n")
        finally:
            handler.close()
