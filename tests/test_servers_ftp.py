"""``dropins ftp`` end to end with curl and lftp: anonymous read-only, logins through --auth,
explicit FTPS (AUTH TLS, PROT P) with a trustme certificate, confinement against ``..`` and
symlinks, the upload limit, the passive port range and bad options."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from _runner_helpers import Dropins, assert_no_traceback, connect, host_port
from conftest import get_free_port, run_dropins

pytest.importorskip("aioftp")
trustme = pytest.importorskip("trustme")

TIMEOUT = 30


def need(command: str) -> str:
    found = shutil.which(command)
    if found is None:
        pytest.skip(f"{command} is not installed (Debian package {command}; .ci/run installs it)")
    return found


def run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    (folder / "docs").mkdir(parents=True)
    (folder / "hello.txt").write_text("hello, ftp\n")
    (tmp_path / "secret.txt").write_text("outside the root\n")
    (folder / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (folder / "outside").symlink_to(tmp_path)
    return folder


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Path]:
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1", "localhost", common_name="localhost")
    paths = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem"}
    authority.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return paths


def serve(root: Path, *extra: str) -> Dropins:
    return Dropins("ftp", "--listen", "tcp:0:interface=127.0.0.1", "--root", str(root),
                   "--anonymous", "--auth", "memory:alice:secret", *extra)


PASSIVE: list[int] = []  # the range the ``server`` fixture gave, for the PASV test


@pytest.fixture
def server(root: Path) -> Iterator[str]:
    low = min(get_free_port(), 65000)
    PASSIVE[:] = [low, low + 20]
    with serve(root, "--max-upload", "4K", "--passive-ports", f"{low}-{low + 20}") as dropins:
        (address,) = dropins.ready()
        yield address
        assert dropins.stop() == 0
        assert_no_traceback(dropins.stderr)


def url(address: str, path: str = "/") -> str:
    _, port = host_port(address)
    return f"ftp://127.0.0.1:{port}{path}"


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return run(need("curl"), "-sS", "--max-time", "20", *args)


def test_anonymous_reads_but_cannot_write_or_escape(server: str, root: Path,
                                                    tmp_path: Path) -> None:
    assert curl(url(server, "/hello.txt")).stdout == "hello, ftp\n"
    listing = curl("--list-only", url(server))
    assert set(listing.stdout.split()) == {"hello.txt", "docs"}  # no symlinks out
    long_listing = curl(url(server))
    assert "hello.txt" in long_listing.stdout and "leak" not in long_listing.stdout
    upload = tmp_path / "up.txt"
    upload.write_text("not allowed\n")
    refused = curl("-T", str(upload), url(server, "/up.txt"))
    assert refused.returncode != 0
    assert not (root / "up.txt").exists()
    for escape in ("/leak.txt", "/outside/secret.txt", "/../secret.txt", "/docs/../../secret.txt"):
        got = curl("--path-as-is", url(server, escape))
        assert "outside the root" not in got.stdout, escape
        assert got.returncode != 0, escape


def test_lftp_logs_in_puts_gets_and_the_upload_limit_holds(server: str, root: Path,
                                                           tmp_path: Path) -> None:
    _, port = host_port(server)
    (tmp_path / "small.txt").write_text("small file\n")
    (tmp_path / "big.bin").write_bytes(b"x" * 10000)
    script = (f"set cmd:fail-exit yes; set net:max-retries 1; set ftp:ssl-allow no;"
              f" open -u alice,secret -p {port} 127.0.0.1; put small.txt -o docs/small.txt;"
              f" get hello.txt -o got.txt; cls -1 docs")
    done = run(need("lftp"), "-c", script, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (root / "docs" / "small.txt").read_text() == "small file\n"
    assert (tmp_path / "got.txt").read_text() == "hello, ftp\n"
    assert "small.txt" in done.stdout

    big = curl("-u", "alice:secret", "-T", str(tmp_path / "big.bin"), url(server, "/big.bin"))
    assert big.returncode != 0  # 552: over the 4K limit
    assert not (root / "big.bin").exists()
    planted = curl("-u", "alice:secret", "-T", str(tmp_path / "small.txt"),
                   url(server, "/outside/planted.txt"))
    assert planted.returncode != 0  # no writing through a symlink out of the root
    assert not (tmp_path / "planted.txt").exists()
    renamed = curl("-u", "alice:secret", "-Q", "RNFR hello.txt", "-Q", "RNTO ../../moved.txt",
                   url(server))
    assert (root / "hello.txt").exists() or (root / "moved.txt").exists(), renamed.stderr
    assert not (tmp_path / "moved.txt").exists() and not (tmp_path.parent / "moved.txt").exists()
    wrong = curl("-u", "alice:nope", url(server, "/hello.txt"))
    assert wrong.returncode != 0
    assert "hello" not in wrong.stdout


def test_passive_ports_come_from_the_range(server: str) -> None:
    sock = connect(server)
    reader = sock.makefile("rb")
    assert reader.readline().startswith(b"220")
    sock.sendall(b"USER anonymous\r\n")
    assert reader.readline().startswith(b"230")
    sock.sendall(b"PASV\r\n")
    reply = reader.readline().decode()
    sock.sendall(b"QUIT\r\n")
    sock.close()
    assert reply.startswith("227"), reply
    found = re.search(r"\((\d+(?:,\d+){5})\)", reply)
    assert found is not None, reply
    numbers = [int(n) for n in found.group(1).split(",")]
    assert numbers[:4] == [127, 0, 0, 1]
    low, high = PASSIVE
    assert low <= numbers[4] * 256 + numbers[5] <= high


def test_explicit_ftps_with_curl_and_lftp(root: Path, certs: dict[str, Path],
                                          tmp_path: Path) -> None:
    with serve(root, "--tls-cert", str(certs["cert"]), "--tls-key", str(certs["key"]),
               "--tls-logins-only") as dropins:
        (address,) = dropins.ready()
        plain = curl("-u", "alice:secret", url(address, "/hello.txt"))
        assert plain.returncode != 0  # a password before AUTH TLS is refused
        secured = curl("--ssl-reqd", "--cacert", str(certs["ca"]), "-u", "alice:secret",
                       url(address, "/hello.txt"))
        assert secured.returncode == 0, secured.stderr
        assert secured.stdout == "hello, ftp\n"

        _, port = host_port(address)
        (tmp_path / "tls.txt").write_text("over tls\n")
        script = (f"set cmd:fail-exit yes; set net:max-retries 1; set ftp:ssl-force true;"
                  f" set ftp:ssl-protect-data true; set ssl:ca-file {certs['ca']};"
                  f" open -u alice,secret -p {port} localhost; put tls.txt; cls -1")
        done = run(need("lftp"), "-c", script, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert (root / "tls.txt").read_text() == "over tls\n"
        assert "hello.txt" in done.stdout
        assert dropins.stop() == 0
        assert_no_traceback(dropins.stderr)


@pytest.mark.parametrize(("args", "message"), [
    (["--root", "missing"], "--root missing: no such folder"),
    (["--root", "."], "give --auth TYPE:ARGS for logins and/or --anonymous"),
    (["--anonymous", "--passive-ports", "10-5"], "invalid --passive-ports"),
    (["--anonymous", "--max-upload", "huge"], "invalid --max-upload"),
    (["--anonymous", "--tls-key", "k.pem"], "give both --tls-cert"),
])
def test_bad_options_are_one_line_errors(args: list[str], message: str,
                                         tmp_path: Path) -> None:
    result = run_dropins("ftp", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
