"""``dropins nntp`` end to end with Python 3.11's nntplib: LIST, GROUP, OVER, ARTICLE/HEAD/
BODY, NEXT/LAST, POST through --auth with Message-ID dedup (also across a restart),
STARTTLS with a trustme certificate, what POST refuses, and bad options."""

from __future__ import annotations

import io
import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _runner_helpers import Dropins, assert_no_traceback, connect, host_port
from conftest import run_dropins

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    nntplib: Any = pytest.importorskip("nntplib", reason="nntplib left the stdlib in 3.13")

trustme = pytest.importorskip("trustme")

ARTICLE = (b"From: alice@example.org\r\nNewsgroups: local.test\r\nSubject: first post\r\n"
           b"Message-ID: <first@example.org>\r\n\r\nhello, news\r\n.a dotted line\r\n")


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    folder = tmp_path / "news"
    for group in ("local.test", "comp.misc"):
        (folder / group).mkdir(parents=True)
    (folder / "comp.misc" / "1").write_bytes(
        b"From: bob@example.org\nNewsgroups: comp.misc\nSubject: old\n"
        b"Message-ID: <old@example.org>\n\nan article already in the spool\n")
    (folder / "Not A Group").mkdir()
    return folder


def serve(spool: Path, *extra: str) -> Dropins:
    return Dropins("nntp", "--listen", "tcp:0:interface=127.0.0.1", "--groups", str(spool),
                   *extra)


@pytest.fixture
def server(spool: Path) -> Iterator[tuple[str, int]]:
    with serve(spool, "--auth", "memory:alice:secret", "--max-article", "2K") as dropins:
        (address,) = dropins.ready()
        yield host_port(address)
        assert dropins.stop() == 0
        assert_no_traceback(dropins.stderr)


def client(address: tuple[str, int], **login: str) -> Any:
    return nntplib.NNTP(*address, timeout=10, **login)


def test_read_post_and_dedup(server: tuple[str, int], spool: Path) -> None:
    news = client(server, user="alice", password="secret")
    groups = {info.group: info for info in news.list()[1]}
    assert set(groups) == {"local.test", "comp.misc"}  # "Not A Group" is not a group name
    assert (groups["comp.misc"].first, groups["comp.misc"].last) == ("1", "1")
    assert news.post(io.BytesIO(ARTICLE)).startswith("240")
    with pytest.raises(nntplib.NNTPTemporaryError, match="441 duplicate"):
        news.post(io.BytesIO(ARTICLE))
    second = ARTICLE.replace(b"<first@example.org>", b"<second@example.org>").replace(
        b"first post", b"second post")
    news.post(io.BytesIO(second))

    _, count, first, last, name = news.group("local.test")
    assert (count, first, last, name) == (2, 1, 2, "local.test")
    _, overviews = news.over((1, 2))
    assert [(n, o["subject"], o["message-id"]) for n, o in overviews] == [
        (1, "first post", "<first@example.org>"), (2, "second post", "<second@example.org>")]
    _, info = news.article(1)
    assert b".a dotted line" in info.lines and b"Path: " in b"\n".join(info.lines)
    _, head = news.head("<old@example.org>")  # by Message-ID, in another group
    assert b"Subject: old" in head.lines
    _, body = news.body(2)
    assert body.lines == [b"hello, news", b".a dotted line"]
    assert news.last()[1] == 1  # BODY 2 made 2 the current article
    assert news.next()[1] == 2
    with pytest.raises(nntplib.NNTPTemporaryError, match="421"):
        news.next()
    with pytest.raises(nntplib.NNTPTemporaryError, match="423"):
        news.article(99)
    with pytest.raises(nntplib.NNTPTemporaryError, match="411"):
        news.group("no.such.group")
    news.quit()
    assert sorted(p.name for p in (spool / "local.test").iterdir()) == ["1", "2"]


def test_post_refusals(server: tuple[str, int]) -> None:
    anonymous = client(server)
    assert anonymous.article("<old@example.org>")[1].message_id == "<old@example.org>"
    with pytest.raises(nntplib.NNTPTemporaryError, match="480"):
        anonymous.post(io.BytesIO(ARTICLE))
    anonymous.quit()
    with pytest.raises(nntplib.NNTPError, match="481"):
        client(server, user="alice", password="wrong")

    news = client(server, user="alice", password="secret")
    for article, reason in [
        (ARTICLE.replace(b"local.test", b"alt.nowhere"), "no such newsgroup"),
        (ARTICLE.replace(b"Subject: first post\r\n", b""), "missing header"),
        (ARTICLE + (b"x" * 70 + b"\r\n") * 40, "over the 2048-byte limit"),
    ]:
        with pytest.raises(nntplib.NNTPTemporaryError, match=reason):
            news.post(io.BytesIO(article.replace(b"<first@", b"<refused@")))
    assert news.group("local.test")[1] == 0  # nothing was stored
    news.quit()


def test_dedup_survives_a_restart_and_starttls(spool: Path, tmp_path: Path) -> None:
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "both.pem"))
    context = ssl.create_default_context()
    authority.configure_trust(context)
    tls = ["--tls-cert", str(tmp_path / "both.pem"), "--tls-key", str(tmp_path / "both.pem")]
    (spool / "local.test" / "1").write_bytes(ARTICLE)  # as if posted before a restart
    with serve(spool, "--auth", "memory:alice:secret", "--tls-logins-only", *tls) as dropins:
        (address,) = dropins.ready()
        news = client(host_port(address))
        with pytest.raises(nntplib.NNTPError, match="483"):
            news.login("alice", "secret")
        news.quit()
        news = client(host_port(address))
        assert "STARTTLS" in news.getcapabilities()
        news.starttls(context)
        news.login("alice", "secret")
        with pytest.raises(nntplib.NNTPTemporaryError, match="441 duplicate"):
            news.post(io.BytesIO(ARTICLE))
        assert news.group("local.test")[1] == 1
        news.quit()
        assert dropins.stop() == 0
        assert_no_traceback(dropins.stderr)


def test_no_auth_is_read_only_unless_open_posting(spool: Path) -> None:
    with serve(spool) as dropins:
        (address,) = dropins.ready()
        news = client(host_port(address))
        assert news.getwelcome().startswith("201")
        with pytest.raises(nntplib.NNTPTemporaryError, match="440"):
            news.post(io.BytesIO(ARTICLE))
        news.quit()
    with serve(spool, "--open-posting") as dropins:
        (address,) = dropins.ready()
        news = client(host_port(address))
        assert news.post(io.BytesIO(ARTICLE)).startswith("240")
        news.quit()


@pytest.mark.parametrize(("args", "message"), [
    (["--groups", "missing"], "--groups missing: no such folder"),
    (["--groups", ".", "--open-posting", "--auth", "memory:a:b"], "choose one"),
    (["--groups", ".", "--max-article", "big"], "invalid --max-article"),
    (["--groups", ".", "--timeout", "-1"], "invalid --timeout"),
])
def test_bad_options_are_one_line_errors(args: list[str], message: str,
                                         tmp_path: Path) -> None:
    result = run_dropins("nntp", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    *warnings_before, error = result.stderr.strip().splitlines()
    assert message in error and error.startswith("dropins nntp: error:"), result.stderr
    assert all("WARNING" in line for line in warnings_before), result.stderr


def test_an_idle_client_is_let_go(spool: Path) -> None:
    with serve(spool, "--timeout", "1") as dropins:
        (address,) = dropins.ready()
        sock = connect(address, timeout=20)
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"201")
        assert reader.readline() == b"400 idle too long; closing\r\n"
        assert reader.readline() == b""
        sock.close()
