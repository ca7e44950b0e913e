"""``dropins nntp``: options and the service; the protocol is ``nntp_server`` and the spool
``nntp_store``.  What it refuses by design is in docs/servers.md."""

from __future__ import annotations

import os
from typing import Any

from dropins.cred.auth_options import AuthOptions
from dropins.options import Flag, Parameter, UsageError, path

__all__ = ["DEFAULT_LISTEN", "Options", "make_service"]

DEFAULT_LISTEN = "tcp:1119:interface=127.0.0.1"


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024 ** 2}
    number, unit = (text[:-1], text[-1].lower()) if text[-1:].lower() in units else (text, "")
    if not number.isdigit() or int(number) <= 0:
        raise UsageError(f"invalid --max-article {text!r}: give a size such as 1M or 65536")
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
    description = "Serve newsgroups from a folder over NNTP (RFC 3977 reader commands)."
    listen = Parameter(short="l", multiple=True, metavar="ENDPOINT", default=[DEFAULT_LISTEN],
                       help=f"where to listen (repeatable; default: {DEFAULT_LISTEN})")
    groups = Parameter(required=True, type=path, metavar="DIR",
                       help="the spool: one folder per group, one file per article number")
    open_posting = Flag(help="without --auth, let anyone POST (default: reading only)")
    max_article = Parameter(type=_size, default=1024 ** 2, metavar="SIZE",
                            help="the largest article POST accepts")
    tls_cert = Parameter(type=path, metavar="FILE", help="certificate for STARTTLS")
    tls_key = Parameter(type=path, metavar="FILE", help="private key for STARTTLS")
    tls_logins_only = Flag(help="refuse AUTHINFO before STARTTLS even from loopback")
    timeout = Parameter(type=_seconds, default=300.0, metavar="SECONDS",
                        help="idle time after which a client is disconnected")

    def validate(self) -> None:
        super().validate()
        if not os.path.isdir(self["groups"]):
            raise UsageError(f"--groups {self['groups']}: no such folder (make one folder"
                             " per group in it, e.g. DIR/local.test)")
        if self["open_posting"] and self.get("auth"):
            raise UsageError("--open-posting and --auth: choose one (with --auth, logged-in"
                             " users post)")
        from dropins.servers.logins import server_tls_context

        server_tls_context(self["tls_cert"], self["tls_key"])  # a bad pair fails here


def make_service(options: Any) -> Any:
    """A MultiService with one NNTP listener per ``--listen`` endpoint, on one spool."""
    from dropins.servers.logins import Logins, server_tls_context
    from dropins.servers.nntp_server import NNTPServer
    from dropins.servers.nntp_store import Spool
    from dropins.service import MultiService, StreamServerService

    spool = Spool(options["groups"])
    spool.load()
    server = NNTPServer(
        spool, logins=Logins(options.make_portal(), "nntp") if options.get("auth") else None,
        open_posting=bool(options["open_posting"]),
        tls_context=server_tls_context(options["tls_cert"], options["tls_key"]),
        max_article=options["max_article"], timeout=options["timeout"],
        plaintext_on_loopback=not options["tls_logins_only"])
    service = MultiService("nntp")
    for index, endpoint in enumerate(options["listen"]):
        service.add_service(StreamServerService(endpoint, server, name=f"nntp-{index}"))
    return service
