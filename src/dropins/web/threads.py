"""A small pool of daemon threads for WSGI applications.

Why not ``concurrent.futures.ThreadPoolExecutor``: its workers are joined when the interpreter
exits, so a single WSGI request stuck in an endless loop would keep ``dropins web`` from ever
exiting after SIGTERM.  These workers are daemon threads: once the server has stopped (and
waited the shutdown timeout for requests in flight), the process can exit regardless.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

__all__ = ["DaemonThreadPool"]

logger = logging.getLogger("dropins.web")


class DaemonThreadPool:
    """Runs submitted calls on up to ``max_workers`` daemon threads, started on demand."""

    def __init__(self, max_workers: int, name: str = "dropins-web") -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self.name = name
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]
                                      | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, function: Callable[..., Any], *args: Any) -> Future[Any]:
        """Schedule ``function(*args)``; its result or exception lands in the returned future."""
        future: Future[Any] = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("the thread pool is shut down")
            self._work.put((future, function, args))
            if self._idle == 0 and len(self._threads) < self.max_workers:
                thread = threading.Thread(target=self._worker, daemon=True,
                                          name=f"{self.name}-{len(self._threads) + 1}")
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1 if self._idle else 0
        return future

    def _worker(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, function, args = item
            if future.set_running_or_notify_cancel():
                try:
                    result = function(*args)
                except BaseException as error:
                    future.set_exception(error)
                else:
                    future.set_result(result)
            del item, future, function, args
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        """Take no more work; idle workers exit, busy ones exit after their current call."""
        with self._lock:
            self._shutdown = True
            for _ in self._threads:
                self._work.put(None)
