"""The log view's ``q=`` pattern, searched within a time budget.

Any logged-in user (a viewer too) may send a regular expression, and the log lines hold text
that others chose (a failed login's user name is logged).  With the stdlib's ``re`` a pattern
such as ``(x+x+)+y`` takes seconds on a line of thirty x's, during which the whole
application's event loop waits.  The ``regex`` library (in the ``admin`` extra) takes a
``timeout``: a query gets one second in all, a live line a twentieth.  Without ``regex`` the
stdlib is used, unbounded (say so in a log line once).
"""

from __future__ import annotations

import importlib
import logging
import re
import time
from typing import Any

__all__ = ["LogSearch", "SearchTooSlow"]

log = logging.getLogger("dropins.admin")
QUERY_BUDGET = 1.0
LINE_BUDGET = 0.05


class SearchTooSlow(Exception):
    """The pattern took longer than its budget."""


def _engine() -> Any:
    try:
        return importlib.import_module("regex")
    except ImportError:
        log.warning("admin: without the regex library a log search cannot be timed out: "
                    "pip install 'dropins[admin]'")
        return None


class LogSearch:
    """A compiled ``q=``; ``ValueError`` (with the reason) when it is not a valid pattern."""

    def __init__(self, text: str) -> None:
        self.engine = _engine()
        try:
            if self.engine is not None:
                self.pattern = self.engine.compile(text, self.engine.IGNORECASE)
            else:
                self.pattern = re.compile(text, re.IGNORECASE)
        except (re.error, getattr(self.engine, "error", re.error)) as error:
            raise ValueError(str(error)) from None
        #: when the current query must end (``monotonic``); None: per line (live lines)
        self.deadline: float | None = None

    def start_query(self) -> None:
        self.deadline = time.monotonic() + QUERY_BUDGET

    def end_query(self) -> None:
        self.deadline = None

    def search(self, message: str) -> bool:
        """Whether ``message`` matches; ``SearchTooSlow`` past the budget."""
        if self.engine is None:
            return self.pattern.search(message) is not None
        budget = LINE_BUDGET if self.deadline is None else self.deadline - time.monotonic()
        if budget <= 0:
            raise SearchTooSlow()
        try:
            return self.pattern.search(message, timeout=budget) is not None
        except TimeoutError:
            raise SearchTooSlow() from None
