"""``wsgi.file_wrapper`` (PEP 3333): WSGI responses that are files go out with sendfile.

An application (Flask's ``send_file``, Django's ``FileResponse``) wraps an open file in
``environ["wsgi.file_wrapper"](file, block_size)`` and returns the wrapper.  When it wraps a
regular file opened in binary mode, the gateway sends the file from its current position
with the connection's sendfile path (zero-copy, paced by the client, no worker thread held);
anything else (a ``BytesIO``, a socket, a text file) is simply iterated block by block, as
any response is.  Either way the wrapper's ``close()`` closes the file.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from typing import Any, BinaryIO

__all__ = ["FileWrapper", "file_to_send"]


class FileWrapper:
    """What ``environ["wsgi.file_wrapper"]`` makes: an iterable of blocks read from a file."""

    def __init__(self, filelike: Any, block_size: int = 64 * 1024) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while block := read(self.block_size):
            yield block

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


def file_to_send(result: object) -> tuple[BinaryIO, int, int] | None:
    """``(file, offset, size)`` when ``result`` wraps a regular binary file, else None.

    ``size`` is what is left from the file's current position, as PEP 3333 asks.
    """
    if not isinstance(result, FileWrapper):
        return None
    file = result.filelike
    if isinstance(file, io.TextIOBase):
        return None
    try:
        info = os.fstat(file.fileno())
        offset = file.tell()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None
    if not stat.S_ISREG(info.st_mode) or not isinstance(offset, int):
        return None
    return file, offset, max(0, info.st_size - offset)
