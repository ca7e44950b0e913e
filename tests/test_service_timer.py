"""TimerService: periodic sync and async calls, errors logged, bounded stop."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest

from _service_helpers import run
from dropins.service import Application, TimerService


def test_sync_function_is_called_now_and_then_every_interval() -> None:
    calls: list[float] = []

    async def scenario() -> float:
        began = time.monotonic()
        timer = TimerService(0.05, lambda: calls.append(time.monotonic()))
        await timer.start()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(calls) == 1  # now=True: the first call does not wait for the interval
        await asyncio.sleep(0.3)
        await timer.stop()
        elapsed = time.monotonic() - began
        count = len(calls)
        await asyncio.sleep(0.15)
        assert len(calls) == count  # no call after stop
        return elapsed

    elapsed = run(scenario())
    assert 3 <= len(calls) <= elapsed / 0.05 + 1
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    assert min(gaps) >= 0.04  # a late call does not make the next ones bunch up


def test_now_false_waits_for_the_first_interval_and_passes_args() -> None:
    seen: list[tuple[str, int]] = []

    async def scenario() -> None:
        timer = TimerService(0.2, lambda *args: seen.append(args), "tick", 7, now=False)
        await timer.start()
        await asyncio.sleep(0.05)
        assert seen == []
        await asyncio.sleep(0.3)
        await timer.stop()

    run(scenario())
    assert seen[0] == ("tick", 7)


def test_errors_are_logged_with_a_traceback_and_the_timer_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    outcomes: list[str] = []

    async def flaky() -> None:
        outcomes.append("call")
        if len(outcomes) == 1:
            raise ValueError("first call fails")

    async def scenario() -> int:
        timer = TimerService(0.02, flaky, name="flaky")
        await timer.start()
        for _ in range(200):
            if len(outcomes) >= 3:
                break
            await asyncio.sleep(0.01)
        await timer.stop()
        return timer.calls

    with caplog.at_level(logging.ERROR, logger="dropins.service"):
        calls = run(scenario())
    assert calls >= 3
    [record] = [r for r in caplog.records if r.name == "dropins.service"]
    assert "flaky" in record.getMessage()
    assert record.exc_info is not None and "first call fails" in str(record.exc_info[1])


def test_stop_waits_for_a_call_in_progress() -> None:
    events: list[str] = []

    async def slow() -> None:
        events.append("begin")
        await asyncio.sleep(0.2)
        events.append("end")

    async def scenario() -> None:
        app = Application(shutdown_timeout=5)
        timer = TimerService(10, slow)
        timer.set_parent(app)
        await app.start()
        await asyncio.sleep(0.05)
        await app.stop()
        events.append("stopped")

    run(scenario())
    assert events == ["begin", "end", "stopped"]


def test_stop_cancels_a_call_that_outlives_the_shutdown_timeout() -> None:
    events: list[str] = []

    async def stuck() -> None:
        events.append("begin")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    async def scenario() -> float:
        app = Application(shutdown_timeout=0.2)
        TimerService(10, stuck).set_parent(app)
        await app.start()
        await asyncio.sleep(0.05)
        began = time.monotonic()
        await app.stop()
        return time.monotonic() - began

    elapsed = run(scenario())
    assert events == ["begin", "cancelled"]
    assert 0.2 <= elapsed < 0.2 + 1.5


def test_stop_while_waiting_returns_at_once() -> None:
    async def scenario() -> float:
        timer = TimerService(60, lambda: None, now=False)
        await timer.start()
        began = time.monotonic()
        await timer.stop()
        assert not timer.running and timer.calls == 0
        return time.monotonic() - began

    assert run(scenario()) < 1.0


@pytest.mark.parametrize("interval", [0, -1])
def test_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(ValueError, match="interval must be a positive number of seconds"):
        TimerService(interval, print)
