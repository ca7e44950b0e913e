"""What a console session starts with: ``app``, ``services``, ``loop``, ``tasks()``, ``tree()``.

Each session gets a namespace of its own (``make_namespace`` builds a new dict every time), so
that one user's variables never change another's.  ``app`` is the root of the service tree the
console belongs to, found from the console service's parent chain when the session starts;
``services`` is a live view of that tree by name (a reload that adds or removes services shows
at once).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["ServiceDirectory", "find_root", "make_namespace", "task_table", "tree_text"]


def find_root(service: Any) -> Any:
    """The root of the tree ``service`` is in (the Application, once the runner runs it)."""
    while getattr(service, "parent", None) is not None:
        service = service.parent
    return service


def _children(service: Any) -> list[Any]:
    try:
        return list(service)
    except TypeError:  # a leaf Service is not iterable
        return []


def _walk(service: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, service) for every named descendant, depth first: ``site``, ``site/web``."""
    for child in _children(service):
        name = getattr(child, "name", None)
        path = prefix + name if name is not None else prefix.rstrip("/")
        if name is not None:
            yield path, child
        yield from _walk(child, path + "/" if path else "")


class _Shown(str):
    """Text that the prompt shows as it is (not quoted with ``\\n`` escapes)."""

    def __repr__(self) -> str:
        return str(self)


class _Table(list[Any]):
    """A list the prompt shows as a table (still a list, for code that uses the items)."""

    def __init__(self, items: list[Any], text: str) -> None:
        super().__init__(items)
        self.text = text

    def __repr__(self) -> str:
        return self.text


class ServiceDirectory(Mapping[str, Any]):
    """The named services under ``root`` by path (``services["site"]``, ``["site/web"]``)."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def __getitem__(self, path: str) -> Any:
        for found, service in _walk(self.root):
            if found == path:
                return service
        known = ", ".join(found for found, _ in _walk(self.root)) or "none"
        raise KeyError(f"no service {path!r} (known: {known})")

    def __iter__(self) -> Iterator[str]:
        return (path for path, _ in _walk(self.root))

    def __len__(self) -> int:
        return sum(1 for _ in _walk(self.root))

    def __repr__(self) -> str:
        return tree_text(self.root)


def _state(service: Any) -> str:
    return "running" if getattr(service, "running", False) else "stopped"


def tree_text(root: Any) -> str:
    """The service tree, one service a line, indented, with its type and state."""
    lines: list[str] = []

    def add(service: Any, depth: int) -> None:
        name = getattr(service, "name", None)
        label = repr(name) if name is not None else "(unnamed)"
        addresses = ", ".join(getattr(service, "addresses", None) or [])
        where = f" on {addresses}" if addresses else ""
        lines.append(f"{'  ' * depth}{label} {type(service).__name__} {_state(service)}{where}")
        for child in _children(service):
            add(child, depth + 1)

    add(root, 0)
    return _Shown("\n".join(lines))


def _where(task: asyncio.Task[Any]) -> str:
    """Where a task is suspended: ``file.py:42 in function``, or its state."""
    if task.done():
        return "done"
    frames = task.get_stack(limit=1)
    if not frames:
        return "not started"
    frame = frames[-1]
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


def task_table(loop: asyncio.AbstractEventLoop | None = None) -> _Table:
    """The loop's unfinished tasks, like ``python -m asyncio ps``: name, coroutine, where."""
    found = sorted(asyncio.all_tasks(loop), key=lambda task: task.get_name())
    rows = [("NAME", "COROUTINE", "SUSPENDED AT")]
    for task in found:
        coroutine = task.get_coro()
        qualname = getattr(coroutine, "__qualname__", type(coroutine).__name__)
        rows.append((task.get_name(), qualname, _where(task)))
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    text = "\n".join(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}" for row in rows)
    return _Table(found, text)


class _Leave:
    """``exit()``/``quit()``: end this session (the built-in ones would close the process's
    stdin first)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Use {self.name}() or Ctrl-D (end of input) to leave the console"

    def __call__(self, code: object = None) -> None:
        raise SystemExit(code)


def make_namespace(console: Any, loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    """A new namespace for one session of ``console`` (a service in the tree)."""
    root = find_root(console)
    return {
        "__name__": "__console__",
        "__doc__": None,
        "__builtins__": __builtins__,
        "asyncio": asyncio,
        "sys": sys,
        "app": root,
        "services": ServiceDirectory(root),
        "loop": loop,
        "tasks": lambda: task_table(loop),
        "tree": lambda: tree_text(root),
        "exit": _Leave("exit"),
        "quit": _Leave("quit"),
    }
