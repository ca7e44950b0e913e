"""Reading, locking and replacing a password file for ``dropins passwd``, safely as root.

Root often runs ``dropins passwd`` on a file in a folder that the service's user owns, and that
user could plant symbolic links to make root write elsewhere (``/etc/shadow``).  So:

* the folder is opened once, one path component at a time, each with ``O_NOFOLLOW``, and every
  later step (read, lock, temporary file, ``os.replace``) works relative to that descriptor
  (``dir_fd``): swapping a folder of the path for a link afterwards changes nothing, and a link
  anywhere in the folder's path is refused (naming the real path to give instead);
* the file and its lock file are opened with ``O_NOFOLLOW`` too, so a link there is refused;
* a FIFO or other non-regular file in place of the file is refused without hanging.

Where the platform has no ``dir_fd`` (Windows), paths are used as given.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import time
from collections.abc import Iterator

__all__ = ["LOCK_TIMEOUT", "Folder", "MissingFolder", "PasswdError", "locked", "read_file",
           "write_atomically"]

#: How long to wait for another ``dropins passwd`` to finish with the file.
LOCK_TIMEOUT = 10.0

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class PasswdError(Exception):
    """A failure reported as one line, with an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class MissingFolder(PasswdError):
    """The folder of the password file does not exist."""


def symlink_error(path: str) -> PasswdError:
    return PasswdError(f"{path} is a symbolic link; refusing to write through it (give the"
                       " real file's path if that is the one you mean); nothing changed")


class Folder:
    """The folder holding the password file, opened without following links (see above)."""

    def __init__(self, path: str) -> None:
        self.path = path  # absolute and normalised
        self.fd: int | None = None
        if os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY"):
            self.fd = self._open_without_links(path)
        elif not os.path.isdir(path):
            raise MissingFolder(f"folder {path} does not exist")

    @staticmethod
    def _open_without_links(path: str) -> int:
        flags = os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC
        descriptor = os.open("/", flags)
        reached = "/"
        for name in [part for part in path.split("/") if part]:
            reached = os.path.join(reached, name)
            try:
                inner = os.open(name, flags, dir_fd=descriptor)
            except OSError as error:
                is_link = os.path.islink(reached)
                os.close(descriptor)
                if is_link:
                    real = os.path.realpath(path)
                    raise PasswdError(f"folder {reached} is a symbolic link; refusing to write"
                                      f" through it: give the real path, in {real}; nothing"
                                      " changed") from None
                if isinstance(error, FileNotFoundError):
                    raise MissingFolder(f"folder {path} does not exist") from None
                raise PasswdError(f"cannot open folder {reached}: {error.strerror}") from None
            os.close(descriptor)
            descriptor = inner
        return descriptor

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def name(self, name: str) -> str:
        """What to pass, with ``dir_fd=self.fd``, for the entry ``name`` of this folder."""
        return name if self.fd is not None else os.path.join(self.path, name)

    def shown(self, name: str) -> str:
        """The entry's path, for messages."""
        return os.path.join(self.path, name)

    def open(self, name: str, flags: int, mode: int = 0o777) -> int:
        return os.open(self.name(name), flags | _NOFOLLOW | _CLOEXEC, mode, dir_fd=self.fd)

    def is_link(self, name: str) -> bool:
        try:
            return stat.S_ISLNK(os.lstat(self.name(name), dir_fd=self.fd).st_mode)
        except OSError:
            return False


def read_file(folder: Folder, name: str) -> tuple[bytes, int] | None:
    """The content and mode of the file ``name`` in ``folder``, or None if it does not exist."""
    path = folder.shown(name)
    try:
        # O_NONBLOCK: a FIFO planted as the file must not make the command hang.
        descriptor = folder.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise PasswdError(f"{path} is a directory, not a password file") from None
    except OSError as error:
        if folder.is_link(name):
            raise symlink_error(path) from None
        raise PasswdError(f"cannot read {path}: {error.strerror}") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        what = "a directory, not a password file" if stat.S_ISDIR(mode) else "not a regular file"
        raise PasswdError(f"{path} is {what}")
    with os.fdopen(descriptor, "rb") as stream:
        return stream.read(), mode & 0o7777


@contextlib.contextmanager
def locked(folder: Folder, name: str) -> Iterator[None]:
    """Hold the exclusive lock of the file ``name`` (``NAME.lock`` beside it, created 0600);
    PasswdError if another holder keeps it longer than LOCK_TIMEOUT."""
    try:
        import fcntl
    except ImportError:  # no fcntl (Windows): concurrent runs are not serialised
        yield
        return
    lock_name = name + ".lock"
    lock_path = folder.shown(lock_name)
    try:
        descriptor = folder.open(lock_name, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        if folder.is_link(lock_name):
            raise symlink_error(lock_path) from None
        raise PasswdError(f"cannot create the lock file {lock_path}: {error.strerror}") from None
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PasswdError(f"{folder.shown(name)} has been locked by another dropins"
                                      f" passwd for {LOCK_TIMEOUT:.0f} s ({lock_path}); nothing"
                                      " changed") from None
                time.sleep(0.02)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def write_atomically(folder: Folder, name: str, data: bytes, mode: int) -> None:
    """Replace the file ``name`` by ``data``: a temporary file in the same folder, then
    ``os.replace``; the new file gets ``mode`` and, when we may (as root), the old owner."""
    path = folder.shown(name)
    temporary = f".dropins-passwd-{secrets.token_hex(8)}.tmp"
    try:
        descriptor = folder.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise PasswdError(f"cannot write in {folder.path}: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
            if hasattr(os, "fchmod"):
                os.fchmod(stream.fileno(), mode)
                _keep_owner(folder, name, stream.fileno())
        if not hasattr(os, "fchmod"):
            os.chmod(folder.name(temporary), mode)
        os.replace(folder.name(temporary), folder.name(name), src_dir_fd=folder.fd,
                   dst_dir_fd=folder.fd)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(folder.name(temporary), dir_fd=folder.fd)
        raise PasswdError(f"cannot write {path}: {error.strerror}; nothing changed") from None


def _keep_owner(folder: Folder, name: str, descriptor: int) -> None:
    try:
        info = os.lstat(folder.name(name), dir_fd=folder.fd)
        os.fchown(descriptor, info.st_uid, info.st_gid)
    except (OSError, AttributeError):
        pass  # a new file, not root, or no fchown: keep ours
