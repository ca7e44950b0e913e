"""The admin's JSON API: the routes under ``/api/``, each answering JSON, errors included.

Every answer is ``{"error": "..."}`` with the right status when something is wrong (404 an
unknown service, 422 a configuration with problems, 403 a viewer's change or a missing CSRF
token, 400 a bad query), never a traceback.  Reads are for every logged-in user; changes
(``POST``) need the ``operator`` role and are audited in the log with the user's name.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

from dropins.admin.editing import EditError
from dropins.admin.ring import matches
from dropins.admin.tree import UnknownService

__all__ = ["Api", "ApiError"]

ACTIONS = ("stop", "start", "restart")


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": message, **extra}


def json_body(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8")) if data.strip() else {}
    except (UnicodeDecodeError, ValueError) as error:
        raise ApiError(400, f"the body is not JSON: {error}")
    if not isinstance(value, dict):
        raise ApiError(400, "the body must be a JSON object")
    return value


def log_filters(query: dict[str, str]) -> tuple[int, str | None, Any]:
    """``since``, ``level`` and ``q`` of a log query, checked."""
    from dropins.admin.ring import LEVELS

    try:
        since = int(query.get("since") or 0)
    except ValueError:
        raise ApiError(400, f"invalid since={query['since']!r}: give a line number, e.g. 0")
    level = query.get("level") or None
    if level is not None and level not in LEVELS:
        raise ApiError(400, f"invalid level={level!r}: give one of {', '.join(LEVELS)}")
    pattern = None
    if query.get("q"):
        from dropins.admin.search import LogSearch

        try:
            pattern = LogSearch(query["q"])
        except ValueError as error:
            raise ApiError(400, f"invalid regular expression q={query['q']!r}: {error}")
    return since, level, pattern


class Api:
    """The routes, over the admin's parts: the tree, the log ring, the config editor."""

    def __init__(self, tree: Any, ring: Any, editor: Any, started: float,
                 workers: Any = None) -> None:
        self.tree = tree
        self.ring = ring
        self.editor = editor
        self.started = started
        self.workers = workers

    async def get(self, path: str, query: dict[str, str]) -> Any:
        if path == "/api/services":
            return {"services": await _maybe_await(self.tree.describe())}
        if path == "/api/logs":
            since, level, pattern = log_filters(query)
            return {"lines": _timed_query(self.ring, since, level, pattern, 1000)}
        if path == "/api/config":
            return self._edit(self.editor.read)
        if path == "/api/plugins":
            return {"plugins": _plugins()}
        if path == "/api/process":
            return self.process()
        raise ApiError(404, f"no such API: GET {path} (see docs/admin.md)")

    async def post(self, path: str, body: bytes, user: str) -> Any:
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[:2] == ["api", "services"]:
            name, action = parts[2], parts[3]
            if action not in ACTIONS:
                raise ApiError(404, f"unknown action {action!r}: use stop, start or restart")
            try:
                return {"service": await self.tree.act(name, action, user)}
            except ApiError:
                raise
            except UnknownService:
                known = ", ".join(self.tree.names())
                raise ApiError(404, f"no service named {name!r} (services: {known})")
            except Exception as error:
                raise ApiError(500, f"{action} {name}: {type(error).__name__}: {error}")
        if path in ("/api/config/check", "/api/config/apply"):
            text = self._proposed(json_body(body))
            if path.endswith("check"):
                return self._edit(self.editor.check, text)
            return await self._edit_async(self.editor.apply(text, user))
        if path == "/api/config/rollback":
            return await self._edit_async(self.editor.rollback(user))
        raise ApiError(404, f"no such API: POST {path} (see docs/admin.md)")

    def _proposed(self, body: dict[str, Any]) -> str:
        """The proposed file: ``text`` as given, or the current one with ``set`` applied."""
        if isinstance(body.get("text"), str):
            text: str = body["text"]
        elif isinstance(body.get("set"), dict):
            current = self._edit(self.editor.read)["text"]
            text = self._edit(self.editor.set_values, current, body["set"])
        else:
            raise ApiError(400, 'give {"text": "the whole file"} or {"set": {"dotted.key": '
                                'value}}')
        return text

    @staticmethod
    def _edit(function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except EditError as error:
            raise ApiError(error.status, error.message, problems=error.problems)
        except OSError as error:
            raise ApiError(500, f"cannot read or write the file: {error.strerror or error}")

    @staticmethod
    async def _edit_async(coroutine: Any) -> Any:
        try:
            return await coroutine
        except EditError as error:
            raise ApiError(error.status, error.message, problems=error.problems)
        except OSError as error:
            raise ApiError(500, f"cannot write the file: {error.strerror or error}")

    def process(self) -> dict[str, Any]:
        import dropins

        usage = resource.getrusage(resource.RUSAGE_SELF)
        try:
            open_files = len(os.listdir("/proc/self/fd"))
        except OSError:
            open_files = None
        return {
            "pid": os.getpid(), "uptime": time.time() - self.started,
            "started": self.started, "max_rss_kib": usage.ru_maxrss,
            "rss_kib": _rss_kib(), "open_files": open_files,
            "workers": self.workers() if callable(self.workers) else [],
            "python": sys.version.split()[0], "dropins": dropins.__version__,
            "argv": sys.argv,
        }

    async def stream(self, exchange: Any, query: dict[str, str]) -> None:
        """``/api/logs/stream``: Server-Sent Events, one ``data:`` JSON line per log line."""
        import asyncio

        from dropins.web.exchange import ClientDisconnected

        since, level, pattern = log_filters(query)
        queue = self.ring.subscribe()
        exchange.keep_alive = False
        exchange.send_head(200, [(b"Content-Type", b"text/event-stream; charset=utf-8"),
                                 (b"Cache-Control", b"no-store"),
                                 (b"X-Accel-Buffering", b"no")])
        try:
            exchange.write(b"retry: 2000\n\n")
            for line in _timed_query(self.ring, since, level, pattern, 200):
                exchange.write(_event(line))
            await exchange.drain()
            while True:
                try:
                    line = await asyncio.wait_for(queue.get(), 15.0)
                except TimeoutError:
                    exchange.write(b": keep-alive\n\n")
                    await exchange.drain()
                    continue
                if line is None:
                    break
                if _live_match(line, level, pattern) and line["seq"] > since:
                    exchange.write(_event(line))
                    await exchange.drain()
        except (ClientDisconnected, ConnectionError):
            pass
        finally:
            self.ring.unsubscribe(queue)
        if not exchange.finished and not exchange.connection.closed:
            exchange.end()


def _timed_query(ring: Any, since: int, level: str | None, pattern: Any,
                 limit: int) -> list[dict[str, Any]]:
    from dropins.admin.search import SearchTooSlow

    if pattern is not None:
        pattern.start_query()
    try:
        return ring.query(since, level, pattern, limit=limit)
    except SearchTooSlow:
        raise ApiError(400, "the search q= takes too long on these lines: give a simpler "
                            "pattern (or plain words)") from None
    finally:
        if pattern is not None:
            pattern.end_query()


def _live_match(line: dict[str, Any], level: str | None, pattern: Any) -> bool:
    from dropins.admin.search import SearchTooSlow

    try:
        return matches(line, level, pattern)
    except SearchTooSlow:
        return False  # a live line the pattern cannot decide on in time is left out


async def _maybe_await(value: Any) -> Any:
    import inspect

    return await value if inspect.isawaitable(value) else value


def _event(line: dict[str, Any]) -> bytes:
    return b"id: %d\ndata: %s\n\n" % (line["seq"], json.dumps(line).encode())


def _rss_kib() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as file:
            pages = int(file.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _plugins() -> list[dict[str, Any]]:
    from dropins.plugin import iter_plugin_info

    return [record.as_dict() for record in iter_plugin_info(package="dropins.plugins")]
