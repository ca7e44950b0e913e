"""dns, finger and socks composed in one application file, run by ``dropins -c``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from _runner_helpers import Dropins, assert_no_traceback, connect, recv_all
from test_servers_dns import ZONE, udp_and_tcp_port

pytest.importorskip("dns", reason="dnspython is in the dns extra: pip install 'dropins[dns]'")


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig is missing: apt-get install "
                                                        "bind9-dnsutils")
def test_three_servers_in_one_file(tmp_path: Path) -> None:
    (tmp_path / "example.org.zone").write_text(ZONE)
    (tmp_path / "users.toml").write_text('alice = "Gone fishing."\n')
    port = udp_and_tcp_port()
    (tmp_path / "net.toml").write_text(f"""\
name = "net"

[services.dns]
command = "dns"
zone = "example.org={tmp_path / 'example.org.zone'}"
listen = ["udp:{port}:interface=127.0.0.1", "tcp:{port}:interface=127.0.0.1"]

[services.finger]
command = "finger"
users = "users.toml"          # relative to this file's folder
listen = "tcp:0:interface=127.0.0.1"

[services.socks]
command = "socks"
listen = "tcp:0:interface=127.0.0.1"
""")
    with Dropins("-c", str(tmp_path / "net.toml"), cwd="/") as server:
        addresses = server.ready()
        assert addresses[:2] == [f"udp:127.0.0.1:{port}", f"tcp:127.0.0.1:{port}"]
        assert len(addresses) == 4
        answer = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+short",
                                 "www.example.org"], capture_output=True, text=True,
                                timeout=30).stdout
        assert answer.strip() == "192.0.2.10"
        host, finger_port = addresses[2].split(":")[1:]
        with connect(f"tcp:{host}:{finger_port}") as client:
            client.sendall(b"alice\r\n")
            assert "Gone fishing." in recv_all(client).decode()
        assert server.stop() == 0
    assert_no_traceback(server.stderr)
