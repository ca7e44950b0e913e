"""Diagnostics for discovery: one-line failure descriptions and lazily-imported logging.

``logging`` costs several milliseconds to import, and the common path (a valid cache, nothing
broken) never logs, so it is imported only when a line is actually emitted.  Broken plugin
modules are reported at WARNING, once per change of the file; cache trouble only at DEBUG, so an
unwritable or damaged cache never floods anybody's logs.
"""

from __future__ import annotations

import os

__all__ = ["LOGGER_NAME", "debug", "describe_failure", "strict_from_environment", "warn"]

LOGGER_NAME = "dropins.plugin"


def warn(message: str) -> None:
    """Log ``message`` at WARNING on the ``dropins.plugin`` logger."""
    import logging

    logging.getLogger(LOGGER_NAME).warning("%s", message)


def debug(message: str) -> None:
    """Log ``message`` at DEBUG on the ``dropins.plugin`` logger (cache trouble goes here)."""
    import logging

    logger = logging.getLogger(LOGGER_NAME)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s", message)


def strict_from_environment() -> bool:
    """``DROPINS_STRICT=1`` makes broken plugin modules raise instead of being listed as broken."""
    return os.environ.get("DROPINS_STRICT", "").strip().lower() in {"1", "true", "yes", "on"}


def describe_failure(error: BaseException, path: str | None) -> str:
    """Describe why importing the module at ``path`` failed, as ``file:line: ErrorType: message``.

    The location is where the error surfaced *in the plugin file* when the traceback passes
    through it (the import line of a missing dependency, the line that raised), else where a
    syntax error is, else the innermost frame; the message is the first line of the error.
    """
    kind = type(error).__name__
    if isinstance(error, SyntaxError):
        message = error.msg or str(error)
        filename, line = error.filename or path, error.lineno
    else:
        message = str(error)
        filename, line = _location_in_traceback(error, path)
    message = message.strip().splitlines()[0] if message.strip() else ""
    where = filename or path or "<unknown>"
    if line:
        where = f"{where}:{line}"
    return f"{where}: {kind}: {message}" if message else f"{where}: {kind}"


def _location_in_traceback(error: BaseException, path: str | None) -> tuple[str | None, int | None]:
    frames: list[tuple[str, int | None]] = []
    traceback = error.__traceback__
    while traceback is not None:
        frames.append((traceback.tb_frame.f_code.co_filename, traceback.tb_lineno))
        traceback = traceback.tb_next
    if path:
        wanted = os.path.normcase(os.path.abspath(path))
        in_file = [frame for frame in frames
                   if os.path.normcase(os.path.abspath(frame[0])) == wanted]
        if in_file:
            return in_file[-1]
    user_frames = [frame for frame in frames if not frame[0].startswith("<frozen")]
    if user_frames:
        return user_frames[-1]
    return path, None
