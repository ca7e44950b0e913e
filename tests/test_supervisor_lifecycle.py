"""The lifecycle phases: listeners hear each move once, in order; a failing one harms nothing."""

from __future__ import annotations

import logging

import pytest

from dropins.supervisor.lifecycle import Lifecycle, Phase


def test_listeners_hear_each_move_once_in_order() -> None:
    lifecycle = Lifecycle()
    heard: list[tuple[str, Phase]] = []
    lifecycle.add_listener(lambda phase: heard.append(("first", phase)))
    lifecycle.add_listener(lambda phase: heard.append(("second", phase)))
    assert lifecycle.phase is Phase.STARTING and not lifecycle.ready
    lifecycle.enter(Phase.READY)
    lifecycle.enter(Phase.READY)  # no move, no news
    lifecycle.enter(Phase.STOPPING)
    assert heard == [("first", Phase.READY), ("second", Phase.READY),
                     ("first", Phase.STOPPING), ("second", Phase.STOPPING)]


def test_a_failing_listener_is_logged_and_the_others_still_hear(
        caplog: pytest.LogCaptureFixture) -> None:
    lifecycle = Lifecycle()
    heard: list[Phase] = []

    def broken(phase: Phase) -> None:
        raise RuntimeError("boom")

    lifecycle.add_listener(broken)
    lifecycle.add_listener(heard.append)
    with caplog.at_level(logging.ERROR, "dropins.supervisor"):
        lifecycle.enter(Phase.READY)
    assert heard == [Phase.READY] and lifecycle.ready
    assert "boom" in caplog.text
