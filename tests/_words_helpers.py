"""Helpers for the ``dropins words`` tests: a plain-socket IRC client with deadlines, and
``dropins words`` on a free loopback port."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _runner_helpers import Dropins, host_port

TIMEOUT = 10.0


def split_line(text: str) -> list[str]:
    """``[source, command, *params]`` of a server line (tags dropped)."""
    if text.startswith("@"):
        text = text.split(" ", 1)[1]
    source = ""
    if text.startswith(":"):
        source, _, text = text[1:].partition(" ")
    head, _, trailing = text.partition(" :")
    params = head.split()
    if _:
        params.append(trailing)
    return [source, *params]


class Client:
    """A line-at-a-time IRC client on a real socket; every wait is bounded."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=TIMEOUT)
        self.buffer = b""
        self.seen: list[str] = []

    def send(self, *lines: str) -> None:
        self.sock.sendall("".join(line + "\r\n" for line in lines).encode())

    def line(self, timeout: float = TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line within {timeout} s; seen: {self.seen[-10:]}")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed; seen: {self.seen[-10:]}")
            self.buffer += data
        raw, self.buffer = self.buffer.split(b"\r\n", 1)
        text = raw.decode("utf-8", "replace")
        self.seen.append(text)
        self.last_tags = self.line_tags(text)
        return text

    def expect(self, word: str, timeout: float = TIMEOUT) -> list[str]:
        """Lines up to the first whose command (or numeric) is ``word``; that line as
        ``[source, command, *params]`` (the trailing parameter one item, without its colon);
        its tags are left in ``self.tags``."""
        while True:
            reply = split_line(self.line(timeout))
            if reply[1] == word:
                self.tags = self.last_tags
                return reply
            self.last_tags = ""

    tags = ""
    last_tags = ""

    def line_tags(self, text: str) -> str:
        return text.split(" ", 1)[0] if text.startswith("@") else ""

    def register(self, nick: str, *before: str) -> None:
        self.send(*before, f"NICK {nick}", f"USER {nick} 0 * :{nick} real")
        self.expect("001")
        self.expect("422")

    def closed(self, timeout: float = TIMEOUT) -> bool:
        """Whether the server closes the connection (lines before that are read away)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return True
            except TimeoutError:
                return False
            if not data:
                return True
            self.buffer += data
        return False

    def close(self) -> None:
        self.sock.close()


@contextmanager
def words_server(tmp_path: Path, *args: str, db: str = "words.db") -> Iterator[
        tuple[Dropins, tuple[str, int]]]:
    with Dropins("words", "--irc", "tcp:0:interface=127.0.0.1", "--db", str(tmp_path / db),
                 *args, cwd=tmp_path) as server:
        address = host_port(server.ready()[0])
        yield server, address
        server.stop()
