"""The discovery cache: JSON files written atomically, read defensively.

JSON and never pickle: a pickle in a writable folder is code execution for whoever can write
there.  Every file carries a format marker and version plus the identity it describes (a
directory, or an entry-point group and environment); a file that is missing, unreadable,
truncated, corrupt, of another format, or about something else is treated as absent, with at
most a DEBUG log line, and rebuilt.  Writes go to a temporary file in the target directory and
are moved into place with ``os.replace``, so concurrent writers never leave a half-written file
and readers see either the old or the new cache.

Locations: ``DROPINS_CACHE_DIR`` overrides every location; ``DROPINS_NO_CACHE=1`` turns reading
and writing off.  Otherwise a plugin directory's cache sits beside its modules when that
directory is writable and not part of an installation (``in_installed_tree``: site-packages,
the Python prefixes), and in the user cache directory (platformdirs, imported only then)
otherwise; entry-point and namespace caches always live in the user cache directory.
"""

from __future__ import annotations

import os
from stat import S_ISREG

from dropins.plugin.diagnostics import debug

try:  # CPython's C parts of json, loaded with this module: every listing reads a cache
    from _json import encode_basestring as _encode_string
    from _json import make_encoder as _make_encoder
    from _json import make_scanner as _make_scanner
except ImportError:  # pragma: no cover - not CPython
    _make_scanner = _make_encoder = _encode_string = None  # type: ignore[misc, assignment]

# Not typing's TYPE_CHECKING: importing typing costs more than a whole warm listing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["CACHE_FILENAME", "FORMAT", "MAX_CACHE_BYTES", "VERSION", "caching_enabled",
           "in_installed_tree", "private_cache_path", "read_cache", "read_regular_file",
           "write_cache"]

FORMAT = "dropins-plugin-cache"
VERSION = 2
#: The file name used beside the modules of a plugin directory.
CACHE_FILENAME = "dropins.cache.json"
#: The largest cache file read: a thousand modules take about 100 kB.
MAX_CACHE_BYTES = 16 << 20

_TRUE = {"1", "true", "yes", "on"}
_user_cache_dir: str | None = None


def caching_enabled() -> bool:
    """False when ``DROPINS_NO_CACHE`` is set to a true value: neither read nor write caches."""
    return os.environ.get("DROPINS_NO_CACHE", "").strip().lower() not in _TRUE


def override_directory() -> str | None:
    """The directory named by ``DROPINS_CACHE_DIR``, if set."""
    return os.environ.get("DROPINS_CACHE_DIR") or None


def _user_directory() -> str:
    """The user cache directory for dropins, as platformdirs defines it.

    On Linux, macOS and Windows the location is computed here from the environment, because
    importing platformdirs (and pathlib with it) costs more than the whole warm listing of a
    thousand plugins; ``tests/test_plugin_cache.py`` checks that both agree.  Elsewhere
    platformdirs is asked.
    """
    global _user_cache_dir
    if _user_cache_dir is None:
        _user_cache_dir = _known_user_directory()
        if _user_cache_dir is None:
            import platformdirs

            _user_cache_dir = platformdirs.user_cache_dir("dropins", appauthor=False)
    return _user_cache_dir


def _known_user_directory() -> str | None:
    import sys

    home = os.path.expanduser("~")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Caches", "dropins")
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        return os.path.join(local, "dropins", "Cache") if local else None
    if sys.platform.startswith("linux") and not hasattr(sys, "getandroidapilevel"):
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(home, ".cache")
        return os.path.join(base, "dropins")
    return None


def in_installed_tree(directory: str) -> bool:
    """Whether ``directory`` belongs to an installation of Python packages: it lies inside
    ``sys.prefix``, ``sys.base_prefix`` (or the exec prefixes), a site-packages directory of
    ``site`` (system or user) or the ``purelib`` / ``platlib`` paths of ``sysconfig``.

    A cache file written beside such a folder's modules is unknown to the installer, so it would
    outlive ``pip uninstall`` and leave the folder behind as an importable, empty namespace
    package.  Those caches go to the user cache directory instead.  Asked only when a cache is
    about to be written: ``sysconfig`` is not worth importing on a warm listing.
    """
    import site
    import sys
    import sysconfig

    roots = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    try:
        roots += site.getsitepackages()
    except AttributeError:  # pragma: no cover - an old virtualenv's site module
        pass
    try:
        roots.append(site.getusersitepackages())
    except AttributeError:  # pragma: no cover
        pass
    paths = sysconfig.get_paths()
    roots += [paths.get("purelib", ""), paths.get("platlib", "")]
    candidates = {os.path.normcase(os.path.abspath(directory)),
                  os.path.normcase(os.path.realpath(directory))}
    for root in roots:
        if not isinstance(root, str) or not root:
            continue
        for form in (os.path.abspath(root), os.path.realpath(root)):
            form = os.path.normcase(form)
            if os.path.dirname(form) == form:
                continue  # a prefix of "/" would claim every folder
            inside = os.path.join(form, "")
            if any(candidate == form or candidate.startswith(inside)
                   for candidate in candidates):
                return True
    return False


def private_cache_path(kind: str, identity: str, hint: str | None = None) -> str:
    """The cache file for ``identity`` (a directory path, a group and environment, ...) in
    ``DROPINS_CACHE_DIR`` or the user cache directory.

    The file name holds a readable hint and a checksum of the identity; the identity itself is
    also stored inside the file and checked on read, so a collision is only a cache miss.
    """
    if hint is None:
        hint = os.path.basename(identity.rstrip("/\\"))
    hint = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in hint)[:40]
    checksum = _fnv1a(identity.encode("utf-8", "surrogateescape"))
    folder = override_directory() or _user_directory()
    return os.path.join(folder, f"{kind}-{hint}-{checksum:08x}.json")


def _fnv1a(data: bytes) -> int:
    """The 32-bit FNV-1a hash of ``data``: stable across processes, unlike ``hash()``.

    Not ``zlib.crc32``: loading the zlib extension costs more than this loop over an identity
    of a few hundred bytes, on every listing.
    """
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


class _ScannerSettings:
    """What the C JSON scanner reads from ``json.JSONDecoder``: strict standard JSON."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        raise ValueError(f"{name} is not allowed in a plugin cache")


def _parse_json(text: str) -> object:
    """``json.loads`` without importing ``json.decoder``, which imports ``re``.

    On a warm listing, the regular-expression engine would cost more than reading the cache;
    CPython's C scanner (``_json``) needs neither.  Other interpreters, and any document the
    scanner fails on, go through ``json``.  Errors are ``ValueError`` (``RecursionError`` for
    absurd nesting) either way.
    """
    if _make_scanner is None:  # pragma: no cover - not CPython
        import json

        return json.loads(text)
    stripped = text.strip()
    try:
        value, end = _make_scanner(_ScannerSettings())(stripped, 0)  # type: ignore[arg-type]
    except StopIteration:
        raise ValueError("not a JSON document") from None
    except (ValueError, RecursionError):
        raise
    except Exception:
        # The C scanner builds its errors with json.decoder's JSONDecodeError, and without that
        # module loaded it fails with a SystemError instead: let json say what is wrong.
        import json

        return json.loads(text)
    if end != len(stripped):
        raise ValueError(f"extra data at offset {end}")
    return value


def _refuse(value: object) -> object:
    raise TypeError(f"{type(value).__name__} cannot be written to a plugin cache")


def _dump_json(value: object) -> str:
    """Compact JSON text of ``value``, without importing ``json``.

    ``json`` costs about 9 ms to import (``re`` with it), more than a warm listing, and caches
    are also written on warm listings (a folder's listing, once it settled).  CPython's C encoder
    does the same work as ``json.dumps(value, separators=(",", ":"), ensure_ascii=False,
    allow_nan=False)``; other interpreters use ``json``.  Raises TypeError or ValueError for
    what JSON cannot hold.
    """
    if _make_encoder is None:  # pragma: no cover - not CPython
        import json

        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    encode = _make_encoder(None, _refuse, _encode_string, None, ":", ",", False, False, False)
    return "".join(encode(value, 0))


def read_regular_file(path: str, limit: int) -> bytes:
    """The bytes of the regular file at ``path``; OSError if it is anything else or larger than
    ``limit`` bytes.

    Cache files may sit in a folder others can write to (a shared ``DROPINS_CACHE_DIR``): a
    FIFO there must not block discovery (opened non-blocking, refused as not a regular file),
    nor a link to ``/dev/zero`` or a huge file eat the memory (size capped while reading).
    """
    handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        status = os.fstat(handle)
        if not S_ISREG(status.st_mode):
            raise OSError(f"not a regular file: {path}")
        if status.st_size > limit:
            raise OSError(f"larger than {limit} bytes: {path}")
        data = os.read(handle, status.st_size + 1)  # one more: a file that grew since fstat
        while len(data) <= limit and (more := os.read(handle, 1 << 20)):
            data += more
        if len(data) > limit:
            raise OSError(f"larger than {limit} bytes: {path}")
        return data
    finally:
        os.close(handle)


def read_cache(path: str, identity: str, layout: dict[str, Any]) -> dict[str, Any] | None:
    """The cache document at ``path`` if it is a valid cache of this format and version,
    describing ``identity`` in ``layout`` (what its reader expects); otherwise ``None``, with a
    DEBUG line unless the file is just absent.  The caller reads its own fields defensively."""
    try:
        data = _parse_json(read_regular_file(path, MAX_CACHE_BYTES).decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as error:
        debug(f"ignoring plugin cache {path}: {type(error).__name__}: {error}")
        return None
    if (not isinstance(data, dict) or data.get("format") != FORMAT
            or data.get("version") != VERSION or data.get("identity") != identity
            or data.get("layout") != layout):
        debug(f"ignoring plugin cache {path}: not a version {VERSION} cache of {identity}")
        return None
    return data


def write_cache(path: str, identity: str, layout: dict[str, Any], body: dict[str, Any]) -> bool:
    """Atomically write ``body`` (the fields of ``layout``) to ``path``; return False (DEBUG
    line only) if impossible."""
    payload = {"format": FORMAT, "version": VERSION, "layout": layout, "identity": identity,
               **body}
    folder = os.path.dirname(path) or os.curdir
    temporary = None
    try:
        text = _dump_json(payload)
        if not os.path.isdir(folder):
            os.makedirs(folder, exist_ok=True)
        # Not tempfile.mkstemp: its 0600 mode would hide a cache built by root (at install
        # time) from every user; 0644 under the umask keeps it readable, like the modules.
        # A random suffix (no itertools counter: not worth an import on every listing); two
        # writers drawing the same one only make O_EXCL fail, which is a skipped write.
        candidate = f"{path}.{os.getpid()}-{os.urandom(6).hex()}.tmp"
        handle = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        temporary = candidate  # ours now: removed below if anything fails
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
        temporary = None
        return True
    except (OSError, TypeError, ValueError, RecursionError) as error:
        debug(f"cannot write plugin cache {path}: {type(error).__name__}: {error}")
        return False
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass
