"""Import markers: remembering which plugin module was being imported when the process ended.

A plugin module that calls ``os._exit()`` (or crashes the interpreter) at import leaves no
exception to catch and no cache entry behind, so every later run would import it and die
again.  So before importing a module, discovery writes what it is importing (module, file, file
state, and how many times in a row it was tried) into this process's marker file in the cache
folder, and blanks it afterwards.  The file is held with an exclusive ``flock`` while the process
lives.  A marker file that is *unlocked* belongs to a process that has ended; if it still names
a module, that import ended it, or the process was killed meanwhile (``timeout``, SIGKILL, the
OOM killer, a power cut) during an innocent but slow import.  So the module is imported once
more; only when that second try ends the same way (same file state) is it listed as broken
instead of being imported again (``begin_import`` says so).  An unlocked file is removed when
found blank, when the file it names is gone or changed, or once its module is tried again.

One file per process, opened on the first import and overwritten in place: creating a file
costs about a millisecond on a busy disk, overwriting a few bytes of page cache a microsecond,
so a first run importing a thousand modules pays nothing noticeable.  Markers are only written
on a cache miss; they need POSIX ``flock`` and a writable cache folder, and are skipped
silently without them.
"""

from __future__ import annotations

import os
from stat import S_ISREG

from dropins.plugin.cache import _dump_json, caching_enabled, override_directory
from dropins.plugin.diagnostics import debug

TYPE_CHECKING = False  # not typing's: importing typing costs more than a warm listing
if TYPE_CHECKING:
    from typing import Any

__all__ = ["begin_import", "end_import"]

_PREFIX = "importing-"
_LIMIT = 1 << 16  # a marker names one module: anything longer is not ours

#: this process's marker file, open and locked (None until the first import; -1: unusable)
_handle: int | None = None
#: the bytes written by the last ``begin_import``, blanked by ``end_import``
_written = 0
#: the tries after which a module whose import never returned is no longer imported
_TRIES = 2
#: what the marker files of ended processes name (``_import_id``) -> (that file, how many
#: imports in a row ended there); found when this process opened its own marker, each removed
#: once the module it names is imported again or listed as broken
_ended: dict[str, tuple[str, int]] = {}


def _import_id(module: str, path: str, key: Any) -> str:
    return _dump_json([module, path, key])


def _folder() -> str | None:
    if not caching_enabled():
        return None
    from dropins.plugin.cache import _user_directory

    return override_directory() or _user_directory()


def _open() -> int:
    """Sweep the marker files of ended processes, then create and lock this process's own;
    -1 if impossible."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return -1
    folder = _folder()
    if folder is None:
        return -1
    try:
        os.makedirs(folder, exist_ok=True)
        names = [name for name in os.listdir(folder) if name.startswith(_PREFIX)]
    except OSError as error:
        debug(f"no import markers in {folder}: {error}")
        return -1
    for name in names:
        _sweep(fcntl, os.path.join(folder, name))
    path = os.path.join(folder, f"{_PREFIX}{os.getpid()}-{os.urandom(4).hex()}")
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        debug(f"no import marker {path}: {error}")
        return -1
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(handle).st_nlink == 0:  # swept by another process before we locked it
            raise OSError("removed meanwhile")
    except OSError as error:
        os.close(handle)
        debug(f"no import marker {path}: {error}")
        return -1
    import atexit

    atexit.register(_remove, path, os.getpid())  # os._exit() skips it: the marker stays
    return handle


def _remove(path: str, pid: int) -> None:
    """At a normal exit, remove this process's marker (not from a forked child's exit)."""
    if os.getpid() == pid:
        try:
            os.unlink(path)
        except OSError:
            pass


def _sweep(fcntl: Any, path: str) -> None:
    """Note what the marker file at ``path`` names if its process has ended; remove it if it
    names nothing, or a file that is gone or changed since (no later run would ask about that
    file state).  Kept otherwise, for the run that imports or lists that module."""
    try:
        handle = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while its process lives
        if S_ISREG(os.fstat(handle).st_mode):
            named = _still_current(os.read(handle, _LIMIT))
            if named is not None:
                _ended[named[0]] = (path, named[1])
                return
        os.unlink(path)
    except OSError:
        pass
    finally:
        os.close(handle)


def _still_current(content: bytes) -> tuple[str, int] | None:
    """``(import id, tries)`` of a marker's ``content`` when the file it names is still in the
    state it names; None for a blank, malformed or outdated marker."""
    import json

    from dropins.plugin.entries import file_key

    try:
        module, path, key, tries = json.loads(content.decode("utf-8", "surrogateescape"))
    except (ValueError, TypeError):  # blank, not JSON, not four items, not a list
        return None
    if not (isinstance(path, str) and isinstance(tries, int)) or file_key(path) != key:
        return None
    return _import_id(module, path, key), tries


def begin_import(module: str, path: str, key: Any) -> bool:
    """Note in this process's marker that ``module`` (file ``path`` in state ``key``) is being
    imported; or, when its last imports in that state (``_TRIES`` in a row) were each under way
    as their process ended, return True and note nothing: then it must not be imported again."""
    global _handle, _written
    if _handle is None:
        _handle = _open()
    identity = _import_id(module, path, key)
    tries = 1
    ended = _ended.pop(identity, None)
    if ended is not None:
        try:
            os.unlink(ended[0])
        except OSError:
            pass
        if ended[1] >= _TRIES:
            return True
        tries = ended[1] + 1
    if _handle < 0:
        return False
    content = _dump_json([module, path, key, tries]).encode("utf-8", "surrogateescape")
    try:  # padded over the previous content: no truncation, one write
        os.pwrite(_handle, content.ljust(_written), 0)
        _written = max(_written, len(content))
    except OSError as error:
        debug(f"cannot write the import marker: {error}")
    return False


def end_import() -> None:
    """Blank the marker: no import is under way."""
    if _handle is not None and _handle >= 0 and _written:
        try:
            os.pwrite(_handle, b" " * _written, 0)
        except OSError as error:
            debug(f"cannot write the import marker: {error}")
