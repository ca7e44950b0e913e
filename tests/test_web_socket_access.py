"""Who may connect to a personal server's socket: mode bits and POSIX ACLs, on a real file."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import pytest

from dropins.web.socketaccess import grant_user, unexpected_writers

pytestmark = pytest.mark.skipif(not hasattr(os, "setxattr"), reason="needs Linux xattrs")


def make_socket(tmp_path: Path) -> str:
    path = str(tmp_path / "s.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.close()
    os.chmod(path, 0o600)
    return path


def check(path: str) -> str | None:
    return unexpected_writers(path, os.lstat(path).st_mode)


def test_mode_bits(tmp_path: Path) -> None:
    path = make_socket(tmp_path)
    assert check(path) is None
    for mode in (0o620, 0o602, 0o666):
        os.chmod(path, mode)
        assert "group- or world-writable" in (check(path) or "")
    os.chmod(path, 0o644)  # read alone does not let anyone connect
    assert check(path) is None


def test_acl_for_one_user_is_accepted_but_not_for_a_group(tmp_path: Path) -> None:
    path = make_socket(tmp_path)
    try:
        grant_user(path, 33)
    except OSError as error:
        pytest.skip(f"no ACLs on this file system: {error}")
    assert os.lstat(path).st_mode & 0o070 == 0o060  # the group bits now show the ACL mask
    assert check(path) is None
    raw = os.getxattr(path, "system.posix_acl_access")
    entries = [struct.unpack_from("<HHI", raw, offset) for offset in range(4, len(raw), 8)]
    assert (2, 6, 33) in entries  # u:33:rw
    group_entry = struct.pack("<HHI", 0x08, 6, 1234)  # g:1234:rw, placed before the mask
    at = 4 + 8 * [tag for tag, _, _ in entries].index(0x10)
    os.setxattr(path, "system.posix_acl_access", raw[:at] + group_entry + raw[at:])
    assert "lets a group or everyone connect" in (check(path) or "")
