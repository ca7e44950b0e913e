"""Destination rules for ``dropins socks``: which addresses a client may be relayed to.

A rule is a network (``203.0.113.0/24``, ``2001:db8::/32``, a single address), a host name
(``example.org``) or every name under a domain (``*.example.org``), optionally followed by
``:PORT`` or ``:LOW-HIGH`` (write IPv6 networks in brackets then: ``[2001:db8::]/32:443``).

The decision for one destination (the name the client asked for, if any, and the address the
server will connect to): a matching ``--deny`` refuses; else a matching ``--allow`` permits;
else the safe default permits only globally routable addresses, so a proxy reachable from
outside cannot be used to reach loopback, the private networks (RFC 1918, unique local),
link-local (cloud metadata at 169.254.169.254), multicast or reserved ranges behind it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from dropins.options import UsageError

__all__ = ["Rule", "Rules", "parse_rule"]

_NAME = re.compile(r"(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_-]+)*\.?")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Rule:
    """One ``--allow``/``--deny`` rule."""

    text: str
    network: IPNetwork | None = None
    name: str | None = None  # lower case, no trailing dot; "*.x" matches names under x
    ports: tuple[int, int] = (1, 65535)

    def matches(self, host: str | None, address: IPAddress, port: int) -> bool:
        if not self.ports[0] <= port <= self.ports[1]:
            return False
        if self.network is not None:
            return address.version == self.network.version and address in self.network
        if host is None or self.name is None:
            return False
        host = host.lower().rstrip(".")
        if self.name.startswith("*."):
            return host.endswith(self.name[1:])
        return host == self.name


def parse_rule(text: str, option: str) -> Rule:
    """``NETWORK|NAME|*.DOMAIN[:PORT|:LOW-HIGH]`` as a ``Rule``; ``UsageError`` otherwise."""
    target, ports = text, (1, 65535)
    if target.startswith("["):
        close = target.find("]")
        if close < 0:
            raise _bad(text, option, "an unclosed '['")
        rest = target[close + 1:]
        prefix, colon, port_text = rest.partition(":")
        target = target[1:close] + prefix
        if colon:
            ports = _ports(port_text, text, option)
    elif target.count(":") == 1:
        target, port_text = target.split(":")
        ports = _ports(port_text, text, option)
    try:
        return Rule(text, network=ipaddress.ip_network(target, strict=False), ports=ports)
    except ValueError:
        pass
    if not target or not _NAME.fullmatch(target) or ":" in target:
        raise _bad(text, option, f"{target!r} is neither a network nor a host name")
    return Rule(text, name=target.lower().rstrip("."), ports=ports)


def _ports(text: str, rule: str, option: str) -> tuple[int, int]:
    low, dash, high = text.partition("-")
    if not low.isdigit() or (dash and not high.isdigit()):
        raise _bad(rule, option, f"port {text!r} is not PORT or LOW-HIGH")
    first, last = int(low), int(high) if dash else int(low)
    if not 1 <= first <= last <= 65535:
        raise _bad(rule, option, f"ports {text!r} must be 1 to 65535, low before high")
    return first, last


def _bad(text: str, option: str, reason: str) -> UsageError:
    return UsageError(f"invalid {option} {text!r}: {reason}; give a network (10.0.0.0/8), "
                      "a host name or *.domain, optionally with :PORT or :LOW-HIGH")


class Rules:
    """``--deny`` first, then ``--allow``, then only global addresses."""

    def __init__(self, allow: list[Rule], deny: list[Rule]) -> None:
        self.allow = allow
        self.deny = deny

    def permits(self, host: str | None, address: IPAddress, port: int) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
        if any(rule.matches(host, address, port) for rule in self.deny):
            return False
        if any(rule.matches(host, address, port) for rule in self.allow):
            return True
        return address.is_global and not address.is_multicast
