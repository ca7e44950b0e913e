"""Walkthrough 2, "a service maker": a project's `myproject` plugin, found in a development
folder (`dropins/plugins/` without `__init__.py` on PYTHONPATH), listed by `dropins --help`,
with its own `--help`, serving its protocol on `-p PORT` until SIGTERM, then exiting 0."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from _runner_helpers import (
    Dropins,
    assert_no_traceback,
    connect,
    myproject_as_development_folder,
    recv_exactly,
)
from conftest import get_free_port, run_dropins, write_tree

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def test_service_maker_from_a_development_folder(tmp_path: Path) -> None:
    write_tree(tmp_path, myproject_as_development_folder())
    assert not (tmp_path / "dropins" / "__init__.py").exists()
    assert not (tmp_path / "dropins" / "plugins" / "__init__.py").exists()
    env = {"PYTHONPATH": str(tmp_path)}

    listing = run_dropins("--help", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "  myproject             Shout back every line, loudly\n" in listing.stdout
    assert "\n  echo " in listing.stdout  # the built-in commands are still there

    help_text = run_dropins("myproject", "--help", env=env)
    assert help_text.returncode == 0
    assert "usage: dropins myproject" in help_text.stdout
    assert "-p PORT, --port PORT" in help_text.stdout and "(default: 1235)" in help_text.stdout

    bad = run_dropins("myproject", "-p", "eighty", env=env)
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith("argument -p/--port: invalid int value: 'eighty' "
                                       "(see 'dropins myproject --help')")

    port = get_free_port()
    with Dropins("myproject", "-p", str(port), env=env) as dropins:
        assert dropins.ready() == [f"tcp:127.0.0.1:{port}"]
        with connect(f"tcp:127.0.0.1:{port}") as sock:
            sock.sendall(b"hello\n")
            assert recv_exactly(sock, 17) == b"myproject: HELLO\n"
        assert dropins.stop() == 0
    assert_no_traceback(listing.stderr, help_text.stderr, bad.stderr, dropins.stderr)
