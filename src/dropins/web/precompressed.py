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

__all__ = ["ENCODINGS", "Variant", "accepted_encodings", "find_variant", "is_variant_of"]

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


def find_variant(file_path: str, info: os.stat_result, accept_encoding: bytes | None,
                 root: str, follow_symlinks: bool) -> Variant:
    """The file to send for ``file_path`` (whose stat is ``info``) to this client."""
    accepted = accepted_encodings(accept_encoding)
    best: Variant | None = None
    best_q = 0.0
    vary = False
    for coding, suffix in ENCODINGS:
        candidate = file_path + suffix
        try:
            found = os.lstat(candidate)
            if stat.S_ISLNK(found.st_mode):
                if not follow_symlinks and not is_inside(os.path.realpath(candidate), root):
                    continue
                found = os.stat(candidate)
        except OSError:
            continue
        if not stat.S_ISREG(found.st_mode):
            continue
        vary = True
        q = _quality(accepted, coding)
        if q > best_q:
            best, best_q = Variant(candidate, found, coding, True), q
    if best is not None:
        return best
    return Variant(file_path, info, None, vary)


def is_variant_of(name: str, names: set[str]) -> bool:
    """Whether folder entry ``name`` is the precompressed twin of another entry in ``names``
    (listings show ``app.js`` once, not also ``app.js.gz`` and ``app.js.br``)."""
    return any(name.endswith(suffix) and name[:-len(suffix)] in names
               for _, suffix in ENCODINGS)
