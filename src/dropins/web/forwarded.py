"""Behind a proxy: the client's address, scheme and host as trusted proxies tell them.

``ProxyHeaders`` wraps the handler (outside ``--auth``, so that throttling counts clients,
not the proxy).  For a request whose peer is trusted (``--forwarded-allow-ips``) it reads one
kind of proxy header and sets ``exchange.client``, ``exchange.scheme`` and the ``Host``
header, which the gateways (WSGI ``REMOTE_ADDR``, ``wsgi.url_scheme``, ``HTTP_HOST``; ASGI
``client``, ``scheme``, ``headers``) and the access log use:

* ``x-forwarded``: ``X-Forwarded-For``, ``X-Forwarded-Proto``, ``X-Forwarded-Host``, what
  nginx, Apache, HAProxy, Caddy, Traefik and Envoy send;
* ``forwarded``: RFC 7239's ``Forwarded: for=...;proto=...;host=...``.

Only one kind is read, because a proxy passes on, untouched, the kind it does not set: a
client could otherwise name itself in a ``Forwarded`` header that nginx lets through.

Each proxy appends the address it got the request from, so the list reads client first,
nearest proxy last.  Entries a client wrote itself are on the left, so the client is the
right-most address that is not a trusted proxy (with ``*``, the left-most).  Its
scheme and host are the entries at the same place, when the lists are as long, else the last
ones (a single ``X-Forwarded-Proto``, set by the nearest proxy).  Headers that cannot be
parsed, or values that are not addresses, schemes or hosts, are ignored as a whole: the
request keeps its peer's address, never an error.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from dropins.web.httputil import find_header

if TYPE_CHECKING:
    from dropins.web.exchange import Exchange

__all__ = ["KINDS", "ProxyHeaders", "TrustedProxies"]

KINDS = ("x-forwarded", "forwarded")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# One ``name=value`` pair of a Forwarded element and the separator after it (RFC 7239 4);
# unquoted values are read leniently (``for=192.0.2.1:80`` should be quoted, often is not).
_PAIR = re.compile(r'\s*([^\s=;,"]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;,"]*)\s*([;,]|$)')
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
                   r"(?::[0-9]{1,5})?\Z")
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+\Z")
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


class Malformed(ValueError):
    """A proxy header that cannot be read: all of them are ignored for the request."""


class TrustedProxies:
    """The peers whose proxy headers are believed: ``--forwarded-allow-ips``.

    A comma-separated list of addresses (``127.0.0.1``, ``::1``), networks
    (``10.0.0.0/8``), ``unix`` for connections on unix sockets, or ``*`` for every peer.
    """

    def __init__(self, text: str) -> None:
        self.everyone = False
        self.unix = False
        self.addresses: set[Address] = set()
        self.networks: list[Network] = []
        for entry in (part.strip() for part in text.split(",")):
            if not entry:
                raise ValueError(f"{text!r} has an empty entry (a comma too many?); give "
                                 "addresses or networks separated by single commas, such as "
                                 "127.0.0.1,10.0.0.0/8")
            if entry == "*":
                self.everyone = True
            elif entry == "unix":
                self.unix = True
            elif "/" in entry:
                try:
                    network = ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not a network such as 10.0.0.0/8") from None
                if network.network_address != ipaddress.ip_interface(entry).ip:
                    # 10.0.0.1/8 trusts all of 10.0.0.0/8: more than the one address it reads as
                    raise ValueError(f"{entry!r} has host bits set: write the network as "
                                     f"{network}, or the address alone as {entry.split('/')[0]}")
                self.networks.append(network)
            else:
                try:
                    self.addresses.add(ipaddress.ip_address(entry))
                except ValueError:
                    raise ValueError(f"{entry!r} is not an IP address, a network such as "
                                     "10.0.0.0/8, 'unix' or '*'") from None

    def trusts_peer(self, host: str) -> bool:
        """Whether the connection's peer (``""`` on a unix socket) is a trusted proxy."""
        if self.everyone:
            return True
        if not host:
            return self.unix
        return self.trusts(host)

    def trusts(self, host: str) -> bool:
        """Whether ``host``, an address a proxy header names, is a trusted proxy."""
        if self.everyone:
            return True
        try:
            address: Address = ipaddress.ip_address(host)
        except ValueError:
            return False  # "unknown", an obfuscated name: nobody we know
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack listener's view of an IPv4 peer
        return address in self.addresses or any(address in net for net in self.networks)


class ProxyHeaders:
    """The handler wrapper (see the module docstring)."""

    def __init__(self, handler: Any, trusted: TrustedProxies, kind: str = "x-forwarded") -> None:
        self.handler = handler
        self.trusted = trusted
        self.read = _read_forwarded if kind == "forwarded" else _read_x_forwarded
        self.allow = getattr(handler, "allow", None)

    def __call__(self, exchange: Exchange) -> Any:
        if self.trusted.trusts_peer(exchange.client[0]):
            try:
                hops, schemes, hosts = self.read(exchange)
            except Malformed:
                pass  # the request keeps what its connection says
            else:
                apply(exchange, self.trusted, hops, schemes, hosts)
        return self.handler(exchange)


Hops = list[tuple[str, int]]
Read = tuple[Hops, list[str | None], list[bytes | None]]


def apply(exchange: Exchange, trusted: TrustedProxies, hops: Hops,
          schemes: list[str | None], hosts: list[bytes | None]) -> None:
    """Set the client, scheme and host of ``exchange`` from the hops proxies listed."""
    if not hops:
        return
    chosen = 0
    for index in range(len(hops) - 1, -1, -1):
        if not trusted.trusts(hops[index][0]):
            chosen = index
            break
    exchange.client = hops[chosen]
    scheme = _same_place(schemes, chosen, len(hops))
    if scheme is not None:
        exchange.scheme = scheme
    host = _same_place(hosts, chosen, len(hops))
    if host is not None:
        exchange.headers = [(name, host if name == b"host" else value)
                            for name, value in exchange.headers]


def _same_place(values: list[Any], index: int, count: int) -> Any:
    if not values:
        return None
    return values[index] if len(values) == count else values[-1]


def _node(text: str, bare_ipv6: bool) -> tuple[str, int]:
    """``192.0.2.1``, ``192.0.2.1:80``, ``[2001:db8::1]:80`` (and, in X-Forwarded-For, a bare
    ``2001:db8::1``), ``unknown`` or an obfuscated ``_name`` as (host, port)."""
    host, port = text, ""
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise Malformed(text)
        port = port[1:]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    elif ":" in text and not bare_ipv6:
        raise Malformed(text)
    if port and not ((port.isdigit() and int(port) < 65536) or _OBFUSCATED.match(port)):
        raise Malformed(text)
    if host != "unknown" and not _OBFUSCATED.match(host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise Malformed(text) from None
    return host, int(port) if port.isdigit() else 0


def _scheme(text: str) -> str:
    scheme = _SCHEMES.get(text.strip().lower())
    if scheme is None:
        raise Malformed(text)
    return scheme


def _host(text: str) -> bytes:
    if not _HOST.match(text):
        raise Malformed(text)
    return text.encode("ascii")


def _joined(exchange: Exchange, name: bytes) -> list[str]:
    """The comma-separated entries of every ``name`` header, in order."""
    return [entry.strip() for field, value in exchange.headers if field == name
            for entry in value.decode("latin-1").split(",")]


def _read_x_forwarded(exchange: Exchange) -> Read:
    if find_header(exchange.headers, b"x-forwarded-for") is None:
        return [], [], []
    hops = [_node(entry, bare_ipv6=True) for entry in _joined(exchange, b"x-forwarded-for")]
    schemes: list[str | None] = [_scheme(entry)
                                 for entry in _joined(exchange, b"x-forwarded-proto")]
    hosts: list[bytes | None] = [_host(entry) for entry in _joined(exchange, b"x-forwarded-host")]
    return hops, schemes, hosts


def _read_forwarded(exchange: Exchange) -> Read:
    text = ", ".join(value.decode("latin-1") for field, value in exchange.headers
                     if field == b"forwarded")
    elements: list[dict[str, str]] = []
    current: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _PAIR.match(text, position)
        if match is None or match.end() == position:
            raise Malformed(text)
        name, value, separator = match.group(1).lower(), match.group(2), match.group(3)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if name in current:
            raise Malformed(text)
        current[name] = value
        if separator != ";":
            elements.append(current)
            current = {}
        position = match.end()
    if current:
        elements.append(current)
    if any("for" not in element for element in elements):
        raise Malformed(text)  # a hop without its "for" leaves no way to tell whose the rest are
    hops = [_node(element["for"], bare_ipv6=False) for element in elements]
    # proto and host are optional in each element: None keeps the places aligned with hops.
    schemes = [_scheme(e["proto"]) if "proto" in e else None for e in elements]
    hosts = [_host(e["host"]) if "host" in e else None for e in elements]
    return hops, schemes, hosts
