"""``dropins socks`` end to end: the real CLI relaying ``curl --socks4a/--socks5-hostname``."""

from __future__ import annotations

import http.server
import ipaddress
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from _runner_helpers import Dropins, assert_no_traceback, connect, host_port, recv_all
from conftest import run_dropins
from dropins.options import UsageError
from dropins.servers.socks_rules import Rules, parse_rule

needs_curl = pytest.mark.skipif(shutil.which("curl") is None,
                                reason="curl is missing: apt-get install curl")


class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"through the proxy\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[int]:
    """A loopback HTTP server for the proxy to reach."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def curl(proxy_flag: str, proxy: str, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "-m", "10", proxy_flag, proxy, *extra, url],
                          capture_output=True, text=True, timeout=30)


def proxy_address(server: Dropins) -> str:
    host, port = host_port(server.ready()[0])
    return f"{host}:{port}"


@needs_curl
def test_socks4_4a_and_5_relay_to_an_allowed_destination(web: int) -> None:
    with Dropins("socks", "--listen", "tcp:0:interface=127.0.0.1",
                 "--allow", f"127.0.0.1:{web}", "--allow", "localhost") as server:
        proxy = proxy_address(server)
        for flag, host in [("--socks4a", "localhost"), ("--socks5-hostname", "localhost"),
                           ("--socks4", "127.0.0.1"), ("--socks5", "127.0.0.1")]:
            result = curl(flag, proxy, f"http://{host}:{web}/")
            assert result.stdout == "through the proxy\n", (flag, result.stderr)
        other_port = curl("--socks5-hostname", proxy, f"http://127.0.0.1:{web + 1}/")
        assert other_port.returncode == 97 and "(2)" in other_port.stderr  # by ruleset
        assert server.stop() == 0
    assert_no_traceback(server.stderr)


@needs_curl
def test_loopback_is_refused_by_default_and_deny_beats_allow(web: int) -> None:
    with Dropins("socks", "--listen", "tcp:0:interface=127.0.0.1") as closed, \
            Dropins("socks", "--listen", "tcp:0:interface=127.0.0.1", "--allow", "127.0.0.0/8",
                    "--deny", f"127.0.0.1:{web}") as denying:
        for server in (closed, denying):
            proxy = proxy_address(server)
            five = curl("--socks5-hostname", proxy, f"http://127.0.0.1:{web}/")
            assert five.returncode == 97 and five.stdout == ""
            four = curl("--socks4a", proxy, f"http://127.0.0.1:{web}/")
            assert four.returncode == 97 and "(91)" in four.stderr
            server.wait_for_line(r"destination not allowed")
            assert server.stop() == 0
            assert_no_traceback(server.stderr)


@needs_curl
def test_socks5_password_logins_through_auth(web: int) -> None:
    with Dropins("socks", "--listen", "tcp:0:interface=127.0.0.1", "--allow", "127.0.0.1",
                 "--auth", "memory:alice:secret") as server:
        proxy = proxy_address(server)
        good = curl("--socks5-hostname", proxy, f"http://127.0.0.1:{web}/",
                    "--proxy-user", "alice:secret")
        assert good.stdout == "through the proxy\n", good.stderr
        wrong = curl("--socks5-hostname", proxy, f"http://127.0.0.1:{web}/",
                     "--proxy-user", "alice:guess")
        assert wrong.returncode == 97 and "rejected" in wrong.stderr
        none = curl("--socks5-hostname", proxy, f"http://127.0.0.1:{web}/")
        assert none.returncode == 97
        socks4 = curl("--socks4a", proxy, f"http://127.0.0.1:{web}/")  # no password in SOCKS4
        assert socks4.returncode == 97 and "(91)" in socks4.stderr
        assert server.stop() == 0
    assert_no_traceback(server.stderr)


def test_silent_clients_and_idle_relays_are_let_go() -> None:
    with socket.socket() as target:
        target.bind(("127.0.0.1", 0))
        target.listen()
        port = target.getsockname()[1]
        with Dropins("socks", "--listen", "tcp:0:interface=127.0.0.1", "--allow", "127.0.0.1",
                     "--handshake-timeout", "0.5", "--idle-timeout", "0.5") as server:
            address = server.ready()[0]
            with connect(address, timeout=10) as silent:
                assert recv_all(silent) == b""  # closed after the handshake timeout
            with connect(address, timeout=10) as idle:
                idle.sendall(b"\x05\x01\x00")
                assert idle.recv(2) == b"\x05\x00"
                idle.sendall(b"\x05\x01\x00\x01" + ipaddress.IPv4Address("127.0.0.1").packed
                             + port.to_bytes(2, "big"))
                reply = idle.recv(10)
                assert reply[:2] == b"\x05\x00"
                accepted, _ = target.accept()
                with accepted:
                    assert recv_all(idle) == b""  # nothing moved: closed after idle timeout
            with connect(address, timeout=10) as binder:  # BIND is refused by design
                binder.sendall(b"\x05\x01\x00")
                assert binder.recv(2) == b"\x05\x00"
                binder.sendall(b"\x05\x02\x00\x01" + bytes(4) + b"\x00\x50")
                assert binder.recv(10)[:2] == b"\x05\x07"
            assert server.stop() == 0
        assert_no_traceback(server.stderr)


def test_a_half_close_still_gets_the_answer() -> None:
    """A client that shuts down its sending side after the request still reads the reply."""
    with socket.socket() as target:
        target.bind(("127.0.0.1", 0))
        target.listen()
        port = target.getsockname()[1]

        def answer_after_eof() -> None:
            accepted, _ = target.accept()
            with accepted:
                accepted.settimeout(10)
                request = recv_all(accepted)
                accepted.sendall(request.upper())

        thread = threading.Thread(target=answer_after_eof, daemon=True)
        thread.start()
        with Dropins("socks", "--listen", "tcp:0:interface=127.0.0.1",
                     "--allow", "127.0.0.1") as server:
            with connect(server.ready()[0], timeout=10) as client:
                client.sendall(b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01"
                               + port.to_bytes(2, "big"))
                assert client.recv(2) == b"\x05\x00"
                assert client.recv(10)[:2] == b"\x05\x00"
                client.sendall(b"hello")
                client.shutdown(socket.SHUT_WR)
                assert recv_all(client) == b"HELLO"
            assert server.stop() == 0
        thread.join(10)
        assert_no_traceback(server.stderr)


def test_rules_default_to_global_addresses_only() -> None:
    rules = Rules([parse_rule("*.example.org:443", "--allow")], [])
    address = ipaddress.ip_address
    assert rules.permits(None, address("8.8.8.8"), 53)
    for private in ("127.0.0.1", "10.1.2.3", "192.168.1.1", "169.254.169.254", "::1",
                    "fc00::1", "::ffff:127.0.0.1", "224.0.0.1", "0.0.0.0"):
        assert not rules.permits(None, address(private), 80), private
    assert rules.permits("www.example.org", address("10.0.0.5"), 443)
    assert not rules.permits("www.example.org", address("10.0.0.5"), 80)
    assert not rules.permits("example.org.evil", address("10.0.0.5"), 443)
    assert parse_rule("[2001:db8::]/32:80-90", "--allow").ports == (80, 90)
    with pytest.raises(UsageError, match="invalid --deny"):
        parse_rule("10.0.0.0/8:0", "--deny")


@pytest.mark.parametrize(("args", "message"), [
    (["--allow", "not a host"], "invalid --allow"),
    (["--deny", "10.0.0.0/8:99999"], "invalid --deny"),
    (["--max-connections", "0"], "invalid --max-connections"),
    (["--idle-timeout", "soon"], "invalid --idle-timeout"),
    (["--auth", "nosuchtype:x"], "nosuchtype"),
])
def test_bad_options_exit_2_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_dropins("socks", *args, timeout=30)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert_no_traceback(result.stderr)
