"""``dropins mail`` end to end: swaks and curl deliver over SMTP, curl and fetchmail read over
POP3, STARTTLS/STLS with a trustme certificate, relays and unknown users refused, bad options."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from _runner_helpers import Dropins, assert_no_traceback, connect, host_port
from conftest import run_dropins

pytest.importorskip("aiosmtpd")
trustme = pytest.importorskip("trustme")

TIMEOUT = 30


def need(command: str) -> str:
    found = shutil.which(command)
    if found is None:
        pytest.skip(f"{command} is not installed (Debian package {command}; .ci/run installs it)")
    return found


def run(*command: str, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd,
                          env=env)


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Path]:
    authority = trustme.CA()
    cert = authority.issue_cert("localhost", "127.0.0.1", common_name="localhost")
    paths = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem"}
    authority.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return paths


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    folder = tmp_path / "mail"
    (folder / "alice").mkdir(parents=True)
    return folder


def serve(maildir: Path, *extra: str) -> Dropins:
    return Dropins("mail", "--smtp", "tcp:0:interface=127.0.0.1",
                   "--pop3", "tcp:0:interface=127.0.0.1", "--domain", "example.org",
                   "--maildir", str(maildir), "--auth", "memory:alice:secret", *extra)


@pytest.fixture
def server(maildir: Path) -> Iterator[tuple[str, str]]:
    with serve(maildir, "--max-size", "4K") as dropins:
        smtp, pop3 = dropins.ready()
        yield smtp, pop3
        assert dropins.stop() == 0
        assert_no_traceback(dropins.stderr)


def swaks(smtp: str, *args: str) -> subprocess.CompletedProcess[str]:
    host, port = host_port(smtp)
    return run(need("swaks"), "--server", f"{host}:{port}", "--timeout", "20", *args)


def test_swaks_delivers_and_curl_reads_over_pop3(server: tuple[str, str],
                                                  maildir: Path) -> None:
    smtp, pop3 = server
    sent = swaks(smtp, "--to", "alice@example.org", "--from", "bob@else.net",
                 "--header", "Subject: greetings", "--body", "first line\n.dotted line\n")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "250 2.0.0 Message accepted" in sent.stdout
    (stored,) = (maildir / "alice" / "new").iterdir()
    assert b"Subject: greetings" in stored.read_bytes()
    assert b"Return-Path: <bob@else.net>" in stored.read_bytes()

    _, port = host_port(pop3)
    base = f"pop3://127.0.0.1:{port}/"
    listing = run(need("curl"), "-sS", "--max-time", "20", "-u", "alice:secret", base)
    assert listing.returncode == 0, listing.stderr
    wire = stored.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert listing.stdout.split() == ["1", str(len(wire))]
    message = run("curl", "-sS", "--max-time", "20", "-u", "alice:secret", base + "1")
    assert message.returncode == 0, message.stderr
    assert "Subject: greetings" in message.stdout
    assert ".dotted line" in message.stdout.splitlines()  # the dot-stuffing is undone
    uidl = run("curl", "-sS", "--max-time", "20", "-u", "alice:secret", "-X", "UIDL", base)
    assert uidl.stdout.split() == ["1", stored.name.split(":")[0]]
    top = run("curl", "-sS", "--max-time", "20", "-u", "alice:secret", "-X", "TOP 1 0", base)
    assert "Subject: greetings" in top.stdout and "first line" not in top.stdout
    wrong = run("curl", "-sS", "--max-time", "20", "-u", "alice:nope", base)
    assert wrong.returncode != 0
    assert stored.exists()  # nothing was deleted by reading


def test_curl_smtp_delivers_and_relay_unknown_user_and_size_are_refused(
        server: tuple[str, str], maildir: Path, tmp_path: Path) -> None:
    smtp, _ = server
    _, port = host_port(smtp)
    letter = tmp_path / "letter.txt"
    letter.write_text("Subject: by curl\r\n\r\nhello\r\n")
    curl = [need("curl"), "-sS", "--max-time", "20", f"smtp://127.0.0.1:{port}",
            "--mail-from", "carol@else.net", "-T", str(letter)]
    assert run(*curl, "--mail-rcpt", "alice@example.org").returncode == 0
    assert len(list((maildir / "alice" / "new").iterdir())) == 1

    relay = swaks(smtp, "--to", "victim@other.org", "--from", "spam@else.net")
    assert relay.returncode != 0
    assert "550 5.7.1 Relaying denied" in relay.stdout
    unknown = swaks(smtp, "--to", "nobody@example.org", "--from", "bob@else.net")
    assert "550 5.1.1 No such user" in unknown.stdout
    traversal = swaks(smtp, "--to", "../alice@example.org", "--from", "bob@else.net")
    assert "550" in traversal.stdout
    big = swaks(smtp, "--to", "alice@example.org", "--from", "bob@else.net",
                "--body", ("x" * 70 + "\n") * 120)
    assert big.returncode != 0
    assert "552" in big.stdout  # message too big for the 4K limit
    forged = swaks(smtp, "--to", "alice@example.org", "--from", "alice@example.org")
    assert "530 5.7.0 Authentication required to send as alice@example.org" in forged.stdout
    authed = swaks(smtp, "--to", "alice@example.org", "--from", "alice@example.org",
                   "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "secret")
    assert authed.returncode == 0, authed.stdout  # plaintext AUTH allowed on loopback
    assert len(list((maildir / "alice" / "new").iterdir())) == 2
    assert not list(maildir.glob("*/tmp/*"))


def test_starttls_and_stls_with_tls_logins_only(maildir: Path, certs: dict[str, Path],
                                                tmp_path: Path) -> None:
    with serve(maildir, "--tls-cert", str(certs["cert"]), "--tls-key", str(certs["key"]),
               "--tls-logins-only") as dropins:
        smtp, pop3 = dropins.ready()
        plain = swaks(smtp, "--to", "alice@example.org", "--from", "alice@example.org",
                      "--auth", "LOGIN", "--auth-user", "alice", "--auth-password", "secret")
        assert plain.returncode != 0
        assert "250-AUTH" not in plain.stdout  # not offered before STARTTLS
        assert "did not advertise authentication" in plain.stderr
        tls = swaks(smtp, "--tls", "--to", "alice@example.org", "--from", "alice@example.org",
                    "--auth", "LOGIN", "--auth-user", "alice", "--auth-password", "secret")
        assert tls.returncode == 0, tls.stdout + tls.stderr
        assert "235 2.7.0 Authentication successful" in tls.stdout

        _, port = host_port(pop3)
        base = f"pop3://127.0.0.1:{port}/"
        refused = run(need("curl"), "-sS", "--max-time", "20", "-u", "alice:secret", base)
        assert refused.returncode != 0  # USER before STLS is refused even on loopback
        listed = run("curl", "-sS", "--max-time", "20", "--ssl-reqd", "--cacert",
                     str(certs["ca"]), "-u", "alice:secret", base)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.split()[0] == "1"

        home = tmp_path / "fetchmail"
        home.mkdir()
        rc = home / "fetchmailrc"
        rc.write_text(f"poll localhost via 127.0.0.1 protocol pop3 port {port}"
                      " user alice password secret sslproto 'tls1.2+' sslcertck"
                      f" sslcommonname localhost sslcertfile {certs['ca']}\n")
        rc.chmod(0o600)
        out = tmp_path / "fetched.bsmtp"
        fetched = run(need("fetchmail"), "-f", str(rc), "--bsmtp", str(out), "--nosyslog",
                      env={"HOME": str(home), "FETCHMAILHOME": str(home),
                           "PATH": "/usr/bin:/bin"})
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        assert "RCPT TO" in out.read_text() or "MAIL FROM" in out.read_text()
        assert not list((maildir / "alice" / "new").iterdir())  # fetchmail deleted it at QUIT
        assert dropins.stop() == 0
        assert_no_traceback(dropins.stderr)
        assert "still open" not in dropins.stderr  # STARTTLS sessions were not left counted


def test_pop3_dialogue_deletes_only_at_quit_and_locks(server: tuple[str, str],
                                                       maildir: Path) -> None:
    smtp, pop3 = server
    for number in range(2):
        assert swaks(smtp, "--to", "alice@example.org", "--from", "b@else.net",
                     "--body", f"message {number}").returncode == 0
    first = connect(pop3)
    reader = first.makefile("rb")

    def ask(command: bytes) -> bytes:
        first.sendall(command + b"\r\n")
        return reader.readline()

    assert reader.readline().startswith(b"+OK")
    capa = ask(b"CAPA")
    lines = [capa]
    while lines[-1] != b".\r\n":
        lines.append(reader.readline())
    assert b"USER\r\n" in lines and b"UIDL\r\n" in lines and b"TOP\r\n" in lines
    assert ask(b"USER alice").startswith(b"+OK")
    assert ask(b"PASS secret").startswith(b"+OK alice has 2")
    second = connect(pop3)
    second_reader = second.makefile("rb")
    second_reader.readline()
    second.sendall(b"USER alice\r\nPASS secret\r\n")
    second_reader.readline()
    assert second_reader.readline().startswith(b"-ERR [IN-USE]")
    second.close()
    assert ask(b"DELE 1").startswith(b"+OK")
    assert ask(b"RETR 1").startswith(b"-ERR no such message")
    assert ask(b"STAT").startswith(b"+OK 1 ")
    assert ask(b"RSET").startswith(b"+OK 2")
    assert ask(b"DELE 2").startswith(b"+OK")
    assert ask(b"X" * 300).startswith(b"-ERR command line too long")
    assert len(list((maildir / "alice" / "new").iterdir())) == 2  # nothing removed yet
    assert ask(b"QUIT").startswith(b"+OK")
    first.close()
    assert len(list((maildir / "alice" / "new").iterdir())) == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--maildir", "m"], "give --smtp ENDPOINT and/or --pop3 ENDPOINT"),
    (["--maildir", "m", "--smtp", "tcp:0"], "--smtp needs --domain"),
    (["--maildir", "m", "--pop3", "tcp:0"], "--pop3 needs --auth"),
    (["--maildir", "m", "--smtp", "tcp:0", "--domain", "bad domain!"], "invalid --domain"),
    (["--maildir", "m", "--smtp", "tcp:0", "--domain", "a.org", "--max-size", "lots"],
     "invalid --max-size"),
    (["--maildir", "m", "--smtp", "tcp:0", "--domain", "a.org", "--tls-cert", "c.pem"],
     "give both --tls-cert"),
    (["--maildir", "m", "--smtp", "tcp:0", "--domain", "a.org", "--tls-cert", "no.pem",
      "--tls-key", "no.pem"], "cannot load --tls-cert"),
])
def test_bad_options_are_one_line_errors(args: list[str], message: str,
                                         tmp_path: Path) -> None:
    result = run_dropins("mail", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_idle_pop3_client_is_let_go(maildir: Path) -> None:
    with serve(maildir, "--timeout", "1") as dropins:
        _, pop3 = dropins.ready()
        sock = connect(pop3, timeout=20)
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"+OK")
        assert reader.readline() == b"-ERR idle too long; closing\r\n"
        assert reader.readline() == b""
        sock.close()


def test_which_peers_count_as_loopback() -> None:
    from dropins.servers.logins import is_loopback

    assert is_loopback(("127.0.0.1", 40000))
    assert is_loopback(("127.8.9.10", 1))
    assert is_loopback(("::1", 40000, 0, 0))
    assert is_loopback(("::ffff:127.0.0.1", 40000, 0, 0))  # IPv4 on a dual-stack socket
    assert is_loopback("")  # a unix socket's peer
    assert not is_loopback(("192.0.2.7", 40000))
    assert not is_loopback(("::ffff:192.0.2.7", 1, 0, 0))
    assert not is_loopback(("2001:db8::1", 40000, 0, 0))
    assert not is_loopback(None)
