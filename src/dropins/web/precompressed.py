"""Precompressed files: ``file.ext.br`` or ``file.ext.gz`` sent instead of ``file.ext``.

Like nginx's ``gzip_static``: the operator compresses once (``brotli -k``, ``gzip -k``), and
the server picks the variant the client's ``Accept-Encoding`` allows, without compressing
anything itself.  Why each rule:

* q-values are honoured (``gzip;q=0`` refuses gzip, ``*`` stands for any encoding not named),
  the highest q wins and brotli wins a tie, being smaller;
* ``Vary: Accept-Encoding`` goes on every response of a file that has a variant, the
  uncompressed one too, so that a cache never hands a gzip body to a client that cannot read it;
* the variant is a file of its own, so its ETag (from its own size and time, tagged with the
  encoding) differs from the original's, and a Range applies to its bytes (RFC 9110 8.8.3);
* a variant that is a symlink leaving the served folder is ignored, as the file would be.
"""

from __future__ import annotations

import os
import stat

from dropins.web.paths import is_inside

__all__ = ["ENCODINGS", "TwinFinder", "Variant", "accepted_encodings", "is_variant_of"]

#: (content coding, file suffix), in the order preferred at equal q
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))
VARY = (b"Vary", b"Accept-Encoding")


class Variant:
    """The file to send for a request: a precompressed sibling, or the file itself."""

    __slots__ = ("encoding", "info", "path", "vary")

    def __init__(self, path: str, info: os.stat_result, encoding: str | None,
                 vary: bool) -> None:
        self.path = path
        self.info = info
        #: the content coding (``br``, ``gzip``), None for the file itself
        self.encoding = encoding
        #: whether the answer depends on Accept-Encoding (some variant exists)
        self.vary = vary


def accepted_encodings(header: bytes | None) -> dict[str, float]:
    """The q-value of each content coding a client named in ``Accept-Encoding``.

    A malformed q counts as 0 (refused): guessing that a client accepts what it garbled
    could send it a body it cannot decode.
    """
    accepted: dict[str, float] = {}
    if not header:
        return accepted
    for item in header.decode("latin-1").split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:
                    q = 0.0
        accepted[coding] = q
    return accepted


def _quality(accepted: dict[str, float], coding: str) -> float:
    if coding in accepted:
        return accepted[coding]
    if coding == "gzip" and "x-gzip" in accepted:
        return accepted["x-gzip"]
    return accepted.get("*", 0.0)


class TwinFinder:
    """Finds the variant to send, with two caches that keep it off the fast path's bill.

    Most files have no twin, and a failed ``lstat`` per encoding per request costs several
    microseconds (the exception included).  So which twins a file has is remembered with the
    modification time of its folder, which changes whenever an entry is added, removed or
    renamed there: one ``stat`` of the folder then answers.  Parsed ``Accept-Encoding``
    values are remembered too (clients send few distinct ones), within a bound.
    """

    _MAX_ENTRIES = 4096

    def __init__(self, root: str, follow_symlinks: bool) -> None:
        self.root = root
        self.follow_symlinks = follow_symlinks
        self._twins: dict[str, tuple[int, tuple[tuple[str, str], ...]]] = {}
        self._accepted: dict[bytes, dict[str, float]] = {}

    def find(self, file_path: str, info: os.stat_result,
             accept_encoding: bytes | None) -> Variant:
        """The file to send for ``file_path`` (whose stat is ``info``) to this client."""
        twins = self._twins_of(file_path)
        if not twins:
            return Variant(file_path, info, None, False)
        accepted = self._parse(accept_encoding)
        best_q, best = 0.0, None
        for coding, path in twins:
            q = _quality(accepted, coding)
            if q > best_q:
                best_q, best = q, (coding, path)
        if best is not None:
            try:
                found = os.stat(best[1])
            except OSError:
                pass  # removed since: the original will do
            else:
                if stat.S_ISREG(found.st_mode):
                    return Variant(best[1], found, best[0], True)
        return Variant(file_path, info, None, True)

    def _parse(self, header: bytes | None) -> dict[str, float]:
        key = header or b""
        accepted = self._accepted.get(key)
        if accepted is None:
            if len(self._accepted) >= 64:
                self._accepted.clear()
            accepted = self._accepted[key] = accepted_encodings(header)
        return accepted

    def _twins_of(self, file_path: str) -> tuple[tuple[str, str], ...]:
        try:
            folder_mtime = os.stat(os.path.dirname(file_path)).st_mtime_ns
        except OSError:
            return ()
        known = self._twins.get(file_path)
        if known is not None and known[0] == folder_mtime:
            return known[1]
        twins = tuple((coding, file_path + suffix) for coding, suffix in ENCODINGS
                      if self._is_twin(file_path + suffix))
        if len(self._twins) >= self._MAX_ENTRIES:
            self._twins.clear()
        self._twins[file_path] = (folder_mtime, twins)
        return twins

    def _is_twin(self, candidate: str) -> bool:
        try:
            found = os.lstat(candidate)
            if stat.S_ISLNK(found.st_mode):
                if not self.follow_symlinks and not is_inside(os.path.realpath(candidate),
                                                              self.root):
                    return False
                found = os.stat(candidate)
        except OSError:
            return False
        return stat.S_ISREG(found.st_mode)


def is_variant_of(name: str, names: set[str]) -> bool:
    """Whether folder entry ``name`` is the precompressed twin of another entry in ``names``
    (listings show ``app.js`` once, not also ``app.js.gz`` and ``app.js.br``)."""
    return any(name.endswith(suffix) and name[:-len(suffix)] in names
               for _, suffix in ENCODINGS)
