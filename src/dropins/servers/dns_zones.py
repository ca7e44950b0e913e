"""Authoritative answers from zone files, for ``dropins dns`` (built on dnspython).

``ZoneSet`` holds the zones named by ``--zone NAME=FILE`` and answers one parsed query with
a response message: NOERROR with the records, NOERROR-NODATA or NXDOMAIN with the zone's SOA
in the authority section (RFC 2308, its TTL capped by the SOA minimum), a referral below a
zone cut, CNAMEs followed inside the zone.  What it refuses by design: names outside its
zones (it is no resolver, so no open recursion), zone transfers, classes other than IN, and
opcodes other than QUERY.  ANY is answered with one RRset (RFC 8482), so a small query
cannot pull a whole node.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

__all__ = ["ZoneError", "ZoneSet", "parse_zone_option"]

log = logging.getLogger("dropins.servers.dns")

#: CNAME hops followed inside a zone before answering with what was found
_MAX_CNAME_HOPS = 8


class ZoneError(ValueError):
    """A zone that cannot be loaded; the message is one line naming the file."""


def parse_zone_option(text: str) -> tuple[str, str]:
    """``example.org=FILE`` as ``(origin, path)``."""
    origin, equals, path = text.partition("=")
    if not equals or not origin.strip() or not path:
        raise ZoneError(f"invalid --zone {text!r}: give NAME=FILE, e.g. "
                        "example.org=/etc/dns/example.org.zone")
    try:
        dns.name.from_text(origin.strip())
    except dns.exception.DNSException as error:
        raise ZoneError(f"invalid --zone {text!r}: {origin!r} is not a domain name "
                        f"({error})") from None
    return origin.strip(), path


@dataclass
class _Zone:
    origin: dns.name.Name
    path: str
    zone: Any
    #: names that have names below them (so an empty non-terminal is NODATA, not NXDOMAIN)
    parents: set[dns.name.Name] = field(default_factory=set)
    #: names below the origin that have NS records: the zone cuts, highest first
    cuts: list[dns.name.Name] = field(default_factory=list)


def load_zone(origin: str, path: str) -> _Zone:
    """Read one zone file; ``ZoneError`` (one line, naming the file) when it is not usable."""
    name = dns.name.from_text(origin)
    try:
        zone = dns.zone.from_file(path, origin=name, relativize=False, check_origin=True)
    except OSError as error:
        raise ZoneError(f"cannot read zone file {path!r} for {origin}: "
                        f"{(error.strerror or str(error)).lower()}") from None
    except dns.zone.NoSOA:
        raise ZoneError(f"zone file {path!r} for {origin} has no SOA record at its origin; "
                        "add one, e.g. '@ SOA ns1 hostmaster 1 3600 600 86400 300'") from None
    except dns.zone.NoNS:
        raise ZoneError(f"zone file {path!r} for {origin} has no NS record at its origin; "
                        "add one, e.g. '@ NS ns1'") from None
    except dns.exception.DNSException as error:
        raise ZoneError(f"zone file {path!r} for {origin}: {error}") from None
    parents: set[dns.name.Name] = set()
    cuts: list[dns.name.Name] = []
    for owner, node in zone.nodes.items():
        if owner != name and node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NS):
            cuts.append(owner)
        parent = owner
        while parent != name and len(parent) > len(name):
            parent = parent.parent()
            parents.add(parent)
    cuts.sort(key=len)
    return _Zone(name, path, zone, parents, cuts)


class ZoneSet:
    """The zones served, found by the longest origin that contains the query name."""

    def __init__(self, specs: list[tuple[str, str]]) -> None:
        self.specs = list(specs)
        self.zones = [load_zone(origin, path) for origin, path in self.specs]
        #: counts reloads, so that cached answers from older zones are dropped
        self.generation = 0

    def reload(self) -> bool:
        """Read every zone file again; on any error keep serving the zones as they were."""
        try:
            zones = [load_zone(origin, path) for origin, path in self.specs]
        except ZoneError as error:
            log.error("zones not reloaded, still serving the previous ones: %s", error)
            return False
        self.zones = zones
        self.generation += 1
        log.info("reloaded %d zone(s)", len(zones))
        return True

    def find(self, name: dns.name.Name) -> _Zone | None:
        best: _Zone | None = None
        for zone in self.zones:
            if name.is_subdomain(zone.origin) and (best is None or len(zone.origin) >
                                                   len(best.origin)):
                best = zone
        return best

    def respond(self, query: dns.message.Message, payload: int = 1232) -> dns.message.Message:
        """The response to ``query`` (which has been parsed, so its header is sound);
        ``payload`` is the UDP size this server advertises in EDNS."""
        response = dns.message.make_response(query, recursion_available=False,
                                             our_payload=payload)
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        zone = self.find(question.name)
        if (zone is None or question.rdclass != dns.rdataclass.IN
                or question.rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR)):
            response.set_rcode(dns.rcode.REFUSED)
            return response
        if self._referral(zone, question.name, response):
            return response
        response.flags |= dns.flags.AA
        self._answer(zone, question.name, question.rdtype, response)
        return response

    def _referral(self, zone: _Zone, name: dns.name.Name,
                  response: dns.message.Message) -> bool:
        """Below a zone cut (NS records under the origin), answer with the delegation."""
        for cut in zone.cuts:  # the highest cut wins
            if not name.is_subdomain(cut):
                continue
            ns = zone.zone.get_rdataset(cut, dns.rdatatype.NS)
            response.authority.append(_rrset(cut, ns))
            for record in ns:
                self._add_glue(zone, record.target, response)
            return True
        return False

    def _add_glue(self, zone: _Zone, target: dns.name.Name,
                  response: dns.message.Message) -> None:
        node = zone.zone.get_node(target) if target.is_subdomain(zone.origin) else None
        if node is None:
            return
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            rdataset = node.get_rdataset(dns.rdataclass.IN, rdtype)
            if rdataset is not None:
                response.additional.append(_rrset(target, rdataset))

    def _answer(self, zone: _Zone, name: dns.name.Name, rdtype: int,
                response: dns.message.Message) -> None:
        for _ in range(_MAX_CNAME_HOPS):
            node = zone.zone.get_node(name)
            if node is None:
                # a CNAME to a missing name is still NOERROR
                if name not in zone.parents and not response.answer:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                self._add_soa(zone, response)
                return
            if rdtype == dns.rdatatype.ANY:
                rdataset = node.rdatasets[0] if node.rdatasets else None
            else:
                rdataset = node.get_rdataset(dns.rdataclass.IN, rdtype)
            if rdataset is not None:
                response.answer.append(_rrset(name, rdataset))
                return
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is None:
                self._add_soa(zone, response)  # NOERROR, no data
                return
            response.answer.append(_rrset(name, cname))
            name = cname[0].target
            if not name.is_subdomain(zone.origin):
                return  # the resolver follows it from here
        log.debug("CNAME chain longer than %d at %s", _MAX_CNAME_HOPS, name)

    def _add_soa(self, zone: _Zone, response: dns.message.Message) -> None:
        soa = zone.zone.get_rdataset(zone.origin, dns.rdatatype.SOA)
        rrset = _rrset(zone.origin, soa)
        rrset.ttl = min(soa.ttl, soa[0].minimum)  # the negative-caching TTL (RFC 2308)
        response.authority.append(rrset)


def _rrset(name: dns.name.Name, rdataset: Any) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype)
    rrset.update(rdataset)
    return rrset
