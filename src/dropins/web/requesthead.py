"""The rules of RFC 9112 for a parsed request head, applied before any handler sees it.

httptools checks the syntax; what it leaves to the server is decided here, once, for files,
WSGI and ASGI alike:

* the version: HTTP/1.x with x above 1 is served as HTTP/1.1 (RFC 9110 2.5: the highest minor
  version the server supports); HTTP/0.x and HTTP/2.0 and above get 505;
* ``Host``: an HTTP/1.1 request without one, or any request with two, gets 400; a target in
  absolute form (``GET http://example.com/x``) names the host instead of the header;
* a chunked body on HTTP/1.0, which has no chunked coding, gets 400 (its framing is unknown);
* ``CONNECT`` (tunnels are not offered) gets 405; ``OPTIONS *`` asks about the server itself
  and gets 200 with ``Allow``, and any other method with the target ``*`` gets 400; none of
  these reaches the handler.
"""

from __future__ import annotations

from dropins.web.httputil import HeaderList, find_header

__all__ = ["DEFAULT_ALLOW", "HeadVerdict", "check_request_head", "server_answer_headers"]

#: What ``Allow`` says when the handler does not tell (WSGI and ASGI applications decide per
#: resource; these are the methods the server passes to them).
DEFAULT_ALLOW = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


class HeadVerdict:
    """What the server makes of a head: the version and headers handlers see, and the status
    the server answers itself with (0 when the handler answers)."""

    __slots__ = ("headers", "status", "version")

    def __init__(self, version: str, headers: HeaderList, status: int = 0) -> None:
        self.version = version
        self.headers = headers
        self.status = status


def check_request_head(method: bytes, target: bytes, version: str,
                       headers: HeaderList) -> HeadVerdict:
    """Apply the rules of the module docstring to one request head.

    Written for the common case (HTTP/1.1, one Host, an origin-form target) to cost little:
    it runs for every request.
    """
    if version != "1.1" and version != "1.0":
        if version.partition(".")[0] != "1":
            return HeadVerdict(version, headers, 505)  # logged as the client wrote it
        version = "1.1"
    hosts = 0
    for name, _ in headers:
        if name == b"host":
            hosts += 1
    if hosts > 1 or (not hosts and version == "1.1"):
        return HeadVerdict(version, headers, 400)
    if version == "1.0" and find_header(headers, b"transfer-encoding") is not None:
        return HeadVerdict(version, headers, 400)
    if target[:1] != b"/":
        if method == b"CONNECT":
            return HeadVerdict(version, headers, 405)
        if target == b"*":  # RFC 9112 3.2.4: the asterisk form is for OPTIONS only
            return HeadVerdict(version, headers, 200 if method == b"OPTIONS" else 400)
        authority = absolute_form_authority(target)
        if authority is not None:
            headers = [(name, value) for name, value in headers if name != b"host"]
            headers.append((b"host", authority))
    elif method == b"CONNECT":
        return HeadVerdict(version, headers, 405)
    return HeadVerdict(version, headers)


def absolute_form_authority(target: bytes) -> bytes | None:
    """The host (and port) of a target in absolute form, ``http://host:port/path``, or None."""
    if target.startswith(b"/"):
        return None
    scheme, sep, rest = target.partition(b"://")
    if not sep or not scheme.isalpha():
        return None
    end = len(rest)
    for delimiter in (b"/", b"?", b"#"):
        found = rest.find(delimiter)
        if found != -1:
            end = min(end, found)
    authority = rest[:end].rpartition(b"@")[2]  # never pass user information on as a host
    return authority or None


def server_answer_headers(status: int, allow: bytes) -> list[tuple[bytes, bytes]]:
    """The headers of an answer the server gives itself: ``Allow`` for 405, which must say
    what is allowed, and for 200 (``OPTIONS *``), where OPTIONS itself is allowed too, even
    by a handler that allows it on no resource (static files)."""
    if status == 200 and b"OPTIONS" not in (method.strip() for method in allow.split(b",")):
        allow += b", OPTIONS"
    return [(b"Allow", allow)] if status in (200, 405) else []
