"""The errors of the service layer, each meant to be shown to an operator as one line.

The runner prints ``str(error)`` and nothing else, so every message here names what was wrong
(the endpoint string as written, the faulty field, the failing service) and, where it helps,
how to fix it.
"""

from __future__ import annotations

import errno

__all__ = ["EndpointError", "ListenError", "ServiceStartError", "listen_error"]


class EndpointError(ValueError):
    """An endpoint string that cannot be parsed, e.g. a port that is not a number.

    The message names the string and the faulty field:
    ``invalid endpoint 'tcp:80x': port must be a number from 0 to 65535, got '80x'``.
    """


class ListenError(Exception):
    """A server endpoint that could not be bound or served.

    ``str(error)`` reads ``cannot listen on ENDPOINT: REASON``, with the endpoint as the user
    wrote it and a short human reason such as ``address already in use``.
    """

    def __init__(self, endpoint: str, reason: str) -> None:
        super().__init__(f"cannot listen on {endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason


class ServiceStartError(Exception):
    """A service of a MultiService failed to start; the services started before it were stopped.

    ``service`` is the service that failed and ``__cause__`` the original exception, whose
    message is repeated verbatim at the end of this one.
    """

    def __init__(self, message: str, service: object = None) -> None:
        super().__init__(message)
        self.service = service


#: errno -> the short reason shown after "cannot listen on ENDPOINT: "
_REASONS: dict[int, str] = {
    errno.EADDRINUSE: "address already in use",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EADDRNOTAVAIL: "no such address on this machine",
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "a parent of the path is not a directory",
    errno.EROFS: "read-only file system",
    errno.EAFNOSUPPORT: "address family not supported on this machine",
    errno.ENAMETOOLONG: "path too long for a socket",
}


def listen_error(endpoint: str, error: BaseException) -> ListenError:
    """Turn an ``OSError`` raised while binding ``endpoint`` into a one-line ``ListenError``."""
    if isinstance(error, ListenError):
        return error
    import socket  # socket is already imported by anything that binds; kept local for tidiness

    if isinstance(error, socket.gaierror):
        reason = f"cannot resolve the interface ({error.strerror or error})"
    elif isinstance(error, OSError) and error.errno in _REASONS:
        reason = _REASONS[error.errno]
    elif isinstance(error, OSError) and error.strerror:
        reason = error.strerror[0].lower() + error.strerror[1:]
    else:
        reason = str(error) or type(error).__name__
    return ListenError(endpoint, reason)
