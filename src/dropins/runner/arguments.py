"""The runner's own options: everything before the command name on ``dropins``'s command line.

``dropins [runner options] COMMAND [command options]``: the runner options are parsed here, the
command options by the plugin's ``Options`` class.  The split is made by walking the arguments
with the knowledge of which runner options take a value, so that a command option can never be
mistaken for a runner option (``dropins echo --debug`` passes ``--debug`` to ``echo``), and
abbreviations are refused for the same reason.

Only argparse is imported here, so that ``dropins --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os

from dropins.options import HelpFormatter, path
from dropins.runner.errors import UsageError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms per run
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOOPS = ("asyncio", "uvloop")

#: Options that are refused on Windows, where they have no meaning.
POSIX_ONLY = {
    "daemon": "--daemon",
    "uid": "--uid",
    "gid": "--gid",
    "umask": "--umask",
    "syslog": "--syslog",
    "reload": "--reload",  # before --workers, which it implies: the message names it
    "workers": "--workers",
}

USAGE = ("dropins [runner options] COMMAND [command options]\n       dropins --app FILE.py\n"
         "       dropins -c FILE.toml [--set KEY=VALUE]\n"
         "       dropins --save FILE.toml [runner options] COMMAND [options]")
DESCRIPTION = ("Run the service of a plugin (COMMAND) or of a Python file (--app FILE.py).\n"
               "Run 'dropins COMMAND --help' for a command's own options.")


class RunnerOptions:
    """The parsed runner options; see ``build_parser`` for what each one means.

    A plain class rather than a dataclass: ``dataclasses`` imports ``inspect``, which alone
    would cost ``dropins --help`` several milliseconds.
    """

    daemon: bool
    pidfile: str | None
    logfile: str | None
    log_level: str | None
    log_format: str
    log_max_bytes: int
    log_backups: int
    syslog: bool
    rundir: str | None
    umask: int | None
    uid: str | None
    gid: str | None
    loop: str
    shutdown_timeout: float | None  # None: not given (the Application's own value is kept)
    workers: int | None  # None: one process, no supervisor
    worker_timeout: float | None  # None: the supervisor's default
    reuse_port: bool
    reload: bool
    reload_dir: list[str] | None
    debug: bool
    health: str | None
    admin: str | None
    admin_auth: list[str] | None
    admin_role: list[str] | None
    insecure_admin: bool
    app: str | None
    config: str | None
    set: list[str] | None
    save: str | None
    force: bool
    help: bool
    version: bool

    DEFAULTS: dict[str, object] = {
        "daemon": False, "pidfile": None, "logfile": None, "log_level": None,
        "log_format": "text", "log_max_bytes": 0, "log_backups": 5, "syslog": False,
        "rundir": None, "umask": None, "uid": None, "gid": None, "loop": "asyncio",
        "shutdown_timeout": None, "workers": None, "worker_timeout": None,
        "reuse_port": False, "reload": False,
        "reload_dir": None, "debug": False,
        "health": None, "admin": None, "admin_auth": None, "admin_role": None,
        "insecure_admin": False, "app": None, "config": None, "set": None,
        "save": None, "force": False, "help": False, "version": False,
    }

    def __init__(self, **values: object) -> None:
        unknown = set(values) - set(self.DEFAULTS)
        if unknown:
            raise TypeError(f"unknown runner options: {', '.join(sorted(unknown))}")
        for name, default in self.DEFAULTS.items():
            setattr(self, name, values.get(name, default))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.DEFAULTS)
        return f"RunnerOptions({fields})"


def _octal(text: str) -> int:
    try:
        value = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid umask {text!r}: give octal digits, e.g. 022")
    if not 0 <= value <= 0o777:
        raise argparse.ArgumentTypeError(f"invalid umask {text!r}: must be between 000 and 777")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"invalid number of seconds {text!r}: give a positive number, e.g. 10")
    return value


_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _size(text: str) -> int:
    """``10M``, ``512k`` or a plain number of bytes; 0 switches rotation off."""
    number, unit = text.strip(), ""
    if number and number[-1].lower() in "kmg" and not number[-1].isdigit():
        number, unit = number[:-1], number[-1].lower()
    try:
        value = int(float(number) * _SIZE_UNITS[unit])
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: give bytes or e.g. 10M, 512k")
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: must not be negative")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: give a whole number >= 1")
    return value


_FOREGROUND = "not needed, dropins runs in the foreground unless --daemon is given"
_PICKLE = ("dropins loads no pickled application; save the command as a text file with "
           "--save FILE.toml and run it with -c FILE.toml (or use --app FILE.py)")
#: twistd's options that dropins has no equivalent of by that name: how to write them.
TWISTD_OPTIONS = {
    "-n": _FOREGROUND, "--nodaemon": _FOREGROUND,
    "-y": "use --app FILE", "--python": "use --app FILE",
    "-f": _PICKLE, "--file": _PICKLE,
}


def twistd_hint(unknown: Sequence[str]) -> str | None:
    """What to write instead of the twistd options among ``unknown``, if there are any.

    Short flags may run together, as in twistd's usual ``-ny app.tac``.
    """
    names: list[str] = []
    for arg in unknown:
        option = arg.split("=", 1)[0]
        spelled = [option] if option.startswith("--") else [f"-{flag}" for flag in option[1:]]
        names += [name for name in spelled if name in TWISTD_OPTIONS and name not in names]
    if not names:
        return None
    hints = "; ".join(f"twistd's {name}: {TWISTD_OPTIONS[name]}" for name in names)
    return f"{hints} (see 'dropins --help')"


class _RunnerParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see 'dropins --help')")


def build_parser() -> argparse.ArgumentParser:
    """The parser of runner options (help is rendered by the CLI, with the command list)."""
    parser = _RunnerParser(prog="dropins", usage=USAGE, description=DESCRIPTION, add_help=False,
                           allow_abbrev=False, formatter_class=HelpFormatter)
    parser._optionals.title = "runner options"
    add = parser.add_argument
    add("-h", "--help", action="store_true", help="Show this help, with every command, and exit.")
    add("--version", action="store_true", help="Show the dropins version and exit.")
    add("--app", metavar="FILE.py",
        help="Run the 'application' defined by this Python file instead of a command.")
    add("-c", "--config", metavar="FILE",
        help="Run every service of this application file (TOML, or YAML with dropins[yaml]); "
             "SIGHUP reloads it. See docs/config.md.")
    add("--set", action="append", metavar="KEY=VALUE",
        help="With --config: override a value of the file, e.g. "
             "--set services.site.listen=tcp:9000 (repeatable).")
    add("--save", metavar="FILE",
        help="Write this invocation (runner options, command and its options) as an "
             "application file instead of running it; run it later with -c FILE.")
    add("--force", action="store_true", help="With --save: overwrite an existing file.")
    add("--daemon", action="store_true",
        help="Detach into the background; exit 0 once every service has started (POSIX only).")
    add("--pidfile", metavar="PATH", type=path,
        help="Write the process id to PATH, locked; refuse to start if a live instance holds it.")
    add("--logfile", metavar="PATH|-", type=path,
        help="Log to PATH ('-' for standard output). Default: standard error in the foreground, "
             "dropins.log in the run directory with --daemon.")
    add("--log-level", choices=LOG_LEVELS, metavar="LEVEL",
        help="Least severe level to log: " + ", ".join(LOG_LEVELS) + " (default: info).")
    add("--log-format", choices=("text", "json"), default="text",
        help="Log lines as text or as one JSON object each (default: text).")
    add("--log-max-bytes", type=_size, default=0, metavar="SIZE",
        help="Rotate the log file when it reaches SIZE (e.g. 10M); default: no rotation.")
    add("--log-backups", type=_count, default=5, metavar="N",
        help="Rotated log files to keep (default: 5).")
    add("--syslog", action="store_true", help="Log to the system log (POSIX only).")
    add("--rundir", metavar="DIR", type=path,
        help="Change to DIR before starting; relative paths (pidfile, log file, command "
             "options) are then relative to DIR.")
    add("--umask", type=_octal, metavar="OCTAL",
        help="Set the file-mode mask, e.g. 022 (default: 027 with --daemon).")
    add("--uid", metavar="USER", help="Switch to this user (name or id) after binding ports.")
    add("--gid", metavar="GROUP", help="Switch to this group (name or id) after binding ports.")
    add("--loop", choices=LOOPS, default="asyncio",
        help="Event loop implementation (default: asyncio).")
    add("--shutdown-timeout", type=_positive_seconds, metavar="SECONDS",
        help="How long services may take to stop after SIGTERM or SIGINT (default: 10, or what "
             "an --app file's Application sets). A second SIGINT exits at once with status 130.")
    add("--workers", type=_count, metavar="N",
        help="Run N worker processes, each serving the whole application on the sockets this "
             "process binds; SIGHUP restarts them one at a time, SIGTTIN/SIGTTOU add/remove "
             "one (POSIX only).")
    add("--worker-timeout", type=_positive_seconds, metavar="SECONDS",
        help="With --workers: kill and replace a worker whose event loop has not answered for "
             "this long (default: 30), e.g. one stuck in a blocking call.")
    add("--reuse-port", action="store_true",
        help="With --workers: give each worker its own SO_REUSEPORT socket per TCP endpoint, "
             "so that the kernel balances connections between them (Linux).")
    add("--health", metavar="ENDPOINT",
        help="Serve /livez, /readyz and /metrics over HTTP on ENDPOINT, e.g. "
             "tcp:9090:interface=127.0.0.1 (a plain tcp:9090 listens on every interface).")
    add("--admin", metavar="ENDPOINT",
        help="Serve the browser admin and its JSON API on ENDPOINT, e.g. "
             "tcp:9080:interface=127.0.0.1 (needs --admin-auth unless it is a unix: socket). "
             "See docs/admin.md.")
    add("--admin-auth", action="append", metavar="TYPE:ARGS",
        help="Who may log in to the admin, as for --auth, e.g. file:admins.txt (repeatable).")
    add("--admin-role", action="append", metavar="USER=ROLE",
        help="Give USER the admin role viewer (the default: sees everything, changes nothing) "
             "or operator (may also stop/start services and apply configuration); repeatable.")
    add("--insecure-admin", action="store_true",
        help="Allow --admin on plain TCP that other machines can reach (passwords in clear).")
    add("--reload", action="store_true",
        help="Development: restart the worker when the application's own Python files or its "
             "application file change, keeping the sockets open (needs dropins[reload]; "
             "implies --workers 1).")
    add("--reload-dir", action="append", metavar="DIR", type=path,
        help="With --reload: also watch the Python files anywhere below DIR (repeatable).")
    add("--debug", action="store_true",
        help="Show tracebacks for errors, and log at debug level unless --log-level says.")
    return parser


def _value_options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of ``parser`` that takes a value."""
    names: set[str] = set()
    for action in parser._actions:
        if action.nargs != 0:
            names.update(action.option_strings)
    return names


def split_argv(argv: Sequence[str],
               parser: argparse.ArgumentParser | None = None) -> tuple[list[str], str | None,
                                                                       list[str]]:
    """Split into (runner arguments, command name or None, command arguments)."""
    parser = parser or build_parser()
    takes_value = _value_options(parser)
    args = list(argv)
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest = args[index + 1:]
            return args[:index], (rest[0] if rest else None), rest[1:]
        if arg.startswith("-") and arg != "-":
            if "=" not in arg and arg in takes_value:
                index += 1
            index += 1
            continue
        return args[:index], arg, args[index + 1:]
    return args, None, []


def parse_runner_options(argv: Sequence[str], platform: str = os.name) -> RunnerOptions:
    """Parse runner arguments into ``RunnerOptions``; raise ``UsageError`` on bad input."""
    parser = build_parser()
    namespace, unknown = parser.parse_known_args(list(argv))
    if unknown:
        raise UsageError(twistd_hint(unknown)
                         or f"unrecognized arguments: {' '.join(unknown)} (see 'dropins --help')")
    options = RunnerOptions(**vars(namespace))
    if options.reload and options.workers is None:
        options.workers = 1  # the supervisor keeps the sockets open while the worker restarts
    check_options(options, platform)
    return options


def check_options(options: RunnerOptions, platform: str = os.name) -> None:
    """Reject combinations that cannot work, with a one-line explanation."""
    if platform == "nt":
        for field, flag in POSIX_ONLY.items():
            if getattr(options, field) not in (None, False):
                raise UsageError(f"{flag} is not supported on Windows; run dropins in the "
                                 "foreground under a service manager instead")
    if options.set and options.config is None:
        raise UsageError("--set needs --config FILE: it overrides a value of that file")
    if options.force and options.save is None:
        raise UsageError("--force goes with --save FILE: it allows overwriting that file")
    if options.config is not None and (options.app is not None or options.save is not None):
        other = "--app" if options.app is not None else "--save"
        raise UsageError(f"give either --config FILE or {other}, not both")
    if options.worker_timeout is not None and options.workers is None:
        raise UsageError("--worker-timeout goes with --workers N: it replaces a worker whose "
                         "event loop is stuck")
    if options.reuse_port and options.workers is None:
        raise UsageError("--reuse-port goes with --workers N: it gives each worker its own "
                         "socket")
    if options.reuse_port and not _has_reuse_port(platform):
        raise UsageError("--reuse-port needs SO_REUSEPORT, which this platform lacks; leave it "
                         "out (the workers then share each socket)")
    if options.reload_dir and not options.reload:
        raise UsageError("--reload-dir goes with --reload: it adds a folder to watch")
    if options.reload and options.daemon:
        raise UsageError("--reload is for development in the foreground and cannot be used "
                         "with --daemon; leave one of them out")
    if options.daemon and options.logfile == "-":
        raise UsageError("--logfile - cannot be used with --daemon, which detaches from the "
                         "terminal; give a file path")
    if options.log_max_bytes and options.logfile in (None, "-") and not options.daemon:
        raise UsageError("--log-max-bytes needs --logfile PATH: only a log file can be rotated")


def _has_reuse_port(platform: str) -> bool:
    import socket

    return platform != "nt" and hasattr(socket, "SO_REUSEPORT")
