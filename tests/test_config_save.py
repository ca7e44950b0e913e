"""``dropins --save FILE ... COMMAND ...`` (mktap's successor) and running the file with -c."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

from _config_helpers import http_get
from _runner_helpers import Dropins, assert_no_traceback
from conftest import get_free_port, run_dropins, write_tree


def test_save_then_run_serves_the_same(tmp_path: Path) -> None:
    write_tree(tmp_path, {"site/index.html": "saved site\n", "conf/README": "configs\n"})
    port = get_free_port()
    saved = run_dropins("--save", "conf/shop.toml", "--shutdown-timeout", "3", "web",
                        "--path", "site", "--listen", f"tcp:{port}:interface=127.0.0.1",
                        "--no-listing", cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    assert "saved web to conf/shop.toml" in saved.stderr
    data = tomllib.loads((tmp_path / "conf/shop.toml").read_text())
    assert data == {"runner": {"shutdown-timeout": 3},
                    "services": {"web": {"command": "web", "path": "../site",
                                         "listen": [f"tcp:{port}:interface=127.0.0.1"],
                                         "no-listing": True}}}
    with Dropins("-c", str(tmp_path / "conf/shop.toml")) as process:  # from another folder
        process.wait_for_line("ready: ")
        assert http_get(port) == (200, b"saved site\n")
        assert http_get(port, "/missing/")[0] == 404
        assert process.stop() == 0


def test_save_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text("# mine\n")
    refused = run_dropins("--save", "app.toml", "echo", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == ("dropins: error: --save app.toml: the file exists; give --force "
                              "to overwrite it\n")
    assert (tmp_path / "app.toml").read_text() == "# mine\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["app.toml"]
    forced = run_dropins("--save", "app.toml", "--force", "echo", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert tomllib.loads((tmp_path / "app.toml").read_text()) == {
        "services": {"echo": {"command": "echo"}}}


def test_save_checks_the_command_line_first(tmp_path: Path) -> None:
    result = run_dropins("--save", "app.toml", "web", "--threads", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "threads" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "app.toml").exists()
    assert_no_traceback(result.stderr)


def test_a_saved_password_is_private_with_a_warning(tmp_path: Path) -> None:
    result = run_dropins("--save", "app.toml", "web", "--auth", "memory:alice:secret",
                         cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ("dropins: warning: app.toml holds a password (--auth memory:); it is readable by "
            "you only (0600)") in result.stderr
    assert stat.S_IMODE((tmp_path / "app.toml").stat().st_mode) == 0o600
    plain = run_dropins("--save", "plain.toml", "web", cwd=tmp_path)
    assert plain.returncode == 0
    assert stat.S_IMODE((tmp_path / "plain.toml").stat().st_mode) & 0o044  # the umask's


def test_saved_runner_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    """--pidfile and --logfile, given relative to the cwd, are found there by -c from
    another folder (they were saved as typed, so -c looked beside the file)."""
    import time

    write_tree(tmp_path, {"out/README": "configs\n", "other/README": "elsewhere\n"})
    port = get_free_port()
    saved = run_dropins("--save", "out/up.toml", "--pidfile", "p.pid", "--logfile", "logs.log",
                        "echo", "--listen", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    runner = tomllib.loads((tmp_path / "out/up.toml").read_text())["runner"]
    assert runner == {"pidfile": "../p.pid", "logfile": "../logs.log"}
    with Dropins("-c", "../out/up.toml", cwd=tmp_path / "other") as process:
        log = tmp_path / "logs.log"
        deadline = time.monotonic() + 30
        while not (log.exists() and "ready: " in log.read_text()):
            assert time.monotonic() < deadline and process.process.poll() is None, \
                process.stderr
            time.sleep(0.1)
        assert (tmp_path / "p.pid").read_text().strip() == str(process.process.pid)
        assert not (tmp_path / "out/p.pid").exists()
        assert process.stop() == 0


def test_numbers_are_saved_as_numbers(tmp_path: Path) -> None:
    """``workers = 2``, not ``workers = "2"``: what a person writes; text that is not a plain
    number (an octal umask, a size with its unit) stays as it was typed."""
    port = get_free_port()
    saved = run_dropins("--save", "app.toml", "--workers", "2", "--shutdown-timeout", "2.5",
                        "--umask", "022", "--logfile", "app.log", "--log-max-bytes", "10M",
                        "--log-backups", "3", "web", "--threads", "4",
                        "--listen", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    data = tomllib.loads((tmp_path / "app.toml").read_text())
    assert data["runner"] == {"workers": 2, "shutdown-timeout": 2.5, "umask": "022",
                              "logfile": "app.log", "log-max-bytes": "10M", "log-backups": 3}
    assert data["services"]["web"]["threads"] == 4
    checked = run_dropins("config", "check", "app.toml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
