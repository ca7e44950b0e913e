"""``dropins ftp``: options and the service; the server itself is ``ftp_server`` (on aioftp),
imported only when the command runs.  What it refuses by design is in docs/servers.md."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dropins.cred.auth_options import AuthOptions
from dropins.options import Flag, Parameter, UsageError, path

__all__ = ["DEFAULT_LISTEN", "Options", "make_service"]

DEFAULT_LISTEN = "tcp:2121:interface=127.0.0.1"

#: bytes per read and write on data connections: aioftp's default (8 KiB) spends more time
#: in per-block timeouts than in copying (see bench/protocols.py)
BLOCK_SIZE = 128 * 1024


def _ports(text: str) -> range:
    low, dash, high = text.partition("-")
    if not (low.isdigit() and (not dash or high.isdigit())):
        raise UsageError(f"invalid --passive-ports {text!r}: give LOW-HIGH, e.g. 30000-30099")
    first, last = int(low), int(high) if dash else int(low)
    if not 1024 <= first <= last <= 65535:
        raise UsageError(f"invalid --passive-ports {text!r}: give LOW-HIGH within 1024-65535")
    return range(first, last + 1)


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
    number, unit = (text[:-1], text[-1].lower()) if text[-1:].lower() in units else (text, "")
    if not number.isdigit() or int(number) <= 0:
        raise UsageError(f"invalid --max-upload {text!r}: give a size such as 100M or 65536")
    return int(number) * units.get(unit, 1)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise UsageError(f"invalid --timeout {text!r}: give a positive number of seconds")
    return value


class Options(AuthOptions):
    description = "Serve a folder over FTP (explicit FTPS, logins through --auth)."
    listen = Parameter(short="l", multiple=True, metavar="ENDPOINT", default=[DEFAULT_LISTEN],
                       help=f"where to listen (repeatable; default: {DEFAULT_LISTEN})")
    root = Parameter(type=path, default=".", metavar="DIR",
                     help="the folder to serve")
    anonymous = Flag(help="let 'anonymous' and 'ftp' in without a password, read-only")
    passive_ports = Parameter(type=_ports, metavar="LOW-HIGH",
                              help="ports for passive data connections (default: any free)")
    max_upload = Parameter(type=_size, metavar="SIZE",
                           help="the largest file a client may upload (default: no limit)")
    tls_cert = Parameter(type=path, metavar="FILE", help="certificate for AUTH TLS (FTPS)")
    tls_key = Parameter(type=path, metavar="FILE", help="private key for AUTH TLS (FTPS)")
    tls_logins_only = Flag(help="refuse passwords before AUTH TLS even from loopback")
    timeout = Parameter(type=_seconds, default=300.0, metavar="SECONDS",
                        help="idle time after which a client is disconnected")

    def validate(self) -> None:
        super().validate()
        if not os.path.isdir(self["root"]):
            raise UsageError(f"--root {self['root']}: no such folder")
        if not self.get("auth") and not self["anonymous"]:
            raise UsageError("give --auth TYPE:ARGS for logins and/or --anonymous for"
                             " read-only access (see --help-auth)")
        from dropins.servers.logins import server_tls_context

        server_tls_context(self["tls_cert"], self["tls_key"])  # a bad pair fails here


def make_service(options: Any) -> Any:
    """A MultiService with one FTP listener per ``--listen`` endpoint, sharing one server."""
    from dropins.servers.ftp_server import ConfinedPathIO, FTPServer
    from dropins.servers.logins import Logins, server_tls_context
    from dropins.service import MultiService, StreamServerService

    server = FTPServer(
        Path(options["root"]), logins=Logins(options.make_portal(), "ftp")
        if options.get("auth") else None, anonymous=bool(options["anonymous"]),
        tls_context=server_tls_context(options["tls_cert"], options["tls_key"]),
        max_upload=options["max_upload"], plaintext_on_loopback=not options["tls_logins_only"],
        idle_timeout=options["timeout"], socket_timeout=60, path_timeout=30,
        wait_future_timeout=10, data_ports=options["passive_ports"], block_size=BLOCK_SIZE,
        path_io_factory=ConfinedPathIO)
    service = MultiService("ftp")
    for index, endpoint in enumerate(options["listen"]):
        service.add_service(StreamServerService(endpoint, server.dispatcher, name=f"ftp-{index}"))
    return service
