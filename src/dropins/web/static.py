"""Serving files from a folder: types, validators (304), single ranges (206/416), sendfile.

Small files are answered synchronously, in one write, straight from the parser callback: a
file from the page cache reads in microseconds, far less than scheduling a task would cost.
Larger files go out with ``loop.sendfile`` (zero-copy ``os.sendfile`` where the OS has it,
a read/write loop otherwise), which respects the client's speed.

Only regular files are served: a FIFO or a device under the root would block the server or
stream forever, so they are answered 404 like anything else that is not a file.
"""

from __future__ import annotations

import os
import stat
from collections import OrderedDict
from collections.abc import Callable
from typing import BinaryIO

from dropins.web.cgi import is_script
from dropins.web.exchange import Exchange
from dropins.web.httputil import http_date, parse_http_date
from dropins.web.paths import (
    BadPath,
    PathNotFound,
    decode_segments,
    is_hidden,
    is_inside,
    percent_decode,
    resolve_request_path,
)
from dropins.web.precompressed import VARY, TwinFinder

__all__ = ["SENDFILE_THRESHOLD", "StaticSite"]

#: Files at least this large are sent with sendfile instead of being read into memory.
SENDFILE_THRESHOLD = 256 * 1024

_ENCODING_TYPES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2",
                   "xz": "application/x-xz", "compress": "application/x-compress",
                   "br": "application/x-brotli"}
_ALLOW = [(b"Allow", b"GET, HEAD")]
_HTML = b"text/html; charset=utf-8"


_types_by_suffix: dict[str, bytes] = {}


def content_type(path: str) -> bytes:
    """The Content-Type for a file name: compressed files are sent as what they are."""
    suffix = os.path.splitext(path)[1].lower()
    known = _types_by_suffix.get(suffix)
    if known is None:
        known = _types_by_suffix[suffix] = _guess_type(path)
    return known


def _guess_type(path: str) -> bytes:
    import mimetypes  # at the first file served, not at start-up

    if not mimetypes.inited:
        mimetypes.init()  # reads the system's mime.types once, at the first file served
    kind, encoding = mimetypes.guess_type(path, strict=False)
    if encoding:
        kind = _ENCODING_TYPES.get(encoding, "application/octet-stream")
    if kind is None:
        return b"application/octet-stream"
    if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
        return kind.encode("latin-1") + b"; charset=utf-8"
    return kind.encode("latin-1")


def parse_range(header: bytes, size: int) -> tuple[int, int] | bool | None:
    """The (start, end inclusive) of a single ``bytes=`` range.

    Returns None when the header should be ignored (malformed, or several ranges, which a
    server may answer with the whole file), False when the range cannot be satisfied.
    """
    unit, _, spec = header.partition(b"=")
    if unit.strip().lower() != b"bytes" or b"," in spec:
        return None
    first, dash, last = spec.strip().partition(b"-")
    if not dash or not (first.isdigit() or first == b"") or not (last.isdigit() or last == b""):
        return None
    if first == b"":
        if last == b"":
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return False
    return start, min(end, size - 1)


class _CachedFile:
    """A small file's bytes and response headers, valid while its stat signature is unchanged."""

    __slots__ = ("body", "etag", "headers", "mtime", "signature")

    def __init__(self, signature: tuple[int, ...], body: bytes, headers: list[tuple[bytes, bytes]],
                 etag: bytes, mtime: float) -> None:
        self.signature = signature
        self.body = body
        self.headers = headers
        self.etag = etag
        self.mtime = mtime


def _signature(info: os.stat_result) -> tuple[int, ...]:
    # ctime changes on every write, even one that restores size and mtime (touch -r, cp -p).
    return (info.st_ino, info.st_dev, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class StaticSite:
    """A handler serving the files below ``root``.

    Small files (below SENDFILE_THRESHOLD) are kept in a bounded cache of ``cache_size`` bytes,
    keyed by path and checked against the file's stat signature (inode, size, mtime and ctime)
    on every request, so an edited file is never served stale: the stat a request needs anyway
    replaces the open/read/close it would otherwise cost.

    Dotfiles (any path segment starting with ``.``, but a leading ``/.well-known/``) are 404
    and left out of listings unless ``dotfiles`` is true: see ``dropins.web.paths``.
    With ``precompressed``, a ``.br``/``.gz`` twin of a file is sent to clients that accept
    it (``dropins.web.precompressed``).
    """

    #: the methods it answers, for the server's own ``Allow`` headers
    allow = _ALLOW[0][1]

    def __init__(self, root: str, *, index: str = "index.html", listing: bool = True,
                 follow_symlinks: bool = False, dotfiles: bool = False,
                 precompressed: bool = True, cache_size: int = 16 * 1024 * 1024,
                 url_prefix: bytes = b"") -> None:
        self.root = os.path.realpath(root)
        self.index = index
        self.listing = listing
        self.follow_symlinks = follow_symlinks
        self.dotfiles = dotfiles
        self.precompressed = precompressed
        self._twins = TwinFinder(self.root, follow_symlinks) if precompressed else None
        #: where the site is mounted (``/~alice``), for the URLs it writes: redirects, listings
        self.url_prefix = url_prefix
        self.cache_size = cache_size
        self._cache: OrderedDict[str, _CachedFile] = OrderedDict()
        self._cached_bytes = 0

    def __call__(self, exchange: Exchange) -> object:
        method = exchange.method
        if method != b"GET" and method != b"HEAD":
            exchange.respond_error(405, headers=_ALLOW)
            return None
        path = exchange.path
        if not path.startswith(b"/"):
            exchange.respond_error(400, "Bad request target")
            return None
        try:
            file_path, info = resolve_request_path(self.root, path,
                                                   follow_symlinks=self.follow_symlinks,
                                                   dotfiles=self.dotfiles)
        except BadPath as error:
            exchange.respond_error(400, f"Bad request path: {error}")
            return None
        except PermissionError:
            exchange.respond_error(403)
            return None
        except (PathNotFound, OSError, ValueError):
            exchange.respond_error(404)
            return None
        if stat.S_ISDIR(info.st_mode):
            return self._directory(exchange, path, file_path)
        if path.endswith(b"/"):
            # "/file.txt/" names a folder that does not exist; serving the file there would
            # give its relative links the wrong base.
            exchange.respond_error(404)
            return None
        return self._file(exchange, file_path, info)

    def _directory(self, exchange: Exchange, path: bytes, folder: str) -> object:
        if not path.endswith(b"/"):
            # Leading slashes collapsed: "//sub/" would be a link to the host "sub".
            location = (self.url_prefix + b"/" + path.lstrip(b"/") + b"/"
                        + (b"?" + exchange.query if exchange.query else b""))
            exchange.respond(301, [(b"Location", location),
                                   (b"Content-Type", b"text/plain; charset=utf-8")],
                             b"Moved to " + location + b"\n")
            return None
        if self.index:
            index = os.path.join(folder, self.index)
            resolved = index if self.follow_symlinks else os.path.realpath(index)
            if self.follow_symlinks or is_inside(resolved, self.root):
                try:
                    info = os.stat(resolved)
                except OSError:
                    pass
                else:
                    if stat.S_ISREG(info.st_mode):
                        return self._file(exchange, resolved, info)
        if not self.listing:
            exchange.respond_error(403, "Directory listing is disabled")
            return None
        try:
            from dropins.web.listing import render_listing

            url_path = os.fsdecode(percent_decode(self.url_prefix + path))
            shown = None if self.dotfiles else _served_names_in(decode_segments(path))
            page = render_listing(folder, url_path, self.root, self.follow_symlinks, shown,
                                  hide_variants=self.precompressed)
        except PermissionError:
            exchange.respond_error(403)
            return None
        except (OSError, UnicodeDecodeError):
            exchange.respond_error(404)
            return None
        exchange.respond(200, [(b"Content-Type", _HTML), (b"Cache-Control", b"no-cache")], page)
        return None

    def _file(self, exchange: Exchange, file_path: str, info: os.stat_result) -> object:
        if not stat.S_ISREG(info.st_mode):
            exchange.respond_error(404)
            return None
        if is_script(file_path):  # a program's source may hold passwords: never sent
            exchange.respond_error(403, "Scripts are not served (see --cgi)")
            return None
        kind = content_type(file_path)
        encoding: str | None = None
        vary: tuple[tuple[bytes, bytes], ...] = ()
        if self._twins is not None:
            variant = self._twins.find(file_path, info, exchange.header(b"accept-encoding"))
            file_path, info, encoding = variant.path, variant.info, variant.encoding
            vary = (VARY,) if variant.vary else ()
        # A variant is cached apart from the same file requested by its own name (.gz),
        # which is sent as what it is, without Content-Encoding.
        key = file_path if encoding is None else f"{file_path}\0{encoding}"
        cached = self._cache.get(key)
        if cached is not None and cached.signature == _signature(info):
            self._cache.move_to_end(key)
            return self._answer(exchange, cached.headers, cached.etag, cached.mtime,
                                info.st_size, file_path, cached.body, vary)
        size = info.st_size
        etag = b'"%x-%x"' % (info.st_mtime_ns, size) if encoding is None else (
            b'"%x-%x-%s"' % (info.st_mtime_ns, size, encoding.encode()))
        headers = [(b"Content-Type", kind), (b"ETag", etag),
                   (b"Last-Modified", http_date(info.st_mtime)), (b"Accept-Ranges", b"bytes")]
        if encoding is not None:
            headers.append((b"Content-Encoding", encoding.encode()))
        body = None
        if size < SENDFILE_THRESHOLD and exchange.method == b"GET":
            body = self._read_small(key, file_path, info, headers, etag)
            if body is None:
                exchange.respond_error(403)
                return None
        return self._answer(exchange, headers, etag, info.st_mtime, size, file_path, body, vary)

    def _read_small(self, key: str, file_path: str, info: os.stat_result,
                    headers: list[tuple[bytes, bytes]], etag: bytes) -> bytes | None:
        try:
            with open(file_path, "rb") as file:
                body = file.read(info.st_size + 1)
                now = os.fstat(file.fileno())
        except OSError:
            return None
        if len(body) == info.st_size and _signature(now) == _signature(info) and self.cache_size:
            old = self._cache.pop(key, None)
            if old is not None:
                self._cached_bytes -= len(old.body)
            self._cache[key] = _CachedFile(_signature(info), body, headers, etag,
                                           info.st_mtime)
            self._cached_bytes += len(body)
            while self._cached_bytes > self.cache_size:
                _, evicted = self._cache.popitem(last=False)
                self._cached_bytes -= len(evicted.body)
        return body

    def _answer(self, exchange: Exchange, headers: list[tuple[bytes, bytes]], etag: bytes,
                mtime: float, size: int, file_path: str, body: bytes | None,
                vary: tuple[tuple[bytes, bytes], ...] = ()) -> object:
        if _precondition_failed(exchange, etag, mtime):
            exchange.respond_error(412)
            return None
        if _not_modified(exchange, etag, mtime):
            exchange.respond(304, [*headers[1:3], *vary])
            return None
        if vary:
            headers = [*headers, *vary]
        start, count, status = 0, size, 200
        range_header = exchange.header(b"range")
        if range_header is not None and exchange.method == b"GET" and _if_range_holds(
                exchange, etag, mtime):
            wanted = parse_range(range_header, size)
            if wanted is False:
                exchange.respond(416, [(b"Content-Range", b"bytes */%d" % size),
                                       (b"Content-Type", b"text/plain; charset=utf-8")],
                                 b"Range Not Satisfiable\n")
                return None
            if isinstance(wanted, tuple):
                start, end = wanted
                count, status = end - start + 1, 206
                headers = [*headers, (b"Content-Range", b"bytes %d-%d/%d" % (start, end, size))]
        if exchange.head_only:
            exchange.respond_head_only(status, headers, count)
            return None
        if body is not None:
            if len(body) != size:  # the file changed size under us: close after this one
                exchange.keep_alive = False
            exchange.respond(status, headers, body[start:start + count] if status == 206 else body)
            return None
        try:
            file = open(file_path, "rb")  # noqa: SIM115 - closed by _send
        except PermissionError:
            exchange.respond_error(403)
            return None
        except OSError:
            exchange.respond_error(404)
            return None
        return _send(exchange, status, [*headers, (b"Content-Length", b"%d" % count)], file,
                     start, count)


def _served_names_in(segments: list[str]) -> Callable[[str], bool]:
    """For a listing: whether an entry of the folder at ``segments`` is served (so listed)."""
    return lambda name: not is_hidden([*segments, name])


async def _send(exchange: Exchange, status: int, headers: list[tuple[bytes, bytes]],
                file: BinaryIO, start: int, count: int) -> None:
    with file:
        exchange.send_head(status, headers)
        await exchange.sendfile(file, start, count)
        exchange.end()


def _precondition_failed(exchange: Exchange, etag: bytes, mtime: float) -> bool:
    """If-Match (strong comparison), else If-Unmodified-Since, as RFC 9110 13.2.2 orders them.

    They guard a client that must act on the version it knows (resume a download, say).
    """
    if_match = exchange.header(b"if-match")
    if if_match is not None:
        return if_match.strip() != b"*" and all(
            tag.strip() != etag for tag in if_match.split(b","))
    if_unmodified_since = exchange.header(b"if-unmodified-since")
    if if_unmodified_since is not None:
        since = parse_http_date(if_unmodified_since)
        return since is not None and int(mtime) > since
    return False


def _not_modified(exchange: Exchange, etag: bytes, mtime: float) -> bool:
    if_none_match = exchange.header(b"if-none-match")
    if if_none_match is not None:
        if if_none_match.strip() == b"*":
            return True
        return any(tag.strip().removeprefix(b"W/") == etag for tag in if_none_match.split(b","))
    if_modified_since = exchange.header(b"if-modified-since")
    if if_modified_since is not None:
        since = parse_http_date(if_modified_since)
        return since is not None and int(mtime) <= since
    return False


def _if_range_holds(exchange: Exchange, etag: bytes, mtime: float) -> bool:
    """Whether a Range applies: no If-Range, or If-Range names the current version exactly."""
    if_range = exchange.header(b"if-range")
    if if_range is None:
        return True
    if_range = if_range.strip()
    if if_range.startswith(b'"'):
        return if_range == etag
    since = parse_http_date(if_range)
    return since is not None and int(mtime) == since
