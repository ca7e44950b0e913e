"""The ``unix`` endpoint kind: a listening unix-domain socket at a file system path.

``unix:PATH[:mode=0660][:lockfile=1][:backlog=N]``.

A socket file left behind by a process that died is replaced, but a live server's socket is
never stolen.  Without ``lockfile``, that is decided by connecting to the existing socket: if
something answers, binding fails with "address already in use".  With ``lockfile=1`` an
exclusive ``fcntl`` lock on ``PATH.lock`` is taken first and held while serving, which also
makes two servers starting at the same moment safe.  The lock file itself is left in place on
stop: deleting it could let two processes hold locks on two different files of the same name.
The socket file is removed on stop, if it is still the one this endpoint created.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Mapping, Sequence

from dropins.service.endpoints import bind_fields, parse_bool, parse_int
from dropins.service.errors import EndpointError, ListenError, listen_error
from dropins.service.serving import DEFAULT_BACKLOG, SocketEndpoint, escape

__all__ = ["UNIXServerEndpoint", "parse_unix"]

#: how long to wait for an existing socket to answer before calling it stale
_PROBE_TIMEOUT = 1.0


class UNIXServerEndpoint(SocketEndpoint):
    """Listen on the unix socket ``path``; optionally chmod it and guard it with a lock file."""

    def __init__(self, path: str, *, mode: int | None = None, lockfile: bool = False,
                 backlog: int = DEFAULT_BACKLOG, description: str | None = None) -> None:
        self.path = path
        self.mode = mode
        self.lockfile = lockfile
        self.backlog = backlog
        self.description = description or f"unix:{escape(path)}"
        self._lock_fd: int | None = None
        self._identity: tuple[int, int] | None = None

    @property
    def lock_path(self) -> str:
        return self.path + ".lock"

    def bind(self) -> list[socket.socket]:
        if not hasattr(socket, "AF_UNIX"):
            raise ListenError(self.description, "unix sockets are not available on this platform")
        if self.lockfile:
            self._take_lock()
        sock: socket.socket | None = None
        try:
            self._clear_stale_socket()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(self.path)
            if self.mode is not None:  # before listen(): nobody can connect in between
                os.chmod(self.path, self.mode)
            info = os.stat(self.path)
            self._identity = (info.st_dev, info.st_ino)
            sock.listen(self.backlog)
            sock.setblocking(False)
        except BaseException as error:
            if sock is not None:
                sock.close()
                if self._identity is not None:
                    self._remove_own_socket()
            self._release_lock()
            if isinstance(error, OSError):
                raise listen_error(self.description, error) from error
            raise
        return [sock]

    def close(self, sockets: Sequence[socket.socket]) -> None:
        for sock in sockets:
            sock.close()
        self._remove_own_socket()
        self._release_lock()

    def _clear_stale_socket(self) -> None:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise ListenError(self.description,
                              f"{self.path} exists and is not a socket; remove it or pick "
                              "another path")
        if not self.lockfile and self._answers():
            raise ListenError(self.description,
                              "address already in use (a server answers on that socket)")
        os.unlink(self.path)  # stale: its server is gone (or we hold the lock)

    def _answers(self) -> bool:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(_PROBE_TIMEOUT)
        try:
            probe.connect(self.path)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError:
            return True  # e.g. a full backlog or a timeout: someone is there
        finally:
            probe.close()
        return True

    def _take_lock(self) -> None:
        import fcntl

        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise ListenError(self.description,
                              f"cannot open the lock file {self.lock_path}: "
                              f"{(error.strerror or str(error)).lower()}") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ListenError(self.description,
                              f"address already in use (another process holds {self.lock_path})"
                              ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing drops the flock

    def _remove_own_socket(self) -> None:
        identity, self._identity = self._identity, None
        try:
            info = os.lstat(self.path)
        except OSError:
            return
        if identity == (info.st_dev, info.st_ino):  # never remove a successor's socket
            try:
                os.unlink(self.path)
            except OSError:
                pass


def parse_unix(args: Sequence[str], kwargs: Mapping[str, str], *,
               description: str | None = None) -> UNIXServerEndpoint:
    """``unix:PATH[:mode=0660][:lockfile=1][:backlog=N]``."""
    fields = bind_fields("unix", args, kwargs, ["path"], ["mode", "lockfile", "backlog"])
    path = fields.get("path", "")
    if not path:
        raise EndpointError("path is missing, as in unix:/run/app.sock")
    if "\0" in path:
        raise EndpointError("path must not contain a NUL character")
    mode = None
    if "mode" in fields:
        text = fields["mode"]
        digits = text[2:] if text[:2].lower() == "0o" else text
        if not digits or len(digits) > 4 or any(c not in "01234567" for c in digits) or (
                int(digits, 8) > 0o777):
            raise EndpointError(f"mode must be octal permissions such as 0660, got {text!r}")
        mode = int(digits, 8)
    lockfile = parse_bool(fields["lockfile"], "lockfile") if "lockfile" in fields else False
    if lockfile and os.name == "nt":
        raise EndpointError("lockfile is not supported on Windows")
    backlog = parse_int(fields["backlog"], "backlog", 1, 65535) if "backlog" in fields else (
        DEFAULT_BACKLOG)
    return UNIXServerEndpoint(path, mode=mode, lockfile=lockfile, backlog=backlog,
                              description=description)
