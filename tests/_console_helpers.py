"""Helpers for the console tests: a telnet client that speaks enough of the NVT to log in,
and the running `dropins` console processes the tests share."""

from __future__ import annotations

import socket
import time

IAC, DONT, DO, WONT, WILL, SB, SE, IP = 255, 254, 253, 252, 251, 250, 240, 244
ECHO, NAWS = 1, 31

TIMEOUT = 20.0


class TelnetClient:
    """A blocking telnet client: telnet commands are taken out of what it reads (and kept in
    ``commands``), and it answers the server's ECHO offers as a real client does."""

    def __init__(self, port: int, timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.text = b""
        self.commands: list[tuple[int, int]] = []
        self._state = "data"
        self._verb = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> TelnetClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _take(self, data: bytes) -> None:
        for byte in data:
            if self._state == "data":
                if byte == IAC:
                    self._state = "iac"
                else:
                    self.text += bytes((byte,))
            elif self._state == "iac":
                if byte == IAC:
                    self.text += b"\xff"
                    self._state = "data"
                elif byte in (DO, DONT, WILL, WONT):
                    self._verb, self._state = byte, "option"
                else:
                    self._state = "data"
            else:
                self._state = "data"
                self.commands.append((self._verb, byte))
                if (self._verb, byte) == (WILL, ECHO):
                    self.send_raw(bytes((IAC, DO, ECHO)))
                elif (self._verb, byte) == (WONT, ECHO):
                    self.send_raw(bytes((IAC, DONT, ECHO)))

    def read_until(self, marker: str, timeout: float | None = None) -> str:
        """Everything up to and including ``marker`` (then consumed); fails after a timeout."""
        wanted = marker.encode()
        deadline = time.monotonic() + (timeout or self.timeout)
        while wanted not in self.text:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {marker!r} within the timeout; got {self.text!r}")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError(f"connection closed before {marker!r}; got {self.text!r}")
            self._take(data)
        end = self.text.index(wanted) + len(wanted)
        found, self.text = self.text[:end], self.text[end:]
        return found.decode("utf-8", "replace")

    def read_to_end(self) -> str:
        """Everything until the server closes the connection."""
        self.sock.settimeout(self.timeout)
        while data := self.sock.recv(65536):
            self._take(data)
        found, self.text = self.text, b""
        return found.decode("utf-8", "replace")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_line(self, line: str) -> None:
        self.send_raw(line.encode().replace(b"\xff", b"\xff\xff") + b"\r\n")

    def login(self, user: str, password: str) -> str:
        """Answer the login prompts; return what the server said next (up to the prompt)."""
        self.read_until("login: ")
        self.send_line(user)
        self.read_until("Password: ")
        self.send_line(password)
        return self.read_until(">>> ")

    def run(self, statement: str) -> str:
        """Send one line; return the output before the next primary prompt."""
        self.send_line(statement)
        return self.read_until(">>> ").removesuffix(">>> ").replace("\r\n", "\n")


def refused(port: int) -> bool:
    """Whether a TCP connection to the loopback ``port`` is refused."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def wait_until_refused(port: int, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if refused(port):
            return True
        time.sleep(0.05)
    return False
