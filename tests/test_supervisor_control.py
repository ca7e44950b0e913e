"""The control channel with one real worker process, spawned here as the supervisor would:
requests and replies (a request type added by the application in one function), heartbeats
that stop while the worker's event loop is blocked, and the worker's output re-logged."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import write_tree
from dropins.supervisor.control import RequestFailed
from dropins.supervisor.inherited import HandedSockets
from dropins.supervisor.spawning import spawn_worker

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="--workers is POSIX only")

APP = '''
import os
import time

from dropins import Application, StreamServerService
from dropins.supervisor.worker import request_handler


@request_handler("block")
def block(runner, message):
    """Block the event loop until the file named in the request exists."""
    while not os.path.exists(message["until"]):
        time.sleep(0.05)
    return {"blocked": True}


async def answer(reader, writer):
    writer.write(f"pid {os.getpid()}\\n".encode())
    await writer.drain()


application = Application()
StreamServerService("tcp:0:interface=127.0.0.1", answer).set_parent(application)
print("printed at import")
'''

WAIT = 30.0


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT} s: {what}"
        await asyncio.sleep(0.05)


def test_requests_heartbeats_and_output_of_a_real_worker(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    write_tree(tmp_path, {"app.py": APP})
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    release = tmp_path / "release"

    async def scenario() -> None:
        sockets = HandedSockets([("tcp:0:interface=127.0.0.1", [listener])])
        worker = await spawn_worker(7, ["--app", "app.py"], sockets, cwd=str(tmp_path))
        try:
            await asyncio.wait_for(worker.became_ready.wait(), WAIT)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await reader.readline() == f"pid {worker.pid}\n".encode()  # our socket
            writer.close()

            pong = await worker.request({"type": "ping"}, timeout=WAIT)
            assert (pong["pid"], pong["worker"], pong["phase"]) == (worker.pid, 7, "ready")
            with pytest.raises(RequestFailed, match="unknown request type 'nonsense'"):
                await worker.request({"type": "nonsense"}, timeout=WAIT)

            # a blocked loop sends no heartbeat; once free, it beats and replies again
            blocked = asyncio.ensure_future(
                worker.request({"type": "block", "until": str(release)}, timeout=WAIT))
            await wait_for(lambda: time.monotonic() - worker.last_heartbeat > 2.5,
                           "heartbeats to stop")
            assert not blocked.done()
            release.write_text("")
            assert (await blocked)["blocked"] is True
            await wait_for(lambda: time.monotonic() - worker.last_heartbeat < 1.5,
                           "heartbeats to resume")
        finally:
            worker.signal(signal.SIGTERM)
            status = await asyncio.wait_for(worker.exited, WAIT)
        assert status == 0

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    listener.close()
    messages = [record.getMessage() for record in caplog.records]
    prefix = "[worker 7 pid "
    assert any(m.startswith(prefix) and m.endswith("] printed at import") for m in messages)
    ready = [r for r in caplog.records if r.getMessage().endswith("] worker ready")]
    assert ready and ready[0].name == "dropins.runner" and ready[0].getMessage().startswith(prefix)
    assert os.environ.get("DROPINS_WORKER") is None  # nothing leaked into this process
