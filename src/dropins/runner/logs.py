"""Logging for the runner: where lines go (stream, file, rotated file, syslog) and their format.

Everything uses stdlib ``logging`` so that services simply call ``logging.getLogger(__name__)``.
Log files are reopened on SIGHUP (``reopen_log_files``) so that logrotate can rename them;
rotation by size, when asked for, keeps a bounded number of old files.  ``logging.handlers`` is
imported only when a file or syslog handler is needed.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

from dropins.runner.arguments import RunnerOptions
from dropins.runner.errors import RunnerError, one_line

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms per start
if TYPE_CHECKING:
    from typing import Any, TextIO

#: The logger the runner writes its own lines to (the ready line, shutdown, errors).
log = logging.getLogger("dropins.runner")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: syslog adds the time itself; it wants the program name and PID first.
SYSLOG_FORMAT = "dropins[%(process)d]: %(levelname)s %(name)s: %(message)s"
DEFAULT_DAEMON_LOGFILE = "dropins.log"


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` lines, with the date and time text made once per second.

    A busy web server logs thousands of access lines a second, and ``strftime`` is a large part
    of formatting each; within one second the text is the same, so it is reused.
    """

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        whole = int(record.created)
        second, text = self._second
        if second != whole:
            text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(record.created))
            self._second = (whole, text)
        return f"{text},{int(record.msecs):03d}"


class JSONFormatter(logging.Formatter):
    """One JSON object per line, for log shippers: time, level, logger, message (+ exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class ReopenableFileHandler(logging.FileHandler):
    """A log file that ``reopen()`` opens again by name (for logrotate's SIGHUP)."""

    def reopen(self) -> None:
        """Switch to a freshly opened file of the same name, then close the old stream.

        The new file is opened first: if that fails (typically after ``--uid``, when the new
        user may not create files in the log folder), ``OSError`` is raised and logging goes on
        into the old, renamed file instead of into a closed stream.
        """
        self.acquire()
        try:
            fresh = self._open()
            old, self.stream = self.stream, fresh
            if old is not None:
                old.flush()
                old.close()
        finally:
            self.release()


def _rotating_handler(path: str, max_bytes: int, backups: int) -> logging.Handler:
    from logging.handlers import RotatingFileHandler

    class ReopenableRotatingFileHandler(RotatingFileHandler):
        """Rotates at ``max_bytes`` keeping ``backups`` old files; reopenable like the above."""

        reopen = ReopenableFileHandler.reopen

    return ReopenableRotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                         encoding="utf-8")


def _syslog_handler() -> logging.Handler:
    from logging.handlers import SysLogHandler

    address: str | tuple[str, int] = ("localhost", 514)
    for candidate in ("/dev/log", "/var/run/syslog"):
        if os.path.exists(candidate):
            address = candidate
            break
    return SysLogHandler(address=address)


def make_handler(options: RunnerOptions, stream: TextIO | None = None) -> logging.Handler:
    """The handler the options ask for; raise ``RunnerError`` if the log cannot be opened."""
    if options.syslog:
        try:
            return _syslog_handler()
        except OSError as error:
            raise RunnerError(f"cannot open the system log: {one_line(error)}")
    path = options.logfile
    if path is None and options.daemon:
        path = DEFAULT_DAEMON_LOGFILE
    if path is None:
        return logging.StreamHandler(stream or sys.stderr)
    if path == "-":
        return logging.StreamHandler(stream or sys.stdout)
    if os.name == "posix":  # imported while we may: after --uid, _current_owner needs it
        import grp  # noqa: F401
    try:
        if options.log_max_bytes:
            return _rotating_handler(path, options.log_max_bytes, options.log_backups)
        return ReopenableFileHandler(path, encoding="utf-8")
    except OSError as error:
        raise RunnerError(f"cannot open log file {path}: {error.strerror or one_line(error)}")


def configure_logging(options: RunnerOptions, stream: TextIO | None = None) -> logging.Handler:
    """Route the root logger to the handler the options ask for; return that handler."""
    handler = make_handler(options, stream)
    if options.log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(TextFormatter(SYSLOG_FORMAT if options.syslog else TEXT_FORMAT))
    level_name = options.log_level or ("debug" if options.debug else "info")
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(getattr(logging, level_name.upper()))
    logging.captureWarnings(True)
    return handler


def _current_owner() -> tuple[str, str]:
    """This process's (user, group) names, or ids, for the logrotate advice.

    Runs after privileges were dropped, when modules not imported yet may no longer be
    importable (``make_handler`` imports ``grp`` early for this): a failure gives the number.
    """
    if not hasattr(os, "geteuid"):
        return "USER", "GROUP"
    uid, gid = os.geteuid(), os.getegid()  # type: ignore[attr-defined,unused-ignore]
    user, group = str(uid), str(gid)
    try:
        import pwd

        user = pwd.getpwuid(uid).pw_name
        import grp

        group = grp.getgrgid(gid).gr_name
    except Exception:  # unknown id, or grp not importable as the new user
        pass
    return user, group


def reopen_failure(path: str, error: OSError) -> str:
    """The one line logged when a log file cannot be reopened: why, and how to fix it."""
    reason = error.strerror or one_line(error)
    message = f"cannot reopen log file {path}: {reason}; still logging to the renamed file"
    if isinstance(error, PermissionError):
        user, group = _current_owner()
        message += (f" (this process runs as user {user}, which may not create {path}: let "
                    f"logrotate create it with 'create 0640 {user} {group}', or use "
                    "'copytruncate' instead of SIGHUP)")
    return message


def reopen_log_files() -> None:
    """Reopen every reopenable handler of the root logger (called on SIGHUP).

    A handler that cannot reopen keeps its old stream, and one error line says why.
    """
    for handler in logging.getLogger().handlers:
        reopen = getattr(handler, "reopen", None)
        if reopen is not None:
            try:
                reopen()
            except OSError as error:
                path = getattr(handler, "baseFilename", "") or "(unknown)"
                log.error("%s", reopen_failure(path, error))
            else:
                log.info("log file reopened")
