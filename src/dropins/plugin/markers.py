"""Import markers: remembering which plugin module was being imported when the process ended.

A plugin module that calls ``os._exit()`` (or crashes the interpreter) at import leaves no
exception to catch and no cache entry behind, so every later run would import it and die
again.  Before importing a module, discovery therefore writes a small marker file naming it
(module, file, file state) in the cache folder and holds an exclusive ``flock`` on it; after
the import, whatever its outcome, the marker is emptied and removed.  A marker found *unlocked
and still naming the same module in the same file state* was left by a process that ended
during that import: the module is then listed as broken instead of being imported again.

The lock tells a dead importer from a concurrent one (a second process importing the same
module meanwhile finds the file locked and simply imports without a marker), and the file is
emptied before it is unlocked, so an importer that finished normally never looks dead.
Markers cost a few system calls per import, that is only on a cache miss; they need POSIX
``flock`` and a writable cache folder, and are skipped silently without them.
"""

from __future__ import annotations

import os
from stat import S_ISREG

from dropins.plugin.cache import _dump_json, caching_enabled, private_cache_path
from dropins.plugin.diagnostics import debug

TYPE_CHECKING = False  # not typing's: importing typing costs more than a warm listing
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ImportMarker"]


class ImportMarker:
    """The marker of one import of ``module`` from ``path`` in file state ``key``.

    ``begin()`` says whether the previous import of exactly this ended its process; otherwise
    it leaves the marker in place, locked, until ``end()``.
    """

    def __init__(self, module: str, path: str, key: Any) -> None:
        self._content = _dump_json([module, path, key]).encode("utf-8", "surrogateescape")
        self._path = private_cache_path("importing", f"{module}\0{path}", hint=module) \
            if caching_enabled() else None
        self._handle: int | None = None

    def begin(self) -> bool:
        """Take the marker; True if the last import of this module (same file state) ended
        the process that ran it, in which case nothing is held and the module must not be
        imported."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return False
        if self._path is None:
            return False
        try:
            os.makedirs(os.path.dirname(self._path), exist_ok=True)
            handle = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                             | os.O_NONBLOCK, 0o644)
        except OSError as error:
            debug(f"no import marker {self._path}: {error}")
            return False
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: someone imports it now
            status = os.fstat(handle)
            if not S_ISREG(status.st_mode) or status.st_nlink == 0:  # or removed meanwhile
                raise OSError("not a regular file, or removed")
            if os.read(handle, len(self._content) + 1) == self._content:
                self._handle = handle
                self.end()
                return True
            os.ftruncate(handle, 0)
            os.pwrite(handle, self._content, 0)
        except OSError as error:
            os.close(handle)
            debug(f"no import marker {self._path}: {error}")
            return False
        self._handle = handle
        return False

    def end(self) -> None:
        """Empty and remove the marker, then release it (emptied first: a process that opened
        it meanwhile must not take a finished import for one that ended its process)."""
        handle, self._handle = self._handle, None
        if handle is None or self._path is None:
            return
        try:
            os.ftruncate(handle, 0)
            os.unlink(self._path)
        except OSError as error:
            debug(f"cannot remove import marker {self._path}: {error}")
        finally:
            os.close(handle)
