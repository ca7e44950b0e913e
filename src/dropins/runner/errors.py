"""Errors the runner reports to the user as one line, with the exit status they deserve.

Everything the runner can foresee (bad options, a port in use, a live instance holding the
pidfile) is raised as a ``RunnerError`` and printed as ``dropins: error: MESSAGE``; only
``--debug`` adds the traceback.  Keeping the exit status on the exception lets deep helpers
(pidfile, privileges, daemon) decide it without knowing how the CLI prints.
"""

from __future__ import annotations

#: Exit status for bad command-line input, as argparse uses.
USAGE = 2
#: Exit status for a failure at run time (a port in use, a broken plugin).
FAILURE = 1
#: Exit status after SIGINT (Ctrl-C) cut a start short, or a second SIGINT: 128 + SIGINT.
INTERRUPTED = 130
#: Exit status after SIGTERM cut a start short: 128 + SIGTERM, as a shell reports it.
TERMINATED = 143


class RunnerError(Exception):
    """A failure with a one-line message meant for the user, and an exit status."""

    def __init__(self, message: str, status: int = FAILURE) -> None:
        super().__init__(message)
        self.status = status

    @property
    def message(self) -> str:
        return str(self)


class UsageError(RunnerError):
    """Bad runner options: exit status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, USAGE)


def one_line(error: BaseException) -> str:
    """``error`` as one line of text: its message, or its type name when it has none."""
    text = " ".join(str(error).split())
    return text or type(error).__name__
