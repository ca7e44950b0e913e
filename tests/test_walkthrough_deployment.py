"""Walkthrough 4, "deployment": `myproject` built into a wheel that ships its plugin through
the `dropins.plugins` entry-point group, pip-installed into a fresh virtual environment, where
`dropins --help` lists it at once and `dropins myproject -p PORT` serves until SIGTERM; once
uninstalled it is gone and nothing breaks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from _runner_helpers import (
    Dropins,
    assert_no_traceback,
    connect,
    myproject_with_entry_point,
    recv_exactly,
)
from conftest import Venv, build_wheel, get_free_port, write_tree

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def test_install_run_uninstall(fresh_venv: Venv, tmp_path: Path, wheelhouse: Path) -> None:
    project = write_tree(tmp_path / "myproject", myproject_with_entry_point(tmp_path))
    wheel = build_wheel(project, wheelhouse)
    fresh_venv.install(wheel)
    try:
        listing = fresh_venv.run("dropins", "--help")
        assert listing.returncode == 0, listing.stderr
        assert "  myproject             Shout back every line, loudly\n" in listing.stdout

        port = get_free_port()
        with Dropins("myproject", "-p", str(port),
                     executable=fresh_venv.bin("dropins")) as dropins:
            assert dropins.ready() == [f"tcp:127.0.0.1:{port}"]
            with connect(f"tcp:127.0.0.1:{port}") as sock:
                sock.sendall(b"installed\n")
                assert recv_exactly(sock, 21) == b"myproject: INSTALLED\n"
            assert dropins.stop() == 0
    finally:
        fresh_venv.uninstall("myproject")

    after = fresh_venv.run("dropins", "--help")
    assert after.returncode == 0, after.stderr
    assert "myproject" not in after.stdout and "\n  echo " in after.stdout
    gone = fresh_venv.run("dropins", "myproject", "-p", str(get_free_port()))
    assert gone.returncode == 2
    assert gone.stderr.startswith("dropins: error: unknown command 'myproject'")
    assert_no_traceback(listing.stderr, dropins.stderr, after.stderr, gone.stderr)
