"""``dropins words`` with a real client: the Debian irssi, driven in tmux, talks to a
plain-socket client in a channel."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from _words_helpers import Client, words_server


def _tmux(socket: Path, *args: str) -> str:
    return subprocess.run(["tmux", "-S", str(socket), *args], capture_output=True, text=True,
                          timeout=10, check=True).stdout


def _wait_for_screen(socket: Path, text: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux(socket, "capture-pane", "-p", "-t", "irc")
        if text in screen:
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not on irssi's screen within {timeout} s:\n{screen}")


def test_irssi_registers_joins_and_talks_with_another_client(tmp_path: Path) -> None:
    for tool in ("irssi", "tmux"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian package {tool}; .ci/run installs it)")
    socket = tmp_path / "tmux.sock"
    home = tmp_path / "irssi"
    home.mkdir()
    with words_server(tmp_path) as (_, address):
        bob = Client(address)
        bob.register("bob")
        bob.send("JOIN #chat")
        bob.expect("366")
        _tmux(socket, "new-session", "-d", "-s", "irc", "-x", "160", "-y", "40",
              f"irssi --home={home} -n ircuser -c {address[0]} -p {address[1]}")
        try:
            deadline = time.monotonic() + 15
            while True:  # irssi has registered once the server knows its nick
                bob.send("WHOIS ircuser")
                if bob.expect("318") and any(
                        " 311 bob ircuser " in line for line in bob.seen[-4:]):
                    break
                assert time.monotonic() < deadline, "irssi did not register within 15 s"
                time.sleep(0.1)
            _tmux(socket, "send-keys", "-t", "irc", "/join #chat", "Enter")
            assert bob.expect("JOIN")[0].startswith("ircuser!")
            _tmux(socket, "send-keys", "-t", "irc", "hello from irssi", "Enter")
            said = bob.expect("PRIVMSG")
            assert said[0].startswith("ircuser!") and said[2:] == ["#chat", "hello from irssi"]
            bob.send("PRIVMSG #chat :hello irssi, from bob")
            _wait_for_screen(socket, "hello irssi, from bob")
            _tmux(socket, "send-keys", "-t", "irc", "/quit leaving", "Enter")
            assert bob.expect("QUIT")[0].startswith("ircuser!")
        finally:
            subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True,
                           timeout=10)
