"""``dropins dns`` end to end: the real CLI answering ``dig`` (bind9-dnsutils) over UDP and TCP."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _runner_helpers import Dropins, assert_no_traceback
from conftest import run_dropins

pytest.importorskip("dns", reason="dnspython is in the dns extra: pip install 'dropins[dns]'")
needs_dig = pytest.mark.skipif(shutil.which("dig") is None,
                               reason="dig is missing: apt-get install bind9-dnsutils")

ZONE = """\
$TTL 3600
@        IN SOA ns1 hostmaster 2026120201 3600 600 86400 300
@        IN NS  ns1
ns1      IN A   127.0.0.1
www      IN A   192.0.2.10
www      IN AAAA 2001:db8::10
alias    IN CNAME www
a.b.deep IN A   192.0.2.20
sub      IN NS  ns.sub
ns.sub   IN A   192.0.2.53
""" + "".join(f'big IN TXT "{"x" * 60} {n}"\n' for n in range(30))


def udp_and_tcp_port() -> int:
    """A loopback port free for both UDP and TCP (dig retries over TCP on the same port)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise AssertionError("no port free for both UDP and TCP")


def start_dns(zone_file: Path, *extra: str) -> tuple[Dropins, int]:
    port = udp_and_tcp_port()
    server = Dropins("dns", "--listen", f"udp:{port}:interface=127.0.0.1",
                     "--listen", f"tcp:{port}:interface=127.0.0.1",
                     "--zone", f"example.org={zone_file}", *extra)
    addresses = server.ready()
    assert addresses == [f"udp:127.0.0.1:{port}", f"tcp:127.0.0.1:{port}"]
    return server, port


def dig(port: int, *args: str) -> str:
    result = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+norec", "+time=3",
                             "+tries=2", *args], capture_output=True, text=True, timeout=30)
    return result.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    zone = tmp_path_factory.mktemp("dns") / "example.org.zone"
    zone.write_text(ZONE)
    process, port = start_dns(zone, "--rate-limit", "1000")
    with process:
        yield port
        assert process.stop() == 0
        assert_no_traceback(process.stderr)


@needs_dig
def test_an_authoritative_answer(server: int) -> None:
    out = dig(server, "www.example.org", "A")
    assert "status: NOERROR" in out and "flags: qr aa;" in out
    assert "www.example.org.\t3600\tIN\tA\t192.0.2.10" in out
    assert "udp: 1232" in out  # the EDNS size this server advertises


@needs_dig
def test_nxdomain_and_nodata_carry_the_soa(server: int) -> None:
    missing = dig(server, "nope.example.org", "A")
    assert "status: NXDOMAIN" in missing and "AUTHORITY: 1" in missing
    assert "example.org.\t\t300\tIN\tSOA" in missing  # TTL capped by the SOA minimum
    nodata = dig(server, "www.example.org", "MX")
    assert "status: NOERROR" in nodata and "ANSWER: 0, AUTHORITY: 1" in nodata
    assert "IN\tSOA" in nodata
    empty_non_terminal = dig(server, "deep.example.org", "A")
    assert "status: NOERROR" in empty_non_terminal and "ANSWER: 0" in empty_non_terminal


@needs_dig
def test_cname_referral_and_refusals(server: int) -> None:
    alias = dig(server, "alias.example.org", "A")
    assert "CNAME\twww.example.org." in alias and "IN\tA\t192.0.2.10" in alias
    referral = dig(server, "host.sub.example.org", "A")
    assert "flags: qr;" in referral  # not authoritative below the cut
    assert "sub.example.org.\t3600\tIN\tNS\tns.sub.example.org." in referral
    assert "ns.sub.example.org.\t3600\tIN\tA\t192.0.2.53" in referral
    assert "status: REFUSED" in dig(server, "example.com", "A")  # no open resolver
    transfer = subprocess.run(["dig", "@127.0.0.1", "-p", str(server), "example.org", "AXFR",
                               "+time=3", "+tries=1"], capture_output=True, text=True,
                              timeout=30).stdout
    assert "IN\tSOA" not in transfer and "Transfer failed" in transfer
    any_query = dig(server, "www.example.org", "ANY")
    assert "ANSWER: 1," in any_query  # one RRset, RFC 8482


@needs_dig
def test_truncation_and_tcp_fallback(server: int) -> None:
    truncated = dig(server, "+noedns", "+ignore", "big.example.org", "TXT")
    assert "flags: qr aa tc;" in truncated and "ANSWER: 0" in truncated
    fallback = dig(server, "+noedns", "big.example.org", "TXT")
    assert "Truncated, retrying in TCP mode" in fallback and "ANSWER: 30," in fallback
    over_tcp = dig(server, "+tcp", "big.example.org", "TXT")
    assert "ANSWER: 30," in over_tcp


def test_garbage_gets_formerr_and_responses_get_nothing(server: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        client.sendto(b"\x12\x34\x01\x00\x00\x01" + bytes(6) + b"junk", ("127.0.0.1", server))
        reply = client.recv(512)
        assert reply[:2] == b"\x12\x34" and reply[2] & 0x80 and reply[3] & 0x0F == 1
        client.sendto(b"\x12\x35\x81\x00" + bytes(8), ("127.0.0.1", server))  # QR set
        client.settimeout(0.5)
        with pytest.raises(TimeoutError):
            client.recv(512)  # never reflect to a response


@needs_dig
def test_sighup_reloads_the_zone_and_a_broken_file_keeps_the_old_one(tmp_path: Path) -> None:
    zone = tmp_path / "example.org.zone"
    zone.write_text(ZONE)
    server, port = start_dns(zone)
    with server:
        assert "status: NXDOMAIN" in dig(port, "new.example.org", "A")
        zone.write_text(ZONE + "new IN A 192.0.2.99\n")
        server.signal(signal.SIGHUP)
        server.wait_for_line(r"reloaded 1 zone")
        assert "IN\tA\t192.0.2.99" in dig(port, "new.example.org", "A")
        zone.write_text("this is not a zone\n")
        server.signal(signal.SIGHUP)
        server.wait_for_line(r"zones not reloaded")
        assert "IN\tA\t192.0.2.99" in dig(port, "new.example.org", "A")
        assert server.stop() == 0
    assert_no_traceback(server.stderr)


def test_rate_limit_per_client_slips_and_drops(tmp_path: Path) -> None:
    import dns.message

    zone = tmp_path / "example.org.zone"
    zone.write_text(ZONE)
    server, port = start_dns(zone, "--rate-limit", "2")
    query = dns.message.make_query("www.example.org", "A").to_wire()
    answered = truncated = 0
    with server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        for _ in range(40):
            client.sendto(query, ("127.0.0.1", port))
        client.settimeout(1.0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                reply = dns.message.from_wire(client.recv(2048))
            except TimeoutError:
                break
            if reply.flags & dns.flags.TC:
                truncated += 1
            else:
                answered += 1
        assert server.stop() == 0
    assert answered >= 1 and truncated >= 1
    assert answered + truncated < 40  # the rest were dropped


@pytest.mark.parametrize(("args", "message"), [
    (["--zone", "example.org"], "give NAME=FILE"),
    (["--zone", "example.org=/nonexistent/zone"], "cannot read zone file"),
    (["--zone", "example.org=BAD"], "example.org"),
    (["--zone", "example.org=ZONE", "--rate-limit", "0"], "invalid --rate-limit"),
    (["--zone", "example.org=ZONE", "--listen", "udp:99999"], "port must be a number"),
    ([], "--zone"),
])
def test_bad_options_exit_2_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.zone").write_text("@ IN A 192.0.2.1\n")  # no SOA
    (tmp_path / "good.zone").write_text(ZONE)
    args = [arg.replace("=BAD", f"={tmp_path / 'bad.zone'}")
            .replace("=ZONE", f"={tmp_path / 'good.zone'}") for arg in args]
    result = run_dropins("dns", *args, timeout=30)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3
    assert_no_traceback(result.stderr)


def test_cached_answers_keep_their_id_and_follow_a_reload(tmp_path: Path) -> None:
    import dns.message

    from dropins.servers.dns import Answers
    from dropins.servers.dns_zones import ZoneSet

    zone = tmp_path / "example.org.zone"
    zone.write_text(ZONE)
    answers = Answers(ZoneSet([("example.org", str(zone))]))
    query = dns.message.make_query("new.example.org", "A")
    for ident in (1, 2):
        query.id = ident
        reply = dns.message.from_wire(answers.respond(query.to_wire(), 1232) or b"")
        assert reply.id == ident and reply.rcode() == dns.rcode.NXDOMAIN
    zone.write_text(ZONE + "new IN A 192.0.2.99\n")
    assert answers.zones.reload()
    reply = dns.message.from_wire(answers.respond(query.to_wire(), 1232) or b"")
    assert reply.id == 2 and str(reply.answer[0][0]) == "192.0.2.99"


def test_rate_limiter_buckets_refill_and_forget() -> None:
    from dropins.servers import dns as dns_server

    now = [0.0]
    limiter = dns_server.RateLimiter(2, clock=lambda: now[0])
    assert [limiter.check("a") for _ in range(5)] == ["answer", "answer", "slip", "drop",
                                                      "slip"]
    assert limiter.check("b") == "answer"  # per client
    now[0] = 0.5  # one token back at 2 a second
    assert limiter.check("a") == "answer"
    assert limiter.check("a") in ("slip", "drop")
