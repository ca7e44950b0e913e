"""What a log file does when it cannot be written (a full disk): drop lines, count them, go on.

Without this, a full disk under ``--logfile`` made every flush raise inside an event-loop
callback; asyncio logged that error, which scheduled another flush, and so on: a core spun
forever, and every write outside the loop printed a traceback.  Here the first failure is said
once on standard error, the lines written meanwhile are dropped and counted, and writing is
tried again at most once per ``RETRY_SECONDS`` (so a busy server pays no system call per
dropped line).  When it works again, the file gets a line saying how many were lost, and
standard error too.

Whatever was buffered when the write failed is dropped with the stream: a fresh stream is
opened on the next attempt, so no half-written buffer is ever written out later.
"""

from __future__ import annotations

import errno
import logging
import sys
import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms per start
if TYPE_CHECKING:
    from typing import Any

#: Seconds between attempts to write again while the log file cannot be written.
RETRY_SECONDS = 1.0


def runner_record(level: int, message: str) -> logging.LogRecord:
    """A record of the runner's logger, made by hand to give straight to a handler.

    For where going through the logger would not do: inside ``emit`` (it would re-enter the
    handler) and at a forced exit (it would wait for every handler's lock).
    """
    return logging.LogRecord("dropins.runner", level, __file__, 0, message, None, None)


def _reason(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "no space left"
    return (error.strerror or str(error)).lower()


class DropLinesWhenUnwritable:
    """Mixin for ``logging.FileHandler`` subclasses (before them in the bases).

    Expects ``flush_now()`` from ``LoopBatchedFlush`` further along the bases.
    """

    _unflushed = 0  # records written into the stream since its last successful flush
    _dropped = 0  # records lost since writing failed
    _failure: OSError | None = None  # why writing fails, while it does
    _retry_at = 0.0
    _announced = False

    # the attributes and methods of logging.FileHandler that this relies on
    baseFilename: str
    stream: Any
    lock: Any

    def emit(self, record: logging.LogRecord) -> None:
        if self._failure is not None:
            if time.monotonic() < self._retry_at:
                self._dropped += 1
                return
            self._write_again(record)
            return
        self._unflushed += 1
        self._write(record)

    def _write(self, record: logging.LogRecord) -> None:
        """``emit`` of the handler class, turning an ``OSError`` into dropped lines."""
        try:
            super().emit(record)  # type: ignore[misc]
        except OSError as error:  # FileHandler opens a closed stream outside its try
            self._fail(error)

    def handleError(self, record: logging.LogRecord) -> None:
        """The stdlib's hook for a failed ``emit``: an ``OSError`` drops lines, no traceback."""
        error = sys.exception()
        if isinstance(error, OSError):
            self._fail(error)
        else:
            super().handleError(record)  # type: ignore[misc]

    def flush_now(self) -> None:
        with self.lock:
            try:
                super().flush_now()  # type: ignore[misc]
            except OSError as error:
                self._fail(error)
            else:
                self._unflushed = 0

    def _end_partial_line(self) -> None:
        """End the line that the failed write cut short, so that the note starts a line."""
        try:
            with open(self.baseFilename, "rb") as current:
                current.seek(-1, 2)
                if current.read(1) in (b"\n", b""):
                    return
            if self.stream is None:
                self.stream = self._open()  # type: ignore[attr-defined]
            self.stream.write("\n")
        except OSError:  # empty (seek), gone, or still full: the write that follows tells
            pass

    def _fail(self, error: OSError) -> None:
        """Drop what the stream holds, count it, and say so once."""
        lost, self._unflushed = self._unflushed, 0
        stream, self.stream = self.stream, None  # FileHandler opens a fresh one when needed
        if stream is not None:
            try:
                stream.close()  # flushes (and fails) once more
            except OSError:
                pass
        self._lost(lost, error, retry_at=time.monotonic() + RETRY_SECONDS)

    def _close_replaced(self, old: Any) -> None:
        """Close the stream that ``reopen()`` replaced.  What it still held and cannot write
        counts as dropped, reported with the next line written into the fresh stream."""
        lost, self._unflushed = self._unflushed, 0
        try:
            old.close()  # flushes; closes the descriptor even when that fails
        except OSError as error:
            self._lost(lost, error, retry_at=0.0)  # the fresh stream may work: try at once

    def _lost(self, lines: int, error: OSError, retry_at: float) -> None:
        """Count ``lines`` as dropped because of ``error``; say so once, until writing works."""
        self._dropped += lines
        self._retry_at = retry_at
        if self._failure is None:
            self._failure = error
        if not self._announced:
            self._announced = True
            _tell(f"log file {self.baseFilename}: {_reason(error)}; dropping lines")

    def _write_again(self, record: logging.LogRecord) -> None:
        """Try the file again: a note of what was lost, ``record``, and a flush at once."""
        assert self._failure is not None
        failure, owed = self._failure, self._dropped
        self._failure, self._dropped, self._unflushed = None, 0, 0
        note = (f"dropped {owed} lines while log file {self.baseFilename} could not be "
                f"written: {_reason(failure)}")
        self._end_partial_line()
        self._write(runner_record(logging.WARNING, note))  # not counted: not a dropped line
        self.emit(record)
        if self._failure is None:
            self.flush_now()  # only a flush tells whether the disk has room again
        if self._failure is None:
            self._announced = False
            _tell(f"log file {self.baseFilename}: writing again; dropped {owed} lines")
        else:
            self._dropped += owed


def _tell(message: str) -> None:
    """One line on standard error, which is not the log file (and is /dev/null in a daemon)."""
    try:
        sys.stderr.write(f"dropins: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
