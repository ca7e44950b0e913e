"""Logging for the runner: where lines go (stream, file, rotated file, syslog) and their format.

Everything uses stdlib ``logging`` so that services simply call ``logging.getLogger(__name__)``.
Log files are reopened on SIGHUP (``reopen_log_files``) so that logrotate can rename them;
rotation by size, when asked for, keeps a bounded number of old files; a log file that cannot be
written (a full disk) drops and counts lines instead of failing (``log_drops``).
``logging.handlers`` is imported only when a file or syslog handler is needed.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import sys
import time

from dropins.runner.arguments import RunnerOptions
from dropins.runner.errors import RunnerError, one_line
from dropins.runner.log_drops import DropLinesWhenUnwritable, runner_record

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms per start
if TYPE_CHECKING:
    from io import TextIOWrapper
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


class NotALogFile(OSError):
    """What is at the log path can hang the process or is no file at all (see ``refused_kind``)."""

    def __init__(self, kind: str) -> None:
        super().__init__(errno.EINVAL, f"it is {kind}")


def refused_kind(mode: int) -> str | None:
    """What a file of this mode is, if it cannot take a log; None for a regular file or a
    character device (``/dev/null``: writes never block there, and twistd users use it)."""
    if stat.S_ISREG(mode) or stat.S_ISCHR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), where writes block while nothing reads"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def _open_no_follow(handler: logging.FileHandler) -> TextIOWrapper:
    """Open ``handler``'s file for appending, refusing a symbolic link or what can hang.

    The log folder may belong to the service user; a link planted there must not make a runner
    started as root append to (and so corrupt) the file it points to.  A FIFO would block the
    open until some reader came (``O_NONBLOCK`` makes that fail at once, with ENXIO) and then
    block every write; a socket or a block device is no log either.  They are refused, as for
    the pidfile.  A character device such as ``/dev/null`` is accepted (the standard library
    never rotates one).
    """
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | nonblocking
    try:
        fd = os.open(handler.baseFilename, flags, 0o666)
    except OSError as error:
        if error.errno == errno.ENXIO:  # a FIFO with no reader, or a socket
            kind = refused_kind(os.lstat(handler.baseFilename).st_mode)
            if kind is not None:
                raise NotALogFile(kind) from None
        raise
    try:
        if (kind := refused_kind(os.fstat(fd).st_mode)) is not None:
            raise NotALogFile(kind)
        if nonblocking:
            os.set_blocking(fd, True)
        return open(fd, "a", encoding=handler.encoding, errors=handler.errors)
    except BaseException:
        os.close(fd)
        raise


class LoopBatchedFlush:
    """Mixin for log-file handlers: within a running event loop, flush once per loop iteration.

    A busy server writes an access line per request, and flushing each is one write system call
    per line (about 8% of a small static response here).  Lines logged during one iteration of
    the event loop are flushed together by a callback right after it, so they still reach the
    file within microseconds; outside a running loop (threads, start-up, interpreter exit) every
    flush is immediate.  ``flush_now()`` is for leaving with ``os._exit`` from inside the loop.
    """

    _flush_loop: object = None  # the loop a flush is scheduled on, if any

    def flush(self) -> None:
        asyncio = sys.modules.get("asyncio")
        loop = asyncio._get_running_loop() if asyncio is not None else None
        if loop is None:
            self.flush_now()
        elif self._flush_loop is not loop:
            self._flush_loop = loop
            loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_loop = None
        self.flush_now()

    def flush_now(self) -> None:
        super().flush()  # type: ignore[misc]  # the handler class this is mixed into


class ReopenableFileHandler(DropLinesWhenUnwritable, LoopBatchedFlush, logging.FileHandler):
    """A log file that ``reopen()`` opens again by name (for logrotate's SIGHUP)."""

    _open = _open_no_follow

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
                self._close_replaced(old)
        finally:
            self.release()


def rotation_failure(path: str, error: OSError) -> str:
    """The one line logged when size rotation cannot rename the log: why, and how to fix it."""
    reason = error.strerror or one_line(error)
    folder = os.path.dirname(path) or "."
    user, _group = _current_owner()
    return (f"log rotation is off: cannot rotate {path}: {reason}; still logging to it without "
            f"rotating (this process runs as user {user}: give it a log folder it may write to "
            f"instead of {folder}, or leave out --log-max-bytes and rotate with logrotate)")


def _rotating_handler(path: str, max_bytes: int, backups: int) -> logging.Handler:
    from logging.handlers import RotatingFileHandler

    class ReopenableRotatingFileHandler(DropLinesWhenUnwritable, LoopBatchedFlush,
                                        RotatingFileHandler):
        """Rotates at ``max_bytes`` keeping ``backups`` old files; reopenable like the above.

        Rotation renames files in the log folder, which after ``--uid`` the service user may not
        be allowed to do.  The stdlib closes the stream before renaming, so a refused rename
        would lose every later line; here a rotation that cannot happen leaves the current
        stream open, switches rotation off and says so once.
        """

        _open = _open_no_follow
        reopen = ReopenableFileHandler.reopen
        _rotation_off = False

        def shouldRollover(self, record: logging.LogRecord) -> int:
            if self._rotation_off:
                return False
            return super().shouldRollover(record)

        def doRollover(self) -> None:
            folder = os.path.dirname(self.baseFilename) or "."
            if not os.access(folder, os.W_OK):
                self._turn_rotation_off(PermissionError(13, "Permission denied", folder))
                return
            if os.name == "nt":  # pragma: no cover - an open file cannot be renamed there
                self._roll_over_closed_first()
                return
            current, self.stream = self.stream, None  # the stdlib must not close it (yet)
            try:
                super().doRollover()  # renames the files, then opens a fresh stream
            except OSError as error:
                if self.stream is not None:
                    self.stream.close()
                self.stream = current
                self._turn_rotation_off(error)
                return
            if current is not None:
                current.close()

        def _roll_over_closed_first(self) -> None:
            try:
                super().doRollover()
            except OSError as error:
                if self.stream is None:
                    try:
                        self.stream = self._open()
                    except OSError:
                        pass
                self._turn_rotation_off(error)

        def _turn_rotation_off(self, error: OSError) -> None:
            self._rotation_off = True
            if self.stream is None:
                return
            record = runner_record(logging.ERROR, rotation_failure(self.baseFilename, error))
            logging.FileHandler.emit(self, record)  # here, not via ``log``: we are in emit()

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
    except NotALogFile as error:
        raise RunnerError(f"refusing log file {path}: {error.strerror}; remove it or choose "
                          f"another --logfile ({_instead_of_a_pipe(options)})")
    except OSError as error:
        raise RunnerError(f"cannot open log file {path}: {error.strerror or one_line(error)}")


def _instead_of_a_pipe(options: RunnerOptions) -> str:
    """Where to send the log instead of into a pipe or a socket, given the other options."""
    if options.daemon:  # detached from the terminal: no standard output to redirect
        return "with --daemon, use --syslog, or --logfile /dev/null to discard the log"
    advice = "to log into a pipe, use --logfile - and redirect standard output"
    return advice + (", or use --syslog" if os.name == "posix" else "")


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
