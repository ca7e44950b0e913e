"""The ``dropins`` command: built-in subcommands, and ``dropins NAME`` for service makers.

Built-in subcommands are modules with ``main(argv, prog) -> int``, imported only when used so
that ``dropins --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: subcommand -> (module, one-line description)
BUILTIN_COMMANDS: dict[str, tuple[str, str]] = {
    "plugins": ("dropins.runner.plugins_command", "List, explain, check and cache plugins"),
    "stop": ("dropins.runner.stop_command", "Stop a daemon started with --pidfile"),
    "passwd": ("dropins.cred.passwd_command", "Add or update a user in a password file"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in BUILTIN_COMMANDS:
        module = importlib.import_module(BUILTIN_COMMANDS[args[0]][0])
        status: int = module.main(args[1:], prog=f"dropins {args[0]}")
        return status
    sys.stderr.write("dropins: the service runner is not built yet\n")
    return 2
