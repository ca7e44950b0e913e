"""``dropins socks``: a SOCKS proxy, versions 4, 4a (RFC-less, the NEC drafts) and 5 (RFC 1928),
CONNECT only, with RFC 1929 user/password logins through ``--auth``.

Every destination goes through ``dropins.servers.socks_rules`` before anything connects: a
name the client sends (4a, 5) is resolved here, each address is checked, and the connection
goes to the very address that passed, so a name that resolves differently the second time
(DNS rebinding) cannot slip past the rules.  With ``--auth`` only SOCKS5 with a password is
served: SOCKS4's user id is a claim, not a login.

A client gets ``--handshake-timeout`` to say where it wants to go; a relayed connection that
carries no byte either way for ``--idle-timeout`` is closed; at most ``--max-connections``
are open at once (more wait in the listen backlog).  BIND and UDP ASSOCIATE are refused by
design: they open ports on the proxy for the outside to reach.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from typing import Any

from dropins.cred.auth_options import AuthOptions
from dropins.options import Parameter, UsageError
from dropins.servers.socks_rules import IPAddress, Rules, parse_rule

__all__ = ["DEFAULT_LISTEN", "Options", "make_service"]

log = logging.getLogger("dropins.servers.socks")

DEFAULT_LISTEN = "tcp:1080:interface=127.0.0.1"
_CHUNK = 64 * 1024


class Refused(Exception):
    """The request cannot be served; ``code`` is the SOCKS5 reply code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def _positive(name: str) -> Any:
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = 0.0
        if not value > 0:
            raise UsageError(f"invalid --{name} {text!r}: give a positive number of seconds")
        return value
    return convert


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"invalid --max-connections {text!r}: give a whole number, 1 or more")
    return int(text)


class Options(AuthOptions):
    description = "A SOCKS4/4a/5 proxy (CONNECT), with destination rules and --auth logins."
    listen = Parameter(short="l", multiple=True, metavar="ENDPOINT", default=[DEFAULT_LISTEN],
                       help=f"Where to listen (repeatable; default: {DEFAULT_LISTEN}).")
    allow = Parameter(multiple=True, metavar="RULE", default=[],
                      type=lambda text: parse_rule(text, "--allow"),
                      help="Permit destinations: 10.0.0.0/8, host, *.domain, with :PORT or "
                           ":LOW-HIGH (repeatable). Only global addresses are permitted "
                           "otherwise.")
    deny = Parameter(multiple=True, metavar="RULE", default=[],
                     type=lambda text: parse_rule(text, "--deny"),
                     help="Refuse destinations, before any --allow (repeatable).")
    handshake_timeout = Parameter(type=_positive("handshake-timeout"), default=10.0,
                                  metavar="SECONDS", help="Time to send the request (10).")
    connect_timeout = Parameter(type=_positive("connect-timeout"), default=10.0,
                                metavar="SECONDS", help="Time to reach the destination (10).")
    idle_timeout = Parameter(type=_positive("idle-timeout"), default=300.0, metavar="SECONDS",
                             help="Close a relay idle both ways this long (300).")
    max_connections = Parameter(type=_count, default=256, metavar="N",
                                help="Client connections open at once (256).")


class PasswordCheck:
    """User/password logins through the ``--auth`` portal, with the failure throttle every
    dropins password check uses (``dropins.cred.throttle``)."""

    def __init__(self, portal: Any) -> None:
        from dropins.cred.throttle import FailureThrottle

        self.portal = portal
        self.throttle = FailureThrottle()

    async def check(self, address: str, user: str, password: str) -> str | None:
        """``None`` for a right password, else why the login is refused."""
        from dropins.cred import LoginThrottled, UnauthorizedLogin, UsernamePassword

        if self.throttle.attempt(address, user):
            return "too many failed logins"
        try:
            _, _, logout = await self.portal.login(UsernamePassword(user, password), None)
        except LoginThrottled:
            self.throttle.give_back(address, user)
            return "too many logins at once"
        except UnauthorizedLogin:
            return "wrong user name or password"
        self.throttle.give_back(address, user)
        logout()
        return None


class SocksServer:
    """The per-connection logic, shared by every listener of one command."""

    def __init__(self, rules: Rules, *, login: Any = None, handshake_timeout: float = 10.0,
                 connect_timeout: float = 10.0, idle_timeout: float = 300.0) -> None:
        self.rules = rules
        self.login = login  # None: no authentication, else a PasswordCheck
        self.handshake_timeout = handshake_timeout
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = (writer.get_extra_info("peername") or ("?",))[0]
        try:
            version, host, port = await asyncio.wait_for(self._greet(reader, writer, peer),
                                                         self.handshake_timeout)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return
        except Refused as refusal:  # already answered
            log.info("socks: refused %s: %s", peer, refusal)
            return
        try:
            upstream_reader, upstream_writer = await self._connect(host, port)
        except Refused as refusal:
            log.info("socks: refused %s -> %s:%d: %s", peer, host, port, refusal)
            writer.write(_reply(version, refusal.code))
            await writer.drain()
            return
        bound = upstream_writer.get_extra_info("sockname")
        writer.write(_reply(version, 0, bound))
        await writer.drain()
        try:
            await self._relay(reader, writer, upstream_reader, upstream_writer)
        finally:
            upstream_writer.close()

    async def _greet(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     peer: str) -> tuple[int, str, int]:
        version = (await reader.readexactly(1))[0]
        if version == 4:
            return (4, *await self._socks4(reader, writer))
        if version == 5:
            return (5, *await self._socks5(reader, writer, peer))
        writer.close()
        raise Refused(1, f"not a SOCKS request (first byte {version})")

    async def _socks4(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> tuple[str, int]:
        head = await reader.readexactly(7)
        command, port, address = head[0], int.from_bytes(head[1:3], "big"), head[3:7]
        await _read_nul_terminated(reader)  # the user id: a claim, not a login
        host = str(ipaddress.IPv4Address(address))
        if address[:3] == b"\0\0\0" and address[3]:  # 4a: the name follows
            host = (await _read_nul_terminated(reader)).decode("ascii", "replace")
        if self.login is not None or command != 1:
            writer.write(_reply(4, 1))
            await writer.drain()
            raise Refused(1, "SOCKS4 with --auth" if self.login else f"command {command}")
        return host, port

    async def _socks5(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      peer: str) -> tuple[str, int]:
        count = (await reader.readexactly(1))[0]
        methods = await reader.readexactly(count)
        wanted = 0x02 if self.login is not None else 0x00
        if wanted not in methods:
            writer.write(b"\x05\xff")
            await writer.drain()
            raise Refused(1, "no acceptable authentication method")
        writer.write(bytes([5, wanted]))
        if wanted == 0x02:
            await self._password(reader, writer, peer)
        version, command, _, kind = await reader.readexactly(4)
        if kind == 1:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif kind == 4:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        elif kind == 3:
            size = (await reader.readexactly(1))[0]
            host = (await reader.readexactly(size)).decode("ascii", "replace")
        else:
            writer.write(_reply(5, 8))
            await writer.drain()
            raise Refused(8, f"address type {kind}")
        port = int.from_bytes(await reader.readexactly(2), "big")
        if version != 5 or command != 1:
            writer.write(_reply(5, 7))
            await writer.drain()
            raise Refused(7, f"command {command} (only CONNECT is served)")
        return host, port

    async def _password(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        peer: str) -> None:
        await reader.readexactly(1)  # subnegotiation version 1
        user = (await reader.readexactly((await reader.readexactly(1))[0])).decode("utf-8",
                                                                                  "replace")
        password = (await reader.readexactly((await reader.readexactly(1))[0])).decode(
            "utf-8", "replace")
        refused = await self.login.check(peer, user, password)
        if refused:
            writer.write(b"\x01\x01")
            await writer.drain()
            raise Refused(1, f"login of {user!r}: {refused}")
        writer.write(b"\x01\x00")

    async def _connect(self, host: str, port: int) -> tuple[Any, Any]:
        """Resolve, check every address against the rules, connect to one that passed."""
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        name = None if literal is not None else host
        if port == 0:
            raise Refused(2, "port 0")
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM), self.connect_timeout)
        except (OSError, TimeoutError, UnicodeError):
            raise Refused(4, "cannot resolve the name") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0])
                                       for info in infos))
        allowed = [address for address in addresses if self.rules.permits(name, address, port)]
        if not allowed:
            raise Refused(2, "destination not allowed (see --allow)")
        error: str = "no address"
        for address in allowed:
            try:
                return await asyncio.wait_for(asyncio.open_connection(str(address), port),
                                              self.connect_timeout)
            except TimeoutError:
                error = "timed out"
            except OSError as failure:
                error = failure.strerror or str(failure)
        raise Refused(5 if "refused" in error.lower() else 4, error)

    async def _relay(self, reader: Any, writer: Any, up_reader: Any, up_writer: Any) -> None:
        """Copy both ways until either side ends or nothing moves for the idle timeout."""
        last = [time.monotonic()]

        async def pump(source: Any, sink: Any) -> None:
            while True:
                try:
                    data = await asyncio.wait_for(source.read(_CHUNK), self.idle_timeout)
                except TimeoutError:
                    if time.monotonic() - last[0] >= self.idle_timeout:
                        return
                    continue
                if not data:
                    if sink.can_write_eof():
                        sink.write_eof()
                    return
                last[0] = time.monotonic()
                sink.write(data)
                await sink.drain()

        to_upstream = asyncio.ensure_future(pump(reader, up_writer))
        to_client = asyncio.ensure_future(pump(up_reader, writer))
        try:
            done, _ = await asyncio.wait([to_upstream, to_client],
                                         return_when=asyncio.FIRST_COMPLETED)
            if to_client not in done and to_upstream.exception() is None:
                # the client half-closed after its request: the answer may still come
                await asyncio.wait([to_client])
        finally:
            for task in (to_upstream, to_client):
                task.cancel()
            await asyncio.gather(to_upstream, to_client, return_exceptions=True)


async def _read_nul_terminated(reader: asyncio.StreamReader) -> bytes:
    data = await reader.readuntil(b"\0")
    if len(data) > 256:
        raise asyncio.IncompleteReadError(data, None)
    return data[:-1]


def _reply(version: int, code: int, bound: Any = None) -> bytes:
    """The reply to a request: ``code`` is SOCKS5's (0 is success)."""
    host, port = (bound[0], bound[1]) if bound else ("0.0.0.0", 0)
    address = ipaddress.ip_address(host)
    if version == 4:
        packed = address.packed if address.version == 4 else bytes(4)
        return bytes([0, 90 if code == 0 else 91]) + port.to_bytes(2, "big") + packed
    kind = 1 if address.version == 4 else 4
    return bytes([5, code, 0, kind]) + address.packed + port.to_bytes(2, "big")


def make_service(options: Any) -> Any:
    """A proxy on every ``--listen`` endpoint, sharing the rules and the connection cap."""
    from dropins.service import MultiService, StreamServerService
    from dropins.service.accepting import ConnectionGate

    login = None
    if options["auth"]:
        login = PasswordCheck(options.make_portal())
    server = SocksServer(Rules(list(options["allow"]), list(options["deny"])), login=login,
                         handshake_timeout=float(options["handshake_timeout"]),
                         connect_timeout=float(options["connect_timeout"]),
                         idle_timeout=float(options["idle_timeout"]))
    gate = ConnectionGate(int(options["max_connections"]))
    service = MultiService("socks")
    for index, endpoint in enumerate(options["listen"]):
        service.add_service(StreamServerService(endpoint, server.handle, gate=gate,
                                                name=f"socks-{index}"))
    return service
