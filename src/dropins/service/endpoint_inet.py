"""The ``tcp``, ``tcp6`` and ``ssl`` endpoint kinds: listening TCP sockets, optionally with TLS.

``tcp`` listens on IPv4 and ``tcp6`` on IPv6 only (``IPV6_V6ONLY`` is set, as asyncio does, so
the two kinds never overlap and can be combined); ``ssl`` picks the family from its interface.
An interface may be a host name: every address it resolves to gets its own socket.
"""

from __future__ import annotations

import ipaddress
import socket
import string
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from dropins.service.endpoints import bind_fields, parse_int, parse_port
from dropins.service.errors import EndpointError, listen_error
from dropins.service.serving import DEFAULT_BACKLOG, SocketEndpoint

if TYPE_CHECKING:
    import ssl

__all__ = ["TCPServerEndpoint", "parse_ssl", "parse_tcp", "parse_tcp6"]

_MAX_BACKLOG = 65535


class TCPServerEndpoint(SocketEndpoint):
    """Listen on ``port`` at ``interface`` (an address or host name) in one address family."""

    def __init__(self, port: int, interface: str, family: socket.AddressFamily, *,
                 backlog: int = DEFAULT_BACKLOG, description: str | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.port = port
        self.interface = interface
        self.family = family
        self.backlog = backlog
        self.ssl_context = ssl_context
        self.address_kind = "ssl" if ssl_context is not None else None
        default_kind = "tcp6" if family == socket.AF_INET6 else "tcp"
        self.description = description or f"{self.address_kind or default_kind}:{port}"

    def bind(self) -> list[socket.socket]:
        try:
            infos = socket.getaddrinfo(self.interface, self.port, self.family,
                                       socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
        except OSError as error:
            raise listen_error(self.description, error) from error
        sockets: list[socket.socket] = []
        port = self.port
        try:
            for family, kind, proto, _, address in _unique(infos):
                sock = socket.socket(family, kind, proto)
                sockets.append(sock)
                if sys.platform == "win32":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
                else:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                # with port 0 and several addresses, all sockets share the first free port
                sock.bind((address[0], port, *address[2:]))
                port = sock.getsockname()[1]
                sock.listen(self.backlog)
                sock.setblocking(False)
        except OSError as error:
            for sock in sockets:
                sock.close()
            raise listen_error(self.description, error) from error
        return sockets


def _unique(infos: list) -> list:
    seen: set = set()
    result = []
    for info in infos:
        if info[4] not in seen:
            seen.add(info[4])
            result.append(info)
    return result


def parse_tcp(args: Sequence[str], kwargs: Mapping[str, str], *,
              description: str | None = None) -> TCPServerEndpoint:
    """``tcp:PORT[:interface=ADDR][:backlog=N]``: IPv4; ADDR defaults to every interface."""
    _reject_unescaped_ipv6(args, kwargs)
    fields = bind_fields("tcp", args, kwargs, ["port"], ["interface", "backlog"])
    interface = _interface(fields, socket.AF_INET, "tcp")
    return TCPServerEndpoint(_port(fields), interface or "0.0.0.0", socket.AF_INET,
                             backlog=_backlog(fields), description=description)


def parse_tcp6(args: Sequence[str], kwargs: Mapping[str, str], *,
               description: str | None = None) -> TCPServerEndpoint:
    """``tcp6:PORT[:interface=ADDR][:backlog=N]``: IPv6; ADDR defaults to every interface."""
    _reject_unescaped_ipv6(args, kwargs)
    fields = bind_fields("tcp6", args, kwargs, ["port"], ["interface", "backlog"])
    interface = _interface(fields, socket.AF_INET6, "tcp6")
    return TCPServerEndpoint(_port(fields), interface or "::", socket.AF_INET6,
                             backlog=_backlog(fields), description=description)


def parse_ssl(args: Sequence[str], kwargs: Mapping[str, str], *,
              description: str | None = None) -> TCPServerEndpoint:
    """``ssl:PORT:certKey=PEM[:privateKey=PEM][:interface=ADDR][:backlog=N]``.

    ``certKey`` is the certificate chain (PEM); ``privateKey`` defaults to the same file.  Both
    are read now, while the process may still be allowed to read them.
    """
    _reject_unescaped_ipv6(args, kwargs)
    fields = bind_fields("ssl", args, kwargs, ["port"],
                         ["certKey", "privateKey", "interface", "backlog"])
    port = _port(fields)
    interface = _interface(fields, None, "ssl")
    family = socket.AF_INET6 if interface and _ip_version(interface) == 6 else socket.AF_INET
    if "certKey" not in fields:
        raise EndpointError("certKey is missing: give the certificate file, "
                            "as in ssl:443:certKey=server.pem")
    context = _ssl_context(fields["certKey"], fields.get("privateKey"))
    default = "::" if family == socket.AF_INET6 else "0.0.0.0"
    return TCPServerEndpoint(port, interface or default, family, backlog=_backlog(fields),
                             description=description, ssl_context=context)


def _reject_unescaped_ipv6(args: Sequence[str], kwargs: Mapping[str, str]) -> None:
    """``interface=::1`` splits at its colons; say how to write it instead of "extra field"."""
    if "interface" in kwargs and len(args) > 1 and all(
            all(c in string.hexdigits or c in "%." for c in arg) for arg in args[1:]):
        raise EndpointError("interface looks like an IPv6 address with unescaped colons; "
                            "write it in brackets, interface=[::1], or escape them: \\:")


def _port(fields: Mapping[str, str]) -> int:
    if "port" not in fields:
        raise EndpointError("port is missing, as in tcp:8080 (0 picks a free port)")
    return parse_port(fields["port"])


def _backlog(fields: Mapping[str, str]) -> int:
    if "backlog" not in fields:
        return DEFAULT_BACKLOG
    return parse_int(fields["backlog"], "backlog", 1, _MAX_BACKLOG)


def _interface(fields: Mapping[str, str], family: socket.AddressFamily | None, kind: str) -> str:
    """The interface field, brackets removed, checked against the family of ``kind``."""
    text = fields.get("interface", "")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
        if _ip_version(text) != 6:
            raise EndpointError(f"interface [{text}] must be an IPv6 address inside brackets")
    if "interface" in fields and not text:
        raise EndpointError("interface is empty: give an address or host name, or leave it out")
    version = _ip_version(text)
    base = "udp" if kind.startswith("udp") else "tcp"
    if family == socket.AF_INET and version == 6:
        raise EndpointError(f"interface {text!r} is an IPv6 address; "
                            f"use {base}6:PORT:interface=...")
    if family == socket.AF_INET6 and version == 4:
        raise EndpointError(f"interface {text!r} is an IPv4 address; "
                            f"use {base}:PORT:interface=...")
    if version is None and text and not _looks_like_host(text):
        raise EndpointError(f"interface must be an IP address or host name, got {text!r}")
    return text


def _ip_version(text: str) -> int | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0]).version
    except ValueError:
        return None


def _looks_like_host(text: str) -> bool:
    labels = text.rstrip(".").split(".")
    return all(label and len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum()
               and label.isascii() for label in labels)


def _ssl_context(cert_path: str, key_path: str | None) -> ssl.SSLContext:
    import ssl

    for field, path in (("certKey", cert_path), ("privateKey", key_path)):
        if path is None:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as error:
            reason = error.strerror or str(error)
            raise EndpointError(f"{field}: cannot read {path!r}: {reason.lower()}") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert_path, key_path)
    except ssl.SSLError as error:
        files = f"certKey={cert_path!r}" + (f", privateKey={key_path!r}" if key_path else "")
        raise EndpointError(f"cannot load a certificate and private key from {files}: "
                            f"{error.reason or error}") from None
    return context
