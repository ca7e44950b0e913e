"""A pidfile protected by a lock, so that a stale file never blocks a start.

The process that runs holds an exclusive lock on the pidfile for its whole life.  Whether an
instance is running is decided by the lock alone, never by ``kill(pid, 0)``: a file left by a
crashed process (its PID dead, or recycled by an unrelated process) is unlocked and simply taken
over, while a live instance keeps it locked and a second start is refused with its PID.  The
kernel drops the lock when the process dies, however it dies.

POSIX uses ``fcntl.flock``; Windows ``msvcrt.locking`` on a byte far past the PID text (so
readers are never blocked).  Both modules are imported lazily.

The file is opened with ``O_NOFOLLOW`` and must be a regular file: the pidfile folder usually
belongs to the service user, and a symbolic link planted there must not make root truncate and
overwrite the file it points to.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from pathlib import Path

from dropins.runner.errors import RunnerError

_WINDOWS_LOCK_OFFSET = 1 << 20


def _try_lock(fd: int, shared: bool = False) -> bool:
    """Lock ``fd`` without waiting; False if another process holds a lock on the file."""
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        finally:
            os.lseek(fd, 0, os.SEEK_SET)
        return True
    import fcntl

    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def read_pid(path: str | os.PathLike[str]) -> int | None:
    """The PID written in ``path``, or None if the file is missing, empty or not a PID."""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def is_locked(path: str | os.PathLike[str]) -> bool:
    """True if a live process holds the lock on ``path`` (that is, an instance is running)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        return not _try_lock(fd, shared=True)
    finally:
        os.close(fd)  # closing drops the probe's own shared lock, if it got one


class PidFile:
    """Holds ``path`` locked with this process's PID in it, from ``acquire()`` to ``release()``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(path)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Lock the file and write our PID; raise ``RunnerError`` if a live instance holds it."""
        for _attempt in range(10):
            fd = self._open_locked()
            if fd is not None:
                break
        else:  # pragma: no cover - the file kept being replaced under us
            raise RunnerError(f"cannot lock pidfile {self.path}: it keeps being replaced")
        try:
            self._write_pid(fd)
        except OSError as error:  # a full disk, typically: leave no empty pidfile behind
            self._fd = fd
            self.release()
            raise RunnerError(f"cannot write pidfile {self.path}: {error.strerror or error}")
        self._fd = fd

    @staticmethod
    def _write_pid(fd: int) -> None:
        text = f"{os.getpid()}\n".encode("ascii")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        if os.write(fd, text) != len(text):  # pragma: no cover - a partial PID is no PID
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.fsync(fd)

    def _open_locked(self) -> int | None:
        """Open and lock the file; None if it was unlinked by its previous owner meanwhile."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as error:
            if os.path.islink(self.path):  # O_NOFOLLOW refused it (ELOOP)
                raise RunnerError(self._not_regular("a symbolic link"))
            raise RunnerError(f"cannot open pidfile {self.path}: {error.strerror or error}")
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device: never write into it
            os.close(fd)
            raise RunnerError(self._not_regular("not a regular file"))
        if not self._lock_soon(fd):
            os.close(fd)
            holder = read_pid(self.path)
            who = f"pid {holder}" if holder else "another process"
            raise RunnerError(f"already running ({who} holds pidfile {self.path}); "
                              f"stop it with 'dropins stop --pidfile {self.path}'")
        try:
            same_file = os.path.samestat(os.fstat(fd), os.stat(self.path))
        except OSError:
            same_file = False
        if not same_file:  # the previous owner removed it between our open and our lock
            os.close(fd)
            return None
        return fd

    def _not_regular(self, what: str) -> str:
        return (f"refusing pidfile {self.path}: it is {what}; remove it or choose another "
                "--pidfile (a pidfile must be a regular file, never a link)")

    @staticmethod
    def _lock_soon(fd: int) -> bool:
        """Lock, retrying briefly: ``dropins stop`` probes the lock for an instant."""
        for _attempt in range(5):
            if _try_lock(fd):
                return True
            time.sleep(0.05)
        return False

    def release(self) -> None:
        """Remove the file (still holding the lock, so no newcomer's file is removed) and unlock."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> PidFile:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
