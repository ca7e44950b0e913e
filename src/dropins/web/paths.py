"""Turning a request path into a file path that cannot leave the served folder.

The rules, in order, each closing one classic hole:

1. The path is percent-decoded exactly once, so ``%252e%252e`` stays the literal name ``%2e%2e``
   instead of becoming ``..`` after a second decoding.
2. After decoding, NUL bytes and backslashes are refused (400): a NUL truncates paths in C
   libraries, and a backslash is a separator on Windows.
3. The path is split on ``/``; empty and ``.`` segments are dropped (so ``//etc/passwd`` cannot
   become an absolute path), any ``..`` segment is refused (400), and so is a segment that would
   be a drive or an absolute path on this platform (``C:``).
4. Unless dotfiles are allowed, a segment starting with ``.`` is answered 404 as if it did not
   exist (``/.git/config``, ``/.env``, ``/a/.htpasswd``, also spelled ``/%2egit``): the served
   folder is often a checkout, and those files hold secrets.  The one exception is a leading
   ``/.well-known/`` (RFC 8615: ACME challenges, ``security.txt``), which sites must serve.
5. The segments are joined under the root and each step is checked with ``lstat``; when a
   symlink is met, the whole path is resolved with ``os.path.realpath`` and, unless symlinks
   may be followed, a result outside the (resolved) root is answered 404, the same as a missing
   file, so the server never reveals what exists outside its folder.  (Walking with ``lstat``
   from the already-resolved root costs one system call per segment, where ``realpath`` alone
   would also re-check every folder above the root on every request.)
"""

from __future__ import annotations

import os
import stat

__all__ = ["BadPath", "PathNotFound", "is_hidden", "is_inside", "percent_decode",
           "resolve_request_path"]

_WINDOWS = os.name == "nt"
_HEX = "0123456789abcdefABCDEF"
#: b"2f" -> b"/", for every spelling of every byte (upper, lower and mixed case)
_ESCAPES = {(a + b).encode(): bytes([int(a + b, 16)]) for a in _HEX for b in _HEX}
#: the one dot-folder served when dotfiles are hidden, at the root only (RFC 8615)
WELL_KNOWN = ".well-known"


class BadPath(ValueError):
    """A malformed request path: answered 400 Bad Request."""


class PathNotFound(LookupError):
    """A path that resolves outside the root: answered 404, exactly like a missing file."""


def is_inside(path: str, root: str) -> bool:
    """Whether ``path`` (resolved) is ``root`` (resolved) or below it."""
    return path == root or path.startswith(root if root.endswith(os.sep) else root + os.sep)


def percent_decode(raw: bytes) -> bytes:
    """Decode ``%XX`` escapes once; a ``%`` not followed by two hex digits stays as it is.

    (The same result as urllib.parse.unquote_to_bytes, without importing urllib.parse, which
    would add a millisecond and a half to every start-up.)
    """
    if b"%" not in raw:
        return raw
    first, *rest = raw.split(b"%")
    parts = [first]
    for part in rest:
        decoded = _ESCAPES.get(part[:2])
        parts.append(decoded + part[2:] if decoded is not None else b"%" + part)
    return b"".join(parts)


def decode_segments(raw_path: bytes) -> list[str]:
    """The decoded, checked segments of a request path (without the query string)."""
    decoded = percent_decode(raw_path)
    if b"\x00" in decoded:
        raise BadPath("NUL byte in path")
    if b"\\" in decoded:
        raise BadPath("backslash in path")
    try:
        text = os.fsdecode(decoded)
    except UnicodeDecodeError:
        raise BadPath("path is not valid for this file system")
    segments = [segment for segment in text.split("/") if segment and segment != "."]
    if ".." in segments:
        raise BadPath("'..' in path")
    if _WINDOWS:
        for segment in segments:
            # "C:" or "C:x" would name a drive; ":" also opens NTFS alternate data streams.
            if ":" in segment or os.path.splitdrive(segment)[0] or os.path.isabs(segment):
                raise BadPath("drive or stream name in a path segment")
    # (On POSIX a segment, having no "/", can be neither absolute nor a drive.)
    return segments


def is_hidden(segments: list[str]) -> bool:
    """Whether a path (its decoded segments) names a dotfile or goes through a dot-folder.

    A leading ``.well-known`` does not count: that folder is meant to be public.
    """
    return any(segment.startswith(".") and (index or segment != WELL_KNOWN)
               for index, segment in enumerate(segments))


def resolve_request_path(root: str, raw_path: bytes, *, follow_symlinks: bool = False,
                         dotfiles: bool = False) -> tuple[str, os.stat_result]:
    """The file system path for ``raw_path`` below ``root`` (already resolved), and its stat.

    Raises BadPath (400) for malformed paths, PathNotFound (404) for paths that would leave the
    root through a symlink or, unless ``dotfiles``, that are hidden (see ``is_hidden``), and
    OSError (FileNotFoundError, PermissionError...) from the file system.  The stat result is
    that of the target (symlinks followed).
    """
    segments = decode_segments(raw_path)
    if not dotfiles and is_hidden(segments):
        raise PathNotFound(raw_path.decode("latin-1"))
    if not segments:
        return root, os.stat(root)
    path = root
    info = None
    for segment in segments:
        path = os.path.join(path, segment)
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            return _through_symlink(root, os.path.join(root, *segments), follow_symlinks)
    assert info is not None
    return path, info


def _through_symlink(root: str, candidate: str,
                     follow_symlinks: bool) -> tuple[str, os.stat_result]:
    resolved = os.path.realpath(candidate)
    if not follow_symlinks and not is_inside(resolved, root):
        raise PathNotFound(candidate)
    return (candidate if follow_symlinks else resolved), os.stat(resolved)
