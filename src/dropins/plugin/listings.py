"""Remembered directory listings: a directory that did not change is not listed again.

Listing a directory of a thousand modules (``os.listdir``, then keeping and sorting the module
names) is a sixth of a warm listing of its plugins, and listing every ``sys.path`` directory for
distributions is most of an entry-point listing.  A directory's own status says whether its
entries changed: creating, removing or renaming an entry sets the directory's mtime and ctime
to the current time (and on many file systems changes its size or link count).  So the selected
names are remembered in the user cache directory under the directory's ``(st_dev, st_ino,
st_mtime_ns, st_ctime_ns, st_size, st_nlink)`` and recalled while that status is the same: the
rule importlib's path finder applies within a process, kept across processes.

Two traps, two bounds:

* Clock granularity ("racy" timestamps, as git calls them): an entry created in the same clock
  tick as the status was read leaves the status unchanged.  So a listing is remembered only
  when the directory is *settled*: its ctime and mtime at least ``SETTLED_NS`` older than the
  moment before the status was read (two seconds: more than a kernel clock tick and than the
  one- or two-second timestamps of some file systems).  A recently changed directory is listed.
* File systems that do not keep directory times (some FUSE mounts of object stores), or a file
  server whose clock is behind: a listing is recalled for at most ``MAX_AGE_NS`` (a minute)
  after it was made, so a change they hide is seen within a minute, never lost.

A file edited in place changes no directory status; that is what the plugin cache's key per
module is for.  This only answers "which entries are there".  Windows (no directory
descriptors, a creation time in ``st_ctime``) always lists.
"""

from __future__ import annotations

import os
from time import time_ns

from dropins.plugin.cache import caching_enabled, private_cache_path, read_cache, write_cache

# Not typing's TYPE_CHECKING: importing typing costs more than a whole warm listing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["MAX_AGE_NS", "SETTLED_NS", "Listings"]

#: How much older than a listing a directory's status must be for the listing to be remembered.
SETTLED_NS = 2_000_000_000
#: How long after it was made a remembered listing may be recalled.
MAX_AGE_NS = 60_000_000_000

#: ``directories`` maps a directory to ``[status, names, listed at]``, the names joined by "/"
#: (no file name contains one, and a single JSON string parses ten times faster than a list of
#: them), the time in ``time_ns()`` nanoseconds.
LISTINGS_LAYOUT = {"listings": ["directories"], "directory": ["status", "names", "listed"]}


def _status_key(status: os.stat_result) -> list[int]:
    return [status.st_dev, status.st_ino, status.st_mtime_ns, status.st_ctime_ns,
            status.st_size, status.st_nlink]


class Listings:
    """The remembered listings of some directories, kept in one file of the user cache folder.

    ``kind`` and ``identity`` name the file: one plugin directory, or the ``sys.path``
    directories of one environment.  ``recall`` reads the file on first use; ``remember``
    collects new listings and ``save`` writes them, keeping what the file held about other
    directories that still exist (another process may use other ``sys.path`` entries).
    With ``trusted=False`` (``dropins plugins cache --rebuild``) nothing is recalled, so every
    directory is listed, and the listings are remembered afresh.
    """

    def __init__(self, kind: str, identity: str, *, trusted: bool = True) -> None:
        self._identity = identity
        self._trusted = trusted
        self._path = private_cache_path(kind, identity) if caching_enabled() else None
        self._known: dict[str, Any] | None = None
        self._new: dict[str, list[Any]] = {}

    def _load(self) -> dict[str, Any]:
        if self._known is None:
            document = read_cache(self._path, self._identity, LISTINGS_LAYOUT) \
                if self._path is not None else None
            known = document.get("directories") if document is not None else None
            self._known = known if isinstance(known, dict) else {}
        return self._known

    def names(self, directory: str, handle: int,
              select: Callable[[list[str]], list[str]]) -> list[str]:
        """What ``select`` keeps of the entries of ``directory`` (open as ``handle``): the names
        remembered while its status is unchanged, else a fresh listing, remembered (``save``
        writes it)."""
        before = time_ns()
        status = os.fstat(handle)
        names = self.recall(directory, status, before)
        if names is None:
            names = select(os.listdir(handle))
            self.remember(directory, status, names, before)
        return names

    def recall(self, directory: str, status: os.stat_result, now_ns: int) -> list[str] | None:
        """The names remembered for ``directory`` in exactly this ``status`` less than
        ``MAX_AGE_NS`` before ``now_ns`` (``time_ns()``), else None."""
        if self._path is None or not self._trusted:
            return None
        remembered = self._load().get(directory)
        if remembered.__class__ is not list or len(remembered) != 3 \
                or remembered[1].__class__ is not str or remembered[2].__class__ is not int \
                or not 0 <= now_ns - remembered[2] < MAX_AGE_NS \
                or remembered[0] != _status_key(status):
            return None
        names: str = remembered[1]
        return names.split("/") if names else []

    def remember(self, directory: str, status: os.stat_result, names: list[str],
                 before_ns: int) -> None:
        """Keep ``names``, listed after ``status`` was read at ``before_ns`` (``time_ns()``),
        if the directory was settled then (see the module docstring)."""
        if self._path is not None and status.st_ctime_ns <= before_ns - SETTLED_NS \
                and status.st_mtime_ns <= before_ns - SETTLED_NS:
            self._new[directory] = [_status_key(status), "/".join(names), before_ns]

    def save(self) -> None:
        """Write the listings remembered since loading, if any and if the folder is writable
        (checked first: an unwritable cache, say of a service user without a home, would
        otherwise cost every listing a failed write)."""
        if not self._new or self._path is None or not _writable(os.path.dirname(self._path)):
            return
        known = {directory: value for directory, value in self._load().items()
                 if directory not in self._new and os.path.isdir(directory)}
        known.update(self._new)
        if write_cache(self._path, self._identity, LISTINGS_LAYOUT, {"directories": known}):
            self._known, self._new = known, {}


def _writable(folder: str) -> bool:
    """Whether ``folder``, or the nearest existing folder above it, is writable by us."""
    while not os.path.isdir(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent
    return os.access(folder, os.W_OK)
