"""``dropins mail``: options and the service (an SMTP and/or a POP3 listener on Maildirs)."""

from __future__ import annotations

import re
import socket
from typing import Any

from dropins.cred.auth_options import AuthOptions
from dropins.options import Flag, Parameter, UsageError, path

__all__ = ["Options", "make_service"]

_DOMAIN = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+")


def _domain(text: str) -> str:
    if not _DOMAIN.fullmatch(text):
        raise UsageError(f"invalid --domain {text!r}: give a mail domain such as example.org")
    return text.lower().rstrip(".")


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
    number, unit = (text[:-1], text[-1].lower()) if text[-1:].lower() in units else (text, "")
    if not number.isdigit() or int(number) <= 0:
        raise UsageError(f"invalid --max-size {text!r}: give a size such as 10M or 524288")
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
    description = ("Receive mail for --domain over SMTP into per-user Maildirs, and serve "
                   "them over POP3.")
    smtp = Parameter(multiple=True, metavar="ENDPOINT",
                     help="where SMTP listens (repeatable), e.g. tcp:2525:interface=127.0.0.1")
    pop3 = Parameter(multiple=True, metavar="ENDPOINT",
                     help="where POP3 listens (repeatable), e.g. tcp:1110:interface=127.0.0.1")
    domain = Parameter(multiple=True, type=_domain, metavar="DOMAIN",
                       help="a domain to receive mail for (repeatable; required with --smtp)")
    maildir = Parameter(required=True, type=path, metavar="DIR",
                        help="the folder of per-user Maildirs (DIR/USER/{tmp,new,cur})")
    create_maildirs = Flag(help="make a Maildir for any valid local part on first mail"
                                " (without it, mail for users with no Maildir is refused)")
    max_size = Parameter(type=_size, default=10 * 1024 ** 2, metavar="SIZE",
                         help="the largest message accepted")
    hostname = Parameter(metavar="NAME", help="the name in greetings (default: this host's)")
    tls_cert = Parameter(type=path, metavar="FILE", help="certificate for STARTTLS and STLS")
    tls_key = Parameter(type=path, metavar="FILE", help="private key for STARTTLS and STLS")
    tls_logins_only = Flag(help="refuse AUTH/USER before STARTTLS/STLS even from loopback"
                                " (for a server behind a proxy on this machine)")
    timeout = Parameter(type=_seconds, default=300.0, metavar="SECONDS",
                        help="idle time after which a client is disconnected")

    def validate(self) -> None:
        super().validate()
        if not self["smtp"] and not self["pop3"]:
            raise UsageError("give --smtp ENDPOINT and/or --pop3 ENDPOINT")
        if self["smtp"] and not self["domain"]:
            raise UsageError("--smtp needs --domain DOMAIN: the domain(s) to receive mail for")
        if self["pop3"] and not self.get("auth"):
            raise UsageError("--pop3 needs --auth TYPE:ARGS to check logins (see --help-auth)")
        from dropins.servers.logins import server_tls_context

        server_tls_context(self["tls_cert"], self["tls_key"])  # a bad pair fails here


def make_service(options: Any) -> Any:
    """A MultiService with one listener per ``--smtp`` and ``--pop3`` endpoint."""
    from dropins.servers.logins import Logins, server_tls_context
    from dropins.servers.mail.maildirs import Maildirs
    from dropins.servers.mail.pop3 import POP3Server
    from dropins.servers.mail.smtp import DeliveringHandler, SMTPServer
    from dropins.service import MultiService, StreamServerService

    hostname = options["hostname"] or socket.getfqdn()
    maildirs = Maildirs(options["maildir"], create=bool(options["create_maildirs"]))
    logins = Logins(options.make_portal(), "mail") if options.get("auth") else None
    tls = server_tls_context(options["tls_cert"], options["tls_key"])
    tls_only = bool(options["tls_logins_only"])
    service = MultiService("mail")
    handler = DeliveringHandler(maildirs, list(options["domain"]), hostname,
                                guard_senders=logins is not None)

    def smtp_protocol() -> SMTPServer:
        return SMTPServer(handler, logins=logins, tls_context=tls,
                          data_size_limit=options["max_size"], timeout=options["timeout"],
                          command_call_limit=100, plaintext_on_loopback=not tls_only)

    for index, endpoint in enumerate(options["smtp"]):
        service.add_service(StreamServerService(endpoint, smtp_protocol, name=f"smtp-{index}"))
    pop3 = POP3Server(maildirs, logins, tls, options["timeout"], hostname,
                      plaintext_on_loopback=not tls_only)
    for index, endpoint in enumerate(options["pop3"]):
        service.add_service(StreamServerService(endpoint, pop3, name=f"pop3-{index}"))
    return service
