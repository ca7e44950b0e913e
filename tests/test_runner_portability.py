"""The runner imports no POSIX-only module at import time, so Windows can import all of it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

RUNNER_MODULES = [
    "dropins.runner.cli", "dropins.runner.arguments", "dropins.runner.commands",
    "dropins.runner.run", "dropins.runner.daemon", "dropins.runner.pidfile",
    "dropins.runner.logs", "dropins.runner.signals", "dropins.runner.privileges",
    "dropins.runner.stop_command", "dropins.runner.app_file", "dropins.runner.errors",
    "dropins.servers.inetd", "dropins.servers.portforward", "dropins.plugins.services",
]
POSIX_ONLY = ["fcntl", "pwd", "grp", "resource", "syslog", "termios"]


def test_imports_without_posix_only_modules() -> None:
    # Setting sys.modules[name] = None makes "import name" fail, as on Windows.
    code = textwrap.dedent(f"""
        import importlib, sys
        for name in {POSIX_ONLY!r}:
            sys.modules[name] = None
        for module in {RUNNER_MODULES!r}:
            importlib.import_module(module)
        print("ok")
        """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_the_check_itself_detects_a_posix_import() -> None:
    code = "import sys\nsys.modules['fcntl'] = None\nimport fcntl\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0 and "import of fcntl halted" in result.stderr
