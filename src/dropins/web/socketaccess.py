"""Who may connect to a personal server's unix socket: its mode bits and POSIX ACL.

Connecting to a unix socket needs write permission on its file.  A personal server's socket
is 0600, which lets in its owner and root only; a front server running as another user
(``www-data``) is let in by one ACL entry naming that user (``grant_user``), which is what
``setfacl -m u:www-data:rw`` would write.  The ACL is read and written as the Linux
``system.posix_acl_access`` extended attribute, so no ``acl`` package is needed.

``unexpected_writers`` is the front server's check: no group and not everyone may be able to
connect, by mode bits or ACL; single users named in the ACL are the owner's choice.
"""

from __future__ import annotations

import errno
import os
import struct

__all__ = ["grant_user", "unexpected_writers"]

_XATTR = "system.posix_acl_access"
_VERSION = 2
_ENTRY = struct.Struct("<HHI")
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_UNDEFINED_ID = 0xFFFFFFFF
_WRITE = 2


def _entries(raw: bytes) -> list[tuple[int, int, int]]:
    (version,) = struct.unpack_from("<I", raw)
    if version != _VERSION or (len(raw) - 4) % _ENTRY.size:
        raise ValueError("not a POSIX ACL")
    return [_ENTRY.unpack_from(raw, offset) for offset in range(4, len(raw), _ENTRY.size)]


def grant_user(path: str, uid: int) -> None:
    """Let user ``uid`` read and write (so connect to) ``path`` besides its mode bits."""
    mode = os.stat(path).st_mode
    entries = [(_USER_OBJ, (mode >> 6) & 7, _UNDEFINED_ID), (_USER, 6, uid),
               (_GROUP_OBJ, (mode >> 3) & 7, _UNDEFINED_ID), (_MASK, 6, _UNDEFINED_ID),
               (_OTHER, mode & 7, _UNDEFINED_ID)]
    raw = struct.pack("<I", _VERSION) + b"".join(_ENTRY.pack(*entry) for entry in entries)
    os.setxattr(path, _XATTR, raw)


def unexpected_writers(path: str, mode: int) -> str | None:
    """Why a group or everyone can connect to ``path`` (by mode bits or ACL), or None.

    ``mode`` is the socket's ``st_mode`` (from an ``lstat`` the caller made).  ACL entries
    naming one user (``u:www-data:rw``) are accepted: each is a single account the owner
    chose to let in, as ``--front-user`` does, and says nothing about who serves the socket.
    """
    try:
        raw = os.getxattr(path, _XATTR, follow_symlinks=False)
    except OSError as error:
        if error.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        raw = None
    if raw is None:
        if mode & 0o022:
            return f"it is group- or world-writable (mode {mode & 0o777:04o}; chmod 600 it)"
        return None
    try:
        entries = _entries(raw)
    except (ValueError, struct.error):
        return "its ACL cannot be read"
    mask = next((perm for tag, perm, _ in entries if tag == _MASK), 7)
    for tag, perm, _ in entries:
        effective = perm & mask if tag in (_GROUP_OBJ, _GROUP) else perm
        if tag in (_GROUP_OBJ, _GROUP, _OTHER) and effective & _WRITE:
            return "its ACL lets a group or everyone connect (only single users may be added)"
    return None
