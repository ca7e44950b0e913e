"""Helpers for the web tests: a real ``dropins web`` process and small bounded HTTP clients.

``WebProcess`` runs ``python -m dropins web ... --listen tcp:0:interface=127.0.0.1`` and
learns the port from the runner's ``ready:`` line on stderr; every wait is bounded, and the
process is killed if it does not stop, so no test can hang the suite.
"""

from __future__ import annotations

import http.client
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from conftest import clean_env

READY = re.compile(r"ready: web listening on (?:.*, )?tcp:127\.0\.0\.1:(\d+)")
LISTEN = ["--listen", "tcp:0:interface=127.0.0.1"]


class WebProcess:
    """A running ``dropins web`` server; use as a context manager."""

    def __init__(self, args: Sequence[str], cwd: str | Path | None = None,
                 env: Mapping[str, str] | None = None, startup_timeout: float = 20,
                 runner_args: Sequence[str] = ()) -> None:
        self.args = [sys.executable, "-m", "dropins", *runner_args, "web", *args, *LISTEN]
        self.cwd = cwd
        self.env = clean_env(env)
        self.startup_timeout = startup_timeout
        self.port = 0
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.process: subprocess.Popen[str] | None = None
        self.returncode: int | None = None
        self._terminated = False

    def __enter__(self) -> WebProcess:
        self.process = subprocess.Popen(self.args, cwd=self.cwd, env=self.env, text=True,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self._ready.wait(self.startup_timeout) or not self.port:
            self.kill()
            raise AssertionError(f"dropins web did not become ready:\n{self.stderr}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            with self._lock:
                self.lines.append(line)
            match = READY.search(line)
            if match:
                self.port = int(match.group(1))
                self._ready.set()
        self._ready.set()

    @property
    def stderr(self) -> str:
        with self._lock:
            return "".join(self.lines)

    def wait_for_log(self, pattern: str, timeout: float = 5) -> str:
        """The first stderr line matching ``pattern``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in self.stderr.splitlines():
                if regex.search(line):
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no log line matching {pattern!r} in:\n{self.stderr}")

    def terminate(self) -> None:
        """Send SIGTERM once (a second one would force the runner to exit at once)."""
        assert self.process is not None
        if not self._terminated and self.process.poll() is None:
            self._terminated = True
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, wait (bounded), return the exit status; kill if it does not stop."""
        assert self.process is not None
        self.terminate()
        try:
            self.returncode = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"dropins web did not stop on SIGTERM:\n{self.stderr}")
        return self.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    # -- clients
    def connection(self, timeout: float = 10) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method: str, path: str, headers: Mapping[str, str] | None = None,
                body: bytes | None = None, timeout: float = 10) -> Response:
        """One request on a new connection with http.client; returns status, headers, body."""
        connection = self.connection(timeout)
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return Response(response.status, response.getheaders(), response.read())
        finally:
            connection.close()

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Response:
        return self.request("GET", path, headers)

    def raw(self, data: bytes, timeout: float = 5) -> bytes:
        """Send raw bytes and read until the server closes (or ``timeout`` passes)."""
        return raw_exchange(self.port, data, timeout)


class Response:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.header_list = headers
        self.headers = {name.lower(): value for name, value in headers}
        self.body = body

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.headers} {self.body[:80]!r}>"


def raw_exchange(port: int, data: bytes, timeout: float = 5) -> bytes:
    """Send ``data`` on a new connection; return all bytes received until close or timeout."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(raw: bytes) -> int:
    """The status code of the first response in ``raw`` (0 when there is none)."""
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", raw)
    return int(match.group(1)) if match else 0


def read_responses(sock: socket.socket, count: int, timeout: float = 5) -> list[Response]:
    """Read ``count`` responses from a keep-alive socket with h11 (a real client parser)."""
    import h11

    client = h11.Connection(h11.CLIENT)
    deadline = time.monotonic() + timeout
    responses: list[Response] = []
    while len(responses) < count:
        # h11 parses a response only after "sending" a request; these never leave the process.
        client.send(h11.Request(method="GET", target="/", headers=[("Host", "test")]))
        client.send(h11.EndOfMessage())
        current: Response | None = None
        body = bytearray()
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"got {len(responses)} of {count} responses")
                sock.settimeout(remaining)
                client.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                current = Response(event.status_code, [(name.decode(), value.decode())
                                                       for name, value in event.headers], b"")
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert current is not None
                current.body = bytes(body)
                responses.append(current)
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError(f"closed after {len(responses)} of {count} responses")
        if len(responses) < count:
            client.start_next_cycle()
    return responses


def wait_until(predicate: object, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.02)
    return False


def sockets_in_state(port: int, state: str = "CLOSE_WAIT", peer_port: int = 0) -> int:
    """How many TCP sockets on this machine have local port ``port`` and ``state`` (and the
    remote port ``peer_port``, if given: the server side of one client's connection).

    Read from /proc/net/tcp{,6} (Linux), which tells a socket's state as a hex code.
    """
    codes = {"ESTABLISHED": "01", "CLOSE_WAIT": "08"}
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == codes[state] \
                    and (not peer_port or int(fields[2].rsplit(":", 1)[1], 16) == peer_port):
                count += 1
    return count


def open_fds(pid: int) -> int:
    """How many file descriptors process ``pid`` holds (Linux /proc)."""
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def peak_memory(pid: int) -> int:
    """The peak resident memory of process ``pid`` so far, in bytes (VmHWM, Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def upload(port: int, path: str, size: int, block: int = 1 << 20, timeout: float = 60) -> bytes:
    """POST ``size`` bytes to ``path`` in blocks, never holding the whole body; return the
    raw answer (read until the server closes)."""
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n"
            "Connection: close\r\n\r\n").encode()
    piece = b"u" * block
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        remaining = size
        while remaining > 0:
            sock.sendall(piece[:remaining])
            remaining -= block
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def flood(sock: socket.socket, byte: bytes = b"a", limit: int = 64 * 1024 * 1024) -> int:
    """Send ``byte`` in 64 KiB blocks until the server answers, resets or has taken ``limit``
    bytes; return how many were sent (the test asserts the server stopped it far sooner)."""
    block = byte * 65536
    sent = 0
    try:
        while sent < limit and not select.select([sock], [], [], 0)[0]:
            sock.sendall(block)
            sent += len(block)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def read_until_closed(sock: socket.socket, timeout: float = 10) -> bytes:
    """Everything the server sends until it closes or resets (or ``timeout`` passes)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data
