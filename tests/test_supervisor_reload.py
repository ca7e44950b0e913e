"""``dropins --reload``: the workers are restarted when the application's files change, while
the supervisor keeps the sockets open; a change that fails to import keeps the old worker."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from _runner_helpers import Dropins, assert_no_traceback
from _web_helpers import read_until_closed
from conftest import clean_env, get_free_port, run_dropins

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="--reload runs workers: POSIX")


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


#: The WSGI application the tests edit: it answers with its VERSION.
APP = '''
VERSION = {version}


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"version %d" % VERSION]


def other(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"other %d" % VERSION]
'''

#: How long a reload may take to show, on a loaded machine (debounce, a new interpreter).
RELOAD_BOUND = 40.0


def save(path: Path, text: str) -> None:
    """Save as an editor does: a temporary file beside ``path``, renamed over it."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def get(port: int) -> str:
    """One request on a new connection: the body, or why it failed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        answer = read_until_closed(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        raise AssertionError(f"unexpected answer {answer[:200]!r}")
    return body.decode()


class Poller:
    """A client that requests / on a new connection, again and again, from a thread; it keeps
    every answer and every failure (a refused or reset connection, a bad answer)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set() and len(self.answers) < 100_000:
            try:
                self.answers.append(get(self.port))
            except (OSError, AssertionError) as error:
                self.failures.append(f"{type(error).__name__}: {error}")
            self._stop.wait(0.01)

    def wait_for_answer(self, expected: str, timeout: float = RELOAD_BOUND) -> None:
        """Until the latest answer is ``expected`` (the old worker is gone)."""
        deadline = time.monotonic() + timeout
        while not (self.answers and self.answers[-1] == expected):
            assert time.monotonic() < deadline, (expected, self.answers[-5:], self.failures)
            time.sleep(0.05)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)


def count_lines(server: Dropins, pattern: str, count: int,
                timeout: float = RELOAD_BOUND) -> None:
    """Wait until ``count`` lines of the server's log match ``pattern``."""
    deadline = time.monotonic() + timeout
    while len(re.findall(pattern, server.stderr, re.MULTILINE)) < count:
        assert server.process.poll() is None, server.stderr
        assert time.monotonic() < deadline, f"{count} x {pattern!r}?\n{server.stderr}"
        time.sleep(0.05)


def start_reloading(folder: Path, *args: str) -> tuple[Dropins, int]:
    port = get_free_port()
    server = Dropins("--reload", *args, "web", "--wsgi", "app:app", "--no-access-log",
                     "--listen", f"tcp:{port}:interface=127.0.0.1", cwd=folder)
    server.ready(RELOAD_BOUND)
    return server, port


def test_five_reloads_under_a_polling_client_refuse_nothing(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP.format(version=0))
    server, port = start_reloading(tmp_path)
    with server:
        with Poller(port) as poller:
            poller.wait_for_answer("version 0")
            for version in range(1, 6):
                save(tmp_path / "app.py", APP.format(version=version))
                count_lines(server, r"restarted 1 workers \(app\.py changed\)$", version)
                poller.wait_for_answer(f"version {version}")
        assert poller.failures == []
        assert set(poller.answers) == {f"version {version}" for version in range(6)}
        assert server.stop() == 0
    assert_no_traceback(server.stderr)
    assert "changes detected" not in server.stderr  # watchfiles' own lines are left out


def test_a_change_that_fails_to_import_keeps_the_old_worker(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP.format(version=1))
    server, port = start_reloading(tmp_path)
    with server:
        assert get(port) == "version 1"
        save(tmp_path / "app.py", "def app(:\n")
        line = server.wait_for_line(r"restart \(app\.py changed\) aborted: .*", RELOAD_BOUND)
        assert "importing app failed: SyntaxError: invalid syntax (app.py:1)" in line.group(0)
        assert server.stderr.count("importing app failed") == 1, server.stderr  # said once
        assert [get(port) for _ in range(3)] == ["version 1"] * 3
        save(tmp_path / "app.py", APP.format(version=2))  # fixed: the next save reloads
        with Poller(port) as poller:
            poller.wait_for_answer("version 2")
        assert server.stop() == 0
    assert_no_traceback(server.stderr)


def test_a_changed_application_file_restarts_the_workers_with_it(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP.format(version=3))
    port = get_free_port()
    config = tmp_path / "site.toml"
    service = f'[services.site]\ncommand = "web"\nlisten = "tcp:{port}:interface=127.0.0.1"\n'
    config.write_text(service + 'wsgi = "app:app"\n')
    with Dropins("--reload", "-c", str(config), cwd=tmp_path) as server:
        server.ready(RELOAD_BOUND)
        assert get(port) == "version 3"
        save(config, service + 'wsgi = "app:other"\n')
        server.wait_for_line(r"restarted 1 workers \(site\.toml changed\)$", RELOAD_BOUND)
        with Poller(port) as poller:
            poller.wait_for_answer("other 3")
        assert poller.failures == []
        assert server.stop() == 0


#: The app once edited to import a module from a folder that was not watched before.
IMPORTING_APP = '''
from lib.words import WORD


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [WORD.encode()]
'''


def test_a_module_imported_by_an_edit_is_watched_from_then_on(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP.format(version=1))
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/__init__.py").write_text("")
    (tmp_path / "lib/words.py").write_text('WORD = "first"\n')
    server, port = start_reloading(tmp_path)
    with server:
        assert get(port) == "version 1"
        save(tmp_path / "app.py", IMPORTING_APP)
        count_lines(server, r"restarted 1 workers \(app\.py changed\)$", 1)
        server.wait_for_line(r"reload: watching 2 files more \(imported by the workers\)$")
        assert get(port) == "first"
        # in a folder new to the watch, which starts again a moment after that line: saved
        # until a restart says it was seen (before, no number of saves restarted anything)
        pattern = re.compile(r"restarted 1 workers \(lib/words\.py changed\)$", re.MULTILINE)
        deadline = time.monotonic() + RELOAD_BOUND
        while not pattern.search(server.stderr):
            assert time.monotonic() < deadline, server.stderr
            save(tmp_path / "lib/words.py", 'WORD = "second"\n')
            time.sleep(0.5)
        with Poller(port) as poller:
            poller.wait_for_answer("second")
        assert server.stop() == 0
    assert_no_traceback(server.stderr)
