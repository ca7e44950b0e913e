"""The request body a WSGI application reads as ``wsgi.input``: whole, in memory or on disk.

Why the body is read before the application runs, and not streamed to its thread: a slow
upload then costs the event loop a few buffers instead of holding one of the few worker
threads for as long as the client takes.  Why a spooled file: a body up to
``SPOOL_THRESHOLD`` stays in memory (most requests: forms, JSON), a larger one goes to an
anonymous temporary file as it arrives, so a 300 MB upload costs about one read buffer of
memory instead of the body twice over (the pieces plus their join).
"""

from __future__ import annotations

import tempfile
from typing import IO

from dropins.web.exchange import RequestBody

__all__ = ["SPOOL_THRESHOLD", "spool_body"]

#: Bodies larger than this go to a temporary file (in ``$TMPDIR``) instead of memory.
SPOOL_THRESHOLD = 1024 * 1024


async def spool_body(body: RequestBody | None, threshold: int = SPOOL_THRESHOLD
                     ) -> tuple[IO[bytes], int]:
    """Read ``body`` to its end into a file positioned at its start; return it and its size.

    The caller closes the file, which frees its disk space.  Reading errors (``BodyError``,
    ``ClientDisconnected``) propagate, after the file is closed.
    """
    spool = tempfile.SpooledTemporaryFile(max_size=threshold)  # noqa: SIM115 - returned open
    size = 0
    try:
        if body is not None:
            while chunk := await body.read_chunk():
                spool.write(chunk)
                size += len(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool, size
