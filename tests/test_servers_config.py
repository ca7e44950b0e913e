"""The protocol servers composed in one application file: mail, ftp and nntp in one process,
each answering its real client."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from _runner_helpers import Dropins, assert_no_traceback
from conftest import get_free_port

pytest.importorskip("aiosmtpd")
pytest.importorskip("aioftp")


def test_mail_ftp_and_nntp_from_one_file(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (Debian package curl; .ci/run installs it)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        nntplib = pytest.importorskip("nntplib")
    (tmp_path / "mail" / "alice").mkdir(parents=True)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "readme.txt").write_text("from the config file\n")
    (tmp_path / "news" / "local.test").mkdir(parents=True)
    smtp, ftp, nntp = get_free_port(), get_free_port(), get_free_port()
    (tmp_path / "app.toml").write_text(f"""
        name = "protocols"

        [services.mail]
        command = "mail"
        smtp = "tcp:{smtp}:interface=127.0.0.1"
        domain = "example.org"
        maildir = "mail"

        [services.files]
        command = "ftp"
        listen = "tcp:{ftp}:interface=127.0.0.1"
        root = "files"
        anonymous = true

        [services.news]
        command = "nntp"
        listen = "tcp:{nntp}:interface=127.0.0.1"
        groups = "news"
        open-posting = true
        """.replace("\n        ", "\n"))
    with Dropins("-c", str(tmp_path / "app.toml"), cwd="/") as dropins:
        dropins.ready()
        letter = tmp_path / "letter.txt"
        letter.write_text("Subject: composed\r\n\r\nhello\r\n")
        sent = subprocess.run(["curl", "-sS", "--max-time", "20", f"smtp://127.0.0.1:{smtp}",
                               "--mail-from", "bob@else.net", "--mail-rcpt",
                               "alice@example.org", "-T", str(letter)],
                              capture_output=True, text=True, timeout=30)
        assert sent.returncode == 0, sent.stderr
        assert len(list((tmp_path / "mail" / "alice" / "new").iterdir())) == 1
        got = subprocess.run(["curl", "-sS", "--max-time", "20",
                              f"ftp://127.0.0.1:{ftp}/readme.txt"],
                             capture_output=True, text=True, timeout=30)
        assert got.stdout == "from the config file\n", got.stderr
        news = nntplib.NNTP("127.0.0.1", nntp, timeout=10)
        assert [info.group for info in news.list()[1]] == ["local.test"]
        news.quit()
        assert dropins.stop() == 0
        assert_no_traceback(dropins.stderr)
