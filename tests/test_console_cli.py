"""``dropins console`` and ``dropins telnet`` on the command line: usage errors before anything
starts, the 0.19 seed's command, and a start-up path that does not import asyncssh."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from _console_helpers import TelnetClient
from _runner_helpers import Dropins
from conftest import clean_env, get_free_port, run_dropins


@pytest.mark.parametrize(("arguments", "message"), [
    ([], "say where to listen: --ssh ENDPOINT, --telnet ENDPOINT or --socket PATH"),
    (["--telnet", "tcp:8023", "--auth", "memory:a:b"],
     "--telnet tcp:8023 can be reached from other machines"),
    (["--telnet", "tcp:8023:interface=0.0.0.0", "--auth", "memory:a:b"],
     "add --insecure"),
    (["--telnet", "tcp:8023:interface=127.0.0.1"], "--telnet needs --auth"),
    (["--ssh", "tcp:2222:interface=127.0.0.1"], "--ssh needs --auth (passwords) or "
                                                 "--authorized-keys"),
    (["--ssh", "tcp:22x22"], "--ssh: invalid endpoint 'tcp:22x22'"),
    (["--ssh", "tcp:2222", "--authorized-keys", "/nonexistent/keys"],
     "--authorized-keys /nonexistent/keys is not a file"),
    (["--telnet", "tcp:8023:interface=127.0.0.1", "--auth", "anonymous"],
     "cannot be used by 'dropins console'"),
])
def test_usage_errors_are_one_line_with_status_2(arguments: list[str], message: str) -> None:
    result = run_dropins("console", *arguments)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "WARNING" not in line]
    assert len(errors) == 1 and message in errors[0], result.stderr


def test_insecure_allows_telnet_on_every_interface(tmp_path: Path) -> None:
    app = tmp_path / "app.toml"
    app.write_text('[services.console]\ncommand = "console"\ninsecure = true\n'
                   'telnet = "tcp:8023"\nauth = "memory:a:b"\n')
    result = run_dropins("config", "check", str(app))
    assert result.returncode == 0, result.stderr


def test_the_seed_command_serves_one_user_on_loopback() -> None:
    port = get_free_port()
    with Dropins("telnet", "-p", str(port), "-u", "username", "-w", "password") as process:
        assert process.ready() == [f"tcp:127.0.0.1:{port}"]
        assert "the password given with -w is visible" in process.stderr
        with TelnetClient(port) as client:
            client.read_until("login: ")
            client.send_line("username")
            client.read_until("Password: ")
            client.send_line("wrong")
            assert "Login incorrect" in client.read_until("login: ")
            client.send_line("username")
            client.read_until("Password: ")
            client.send_line("password")
            client.read_until(">>> ")
            assert client.run("print(sorted(services))") == "['telnet', 'telnet/telnet']\n"
        assert process.stop() == 0
    assert run_dropins("telnet", "-p", "8023").returncode == 2  # -w is required


def test_help_and_the_console_help_do_not_import_asyncssh() -> None:
    code = ("import sys\n"
            "from dropins.runner.cli import main\n"
            "for argv in (['--help'], ['console', '--help'], ['telnet', '--help']):\n"
            "    try:\n"
            "        main(argv)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print('asyncssh' in sys.modules, 'dropins.console.session' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, env=clean_env(), stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "False False"
