"""``dropins --reload``: the workers are restarted when the application's files change, while
the supervisor keeps the sockets open; a change that fails to import keeps the old worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import clean_env, run_dropins


@pytest.mark.parametrize(("args", "message"), [
    (["--reload", "--daemon", "--logfile", "x.log"], "--reload is for development in the "
                                                    "foreground and cannot be used with --daemon"),
    (["--reload-dir", "."], "--reload-dir goes with --reload"),
    (["--reload", "--reload-dir", "nowhere"], "--reload-dir nowhere: no such directory"),
])
def test_reload_usage_errors(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_dropins(*args, "web", "--listen", "tcp:0:interface=127.0.0.1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"dropins: error: {message}")


def test_reload_without_watchfiles_says_how_to_install_it(tmp_path: Path) -> None:
    hide_watchfiles = ("import sys; sys.modules['watchfiles'] = None; "
                       "from dropins.runner.cli import main; sys.exit(main(sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", hide_watchfiles, "--reload", "web",
                             "--listen", "tcp:0:interface=127.0.0.1"], cwd=tmp_path,
                            env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == ("dropins: error: --reload needs the watchfiles package: "
                             "pip install 'dropins[reload]'\n")
