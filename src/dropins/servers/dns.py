"""``dropins dns``: an authoritative DNS server for the zones in ``--zone NAME=FILE``.

Queries come over UDP (``udp:`` endpoints) and TCP (``tcp:`` endpoints, RFC 7766 framing);
the answers come from ``dropins.servers.dns_zones``.  A UDP answer that does not fit the
client's size (512 bytes, or its EDNS size up to ``--max-udp-size``) is sent empty with TC
set, and the client asks again over TCP.

No amplification: UDP answers are rate limited per client address (``--rate-limit`` a
second, a token bucket), because a UDP source address can be forged.  Past the limit, every
second query is answered with an empty truncated response ("slip", as BIND's RRL does), so a
real client falls back to TCP, and the others are dropped.  TCP needs a handshake, so it is
limited by the connection cap and idle timeout instead.  SIGHUP reloads every zone file; a
zone that no longer loads leaves all zones as they were, with one error line in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

from dropins.options import Options as BaseOptions
from dropins.options import Parameter, UsageError
from dropins.service.base import MultiService

__all__ = ["DEFAULT_LISTEN", "Options", "RateLimiter", "make_service"]

log = logging.getLogger("dropins.servers.dns")

DEFAULT_LISTEN = ["udp:5353:interface=127.0.0.1", "tcp:5353:interface=127.0.0.1"]

#: clients remembered by the rate limiter; the least recently seen is forgotten first
_MAX_CLIENTS = 10000
#: queries one TCP connection may send before it is closed
_MAX_TCP_QUERIES = 1000


def _positive(name: str) -> Any:
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = 0.0
        if not value > 0:
            raise UsageError(f"invalid --{name} {text!r}: give a positive number")
        return value
    return convert


def _udp_size(text: str) -> int:
    if not text.isdigit() or not 512 <= int(text) <= 65535:
        raise UsageError(f"invalid --max-udp-size {text!r}: give a number from 512 to 65535")
    return int(text)


class Options(BaseOptions):
    description = "Answer DNS queries for zone files, over UDP and TCP (authoritative only)."
    listen = Parameter(short="l", multiple=True, metavar="ENDPOINT", default=DEFAULT_LISTEN,
                       help="udp: or tcp: endpoint to answer on (repeatable; default: "
                            f"{' and '.join(DEFAULT_LISTEN)}).")
    zone = Parameter(short="z", multiple=True, required=True, metavar="NAME=FILE",
                     help="A zone to serve from a master file (repeatable).")
    rate_limit = Parameter(type=_positive("rate-limit"), default=20.0, metavar="N",
                           help="UDP answers a second per client address (default 20).")
    max_udp_size = Parameter(type=_udp_size, default=1232, metavar="BYTES",
                             help="Largest UDP answer, even if EDNS asks for more "
                                  "(default 1232).")
    idle_timeout = Parameter(type=_positive("idle-timeout"), default=10.0, metavar="SECONDS",
                             help="Close a TCP connection idle this long (default 10).")


class RateLimiter:
    """A token bucket per client address: ``rate`` a second, bursts of up to ``rate``."""

    def __init__(self, rate: float, clock: Any = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1.0, rate)
        self.clock = clock
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # host -> [tokens, time]
        self._slip: dict[str, bool] = {}

    def check(self, host: str) -> str:
        """``"answer"``, ``"slip"`` (answer empty with TC) or ``"drop"`` for this query."""
        now = self.clock()
        bucket = self._buckets.pop(host, None)
        if bucket is None:
            bucket = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        self._buckets[host] = bucket
        if len(self._buckets) > _MAX_CLIENTS:
            forgotten, _ = self._buckets.popitem(last=False)
            self._slip.pop(forgotten, None)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return "answer"
        bucket[0] = tokens
        slip = not self._slip.get(host, False)
        self._slip[host] = slip
        return "slip" if slip else "drop"


def _formerr(data: bytes) -> bytes | None:
    """A bare FORMERR for a query that does not parse, if its header can be read."""
    if len(data) < 12 or data[2] & 0x80:  # too short, or a response: never answer those
        return None
    return data[:2] + bytes([0x80 | (data[2] & 0x79), 0x01]) + bytes(8)


def respond_wire(zones: Any, data: bytes, max_size: int | None, *,
                 truncate_only: bool = False) -> bytes | None:
    """The wire answer to the wire query ``data``; ``None`` when nothing should be sent.

    ``max_size`` is the UDP limit (``None`` over TCP); an answer over it goes out empty with
    TC set.  ``truncate_only`` sends that empty TC answer straight away (a rate-limit slip).
    """
    import dns.exception
    import dns.flags
    import dns.message

    try:
        query = dns.message.from_wire(data)
    except dns.exception.DNSException:
        return _formerr(data)
    if query.flags & dns.flags.QR:
        return None
    limit = 65535
    if max_size is not None:
        limit = min(max_size, max(512, query.payload)) if query.edns >= 0 else 512
    payload = max_size or 1232
    response = (dns.message.make_response(query, recursion_available=False,
                                          our_payload=payload) if truncate_only
                else zones.respond(query, payload))
    if not truncate_only:
        try:
            wire: bytes = response.to_wire(max_size=limit)
            return wire
        except dns.exception.TooBig:
            pass
    response.answer.clear()
    response.authority.clear()
    response.additional.clear()
    response.flags |= dns.flags.TC
    truncated: bytes = response.to_wire(max_size=limit)
    return truncated


class Answers:
    """``respond_wire`` with a bounded cache of recent answers.

    The answer to a query depends only on the query's bytes after its ID, the size limit and
    the zones, so the bytes are the key: a repeated question (most of a real server's
    traffic) costs a dictionary look-up instead of a parse, a zone walk and a render.  A zone
    reload empties the cache.
    """

    SIZE = 4096

    def __init__(self, zones: Any) -> None:
        self.zones = zones
        self._cache: OrderedDict[tuple[bytes, int | None], bytes | None] = OrderedDict()
        self._generation = zones.generation

    def respond(self, data: bytes, max_size: int | None) -> bytes | None:
        if self._generation != self.zones.generation:
            self._cache.clear()
            self._generation = self.zones.generation
        key = (data[2:], max_size)
        if key in self._cache:
            self._cache.move_to_end(key)
            cached = self._cache[key]
            return None if cached is None else data[:2] + cached
        reply = respond_wire(self.zones, data, max_size)
        if len(data) >= 12 and len(data) <= 512:
            self._cache[key] = None if reply is None else reply[2:]
            if len(self._cache) > self.SIZE:
                self._cache.popitem(last=False)
        return reply


class UDPProtocol(asyncio.DatagramProtocol):
    """Answer each query datagram, within the per-client rate limit."""

    def __init__(self, answers: Answers, limiter: RateLimiter, max_size: int) -> None:
        self.answers = answers
        self.limiter = limiter
        self.max_size = max_size
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, address: Any) -> None:
        verdict = self.limiter.check(address[0])
        if verdict == "drop":
            return
        try:
            if verdict == "slip":
                reply = respond_wire(self.answers.zones, data, self.max_size,
                                     truncate_only=True)
            else:
                reply = self.answers.respond(data, self.max_size)
        except Exception:
            log.exception("cannot answer a query from %s", address[0])
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, address)


def tcp_handler(answers: Answers, idle_timeout: float) -> Any:
    """A streams handler answering length-prefixed queries until the client goes quiet."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(_MAX_TCP_QUERIES):
            try:
                head = await asyncio.wait_for(reader.readexactly(2), idle_timeout)
                data = await asyncio.wait_for(
                    reader.readexactly(int.from_bytes(head, "big")), idle_timeout)
            except (TimeoutError, asyncio.IncompleteReadError):
                return
            reply = answers.respond(data, None)
            if reply is None:
                return
            writer.write(len(reply).to_bytes(2, "big") + reply)
            try:
                await asyncio.wait_for(writer.drain(), idle_timeout)
            except TimeoutError:
                return

    return handle


def make_service(options: Any) -> Any:
    """One server per ``--listen`` endpoint, sharing the zones and the rate limiter."""
    try:
        import dns.message  # noqa: F401 - the extra is there
    except ImportError:
        raise UsageError("dropins dns needs dnspython: pip install 'dropins[dns]'") from None
    from dropins.servers.dns_zones import ZoneError, ZoneSet, parse_zone_option
    from dropins.service import DatagramServerService, StreamServerService
    from dropins.service.datagram import is_datagram_endpoint
    from dropins.service.endpoints import parse_endpoint

    try:
        zones = ZoneSet([parse_zone_option(text) for text in options["zone"]])
    except ZoneError as error:
        raise UsageError(str(error)) from None
    limiter = RateLimiter(float(options["rate_limit"]))
    answers = Answers(zones)
    service = DNSService(zones)
    max_size = int(options["max_udp_size"])
    for index, text in enumerate(options["listen"]):
        endpoint = parse_endpoint(text)
        if is_datagram_endpoint(endpoint):
            service.add_service(DatagramServerService(
                endpoint, lambda: UDPProtocol(answers, limiter, max_size), name=f"dns-{index}"))
        else:
            service.add_service(StreamServerService(
                endpoint, tcp_handler(answers, float(options["idle_timeout"])),
                name=f"dns-{index}"))
    return service


class DNSService(MultiService):
    """The servers of ``dropins dns``; SIGHUP (``hangup``) reloads the zone files."""

    def __init__(self, zones: Any) -> None:
        super().__init__("dns")
        self.zones = zones

    def hangup(self) -> None:
        self.zones.reload()
