"""What ``--reload`` watches, and the watcher that reports changes to it.

The targets are what a developer edits: the application file (``-c FILE``), the ``--app``
file, and the Python modules the application imported from outside the standard library and
site-packages (the user's own code; dropins' own package is left out too, since the supervisor
keeps running the dropins it started with).  A module's *directory* is watched, not only its
file: editors save by writing a temporary file and renaming it over the old one, which a watch
on the old file's inode would miss, and a module added beside the others (imported by the new
code) counts too.  ``--reload-dir DIR`` adds a whole tree of ``*.py`` files.  In every place,
what watchfiles' default filter ignores stays ignored: ``__pycache__``, ``.git``, ``.venv``,
byte-code, and editor swap, backup and lock files (``.x.swp``, ``x~``, ``.#x``).

Changes are debounced (a save that touches several files is one batch) and reported as sorted
lists of paths; the watcher ends when its stop event is set.  watchfiles is an extra, imported
only here and only when ``--reload`` is given.
"""

from __future__ import annotations

import asyncio
import os
import site
import sys
import sysconfig
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

__all__ = ["WatchError", "WatchTargets", "build_targets", "check_directories", "describe_changes",
           "require_watchfiles", "user_source_files", "watch_changes"]

#: Files with these endings count inside watched directories; the exact files (application
#: file, --app file, imported modules) count whatever their names.
SOURCE_SUFFIXES = (".py",)

#: Grouping of changes, in milliseconds: a batch is reported once no change came for
#: ``QUIET_MS``, or at the latest ``MAX_GROUP_MS`` after its first change.
QUIET_MS = 100
MAX_GROUP_MS = 1600


class WatchError(Exception):
    """A one-line reason why ``--reload`` cannot watch what it was given."""


def require_watchfiles() -> None:
    """Fail early, with the fix, when the watchfiles extra is not installed."""
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        raise WatchError("--reload needs the watchfiles package: pip install 'dropins[reload]'")


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


def _installed_roots() -> tuple[Path, ...]:
    """Where the standard library and installed distributions live (never the user's code)."""
    roots: set[str] = set()
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        paths = sysconfig.get_paths(vars={"base": prefix, "platbase": prefix,
                                          "installed_base": prefix,
                                          "installed_platbase": prefix})
        roots.update(paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib"))
    roots.update(site.getsitepackages() if hasattr(site, "getsitepackages") else ())
    roots.add(site.getusersitepackages())
    roots.add(str(Path(__file__).resolve().parents[1]))  # dropins itself
    return tuple(_real(root) for root in roots if root)


def _is_installed(path: Path, roots: tuple[Path, ...]) -> bool:
    if any(part in ("site-packages", "dist-packages") for part in path.parts):
        return True  # distributions' layouts vary (Debian's dist-packages); this part does not
    return any(path.is_relative_to(root) for root in roots)


def user_source_files(modules: Iterable[ModuleType] | None = None) -> set[Path]:
    """The ``.py`` files of ``modules`` (default: every imported module) that are the user's:
    neither in the standard library, nor in site-packages, nor dropins' own."""
    if modules is None:
        modules = list(sys.modules.values())
    roots = _installed_roots()
    files: set[Path] = set()
    for module in modules:
        origin = getattr(getattr(module, "__spec__", None), "origin", None)
        if not isinstance(origin, str) or not origin.endswith(".py"):
            continue  # built-in, frozen, extension module, namespace package
        path = _real(origin)
        if path.is_file() and not _is_installed(path, roots):
            files.add(path)
    return files


@dataclass(frozen=True)
class WatchTargets:
    """The files and directories to watch, with resolved paths (events come as watched)."""

    #: Files that count whatever their names: the application file, the --app file, modules.
    files: frozenset[Path]
    #: Directories whose own ``*.py`` files count (not their subdirectories): the modules'.
    folders: frozenset[Path]
    #: Directories whose ``*.py`` files count at any depth: ``--reload-dir``.
    trees: frozenset[Path]

    def counts(self, path: str | Path) -> bool:
        """Whether a change to ``path`` should restart the workers."""
        changed = Path(path)
        if changed in self.files:
            return True
        if not changed.name.endswith(SOURCE_SUFFIXES) or _ignored(changed):
            return False
        if changed.parent in self.folders:
            return True
        return any(changed.is_relative_to(tree) for tree in self.trees)

    def with_files(self, paths: Iterable[str | Path]) -> WatchTargets:
        """These targets and the module files ``paths`` (and their folders)."""
        added = {_real(path) for path in paths}
        return WatchTargets(self.files | added, self.folders | {path.parent for path in added},
                            self.trees)

    @property
    def empty(self) -> bool:
        return not (self.files or self.folders or self.trees)

    def describe(self) -> str:
        """A short account for the log: ``3 files in 2 folders, and every *.py below src``."""
        folders = {path.parent for path in self.files} | self.folders
        text = f"{_plural(len(self.files), 'file')} in {_plural(len(folders), 'folder')}"
        if self.trees:
            text += ", and every *.py below " + ", ".join(str(tree) for tree in sorted(self.trees))
        return text


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@cache
def _default_filter() -> Callable[..., bool]:
    from watchfiles import DefaultFilter

    return DefaultFilter()


def _ignored(path: Path) -> bool:
    """What watchfiles ignores by default: caches, VCS and venv folders, editor files."""
    from watchfiles import Change

    return not _default_filter()(Change.modified, str(path))


def check_directories(reload_dirs: Iterable[str]) -> list[str]:
    """``reload_dirs``, once each is known to be a directory (else a ``WatchError``)."""
    directories = list(reload_dirs)
    for directory in directories:
        if not os.path.isdir(directory):
            raise WatchError(f"--reload-dir {directory}: no such directory; give a folder of "
                             "Python files to watch")
    return directories


def build_targets(config: str | None = None, app: str | None = None,
                  reload_dirs: Iterable[str] = (),
                  modules: Iterable[ModuleType] | None = None) -> WatchTargets:
    """The targets for these runner options; a missing ``--reload-dir`` is a ``WatchError``."""
    trees = {_real(directory) for directory in check_directories(reload_dirs)}
    files = user_source_files(modules)
    folders = {path.parent for path in files}
    files.update(_real(path) for path in (config, app) if path)
    return WatchTargets(frozenset(files), frozenset(folders), frozenset(trees))


def _watch_roots(targets: WatchTargets) -> tuple[list[Path], list[Path]]:
    """(directories watched alone, directories watched with their subdirectories).

    An exact file is watched through its directory (see the module's docstring); a directory
    inside a tree is left to the tree's recursive watch.
    """
    trees = sorted(targets.trees)
    trees = [tree for tree in trees if not any(tree != other and tree.is_relative_to(other)
                                               for other in trees)]
    alone = {path.parent for path in targets.files} | set(targets.folders)
    alone = {folder for folder in alone
             if folder.is_dir() and not any(folder.is_relative_to(tree) for tree in trees)}
    return sorted(alone), trees


async def watch_changes(targets: WatchTargets, stop: asyncio.Event,
                        quiet_ms: int = QUIET_MS,
                        max_group_ms: int = MAX_GROUP_MS) -> AsyncGenerator[list[Path], None]:
    """Yield each debounced batch of changed target paths (sorted) until ``stop`` is set.

    One watchfiles watcher runs for the directories watched alone and one for the trees (its
    ``recursive`` setting is per watcher); their batches meet in a queue, and batches that
    arrived while the consumer was busy (restarting workers) come out as one.
    """
    from watchfiles import awatch

    quiet_watchfiles()
    alone, trees = _watch_roots(targets)
    queue: asyncio.Queue[set[Path]] = asyncio.Queue()
    halt = asyncio.Event()  # ends the watchers: on ``stop``, or when the consumer leaves

    async def pump(roots: list[Path], recursive: bool) -> None:
        async for changes in awatch(*roots, watch_filter=None, debounce=max_group_ms,
                                    step=quiet_ms, stop_event=halt, recursive=recursive):
            counted = {Path(path) for _, path in changes if targets.counts(path)}
            if counted:
                queue.put_nowait(counted)

    pumps = [asyncio.ensure_future(pump(roots, recursive))
             for roots, recursive in ((alone, False), (trees, True)) if roots]
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while True:
            getting = asyncio.ensure_future(queue.get())
            await asyncio.wait({getting, stopped, *pumps}, return_when=asyncio.FIRST_COMPLETED)
            if not getting.done():
                getting.cancel()
                for failed in pumps:  # a watcher that broke (its folder removed, say)
                    if failed.done() and not failed.cancelled() and failed.exception():
                        failed.result()
                return
            batch = getting.result()
            while not queue.empty():
                batch |= queue.get_nowait()
            yield sorted(batch)
    finally:
        halt.set()  # the watchers' threads see it within a step and end
        stopped.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


def quiet_watchfiles() -> None:
    """Keep watchfiles' own "N changes detected" lines out of the log (our restart line says
    which file changed), unless dropins logs at debug level or the level was set."""
    import logging

    watchfiles_log = logging.getLogger("watchfiles")
    if watchfiles_log.level == logging.NOTSET and logging.getLogger().level > logging.DEBUG:
        watchfiles_log.setLevel(logging.WARNING)


def describe_changes(paths: list[Path]) -> str:
    """``app.py`` or ``app.py and 2 more``, relative to the current directory when below it:
    what the log line of a restart says changed."""
    first = paths[0]
    here = Path.cwd()
    shown = str(first.relative_to(here)) if first.is_relative_to(here) else str(first)
    return shown if len(paths) == 1 else f"{shown} and {len(paths) - 1} more"
