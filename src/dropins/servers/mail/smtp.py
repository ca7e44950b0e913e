"""The SMTP side of ``dropins mail``, on aiosmtpd: receive mail for ``--domain`` into Maildirs.

Refused by design: mail for any other domain (no relay, authenticated or not: this server
delivers locally and never sends mail on); recipients without a Maildir; messages over the
size limit (announced in EHLO's SIZE, and checked again while DATA arrives); AUTH on a
non-loopback connection before STARTTLS (the password would cross the wire in the clear);
and, when ``--auth`` is given, a sender address in one of our domains unless the session
authenticated as that very user, so that nobody outside can forge mail "from" a local user.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from email.utils import formatdate
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from dropins.servers.logins import Logins, is_loopback
from dropins.servers.mail.maildirs import Maildirs

__all__ = ["DeliveringHandler", "SMTPServer"]

log = logging.getLogger("dropins.servers.mail")


class _Pending:
    """What ``_authenticate`` returns so that the async portal check can happen afterwards."""

    def __init__(self, credentials: LoginPassword) -> None:
        self.credentials = credentials


class DeliveringHandler:
    """aiosmtpd's handler: checks recipients and senders, delivers into the Maildirs."""

    def __init__(self, maildirs: Maildirs, domains: list[str], hostname: str,
                 guard_senders: bool) -> None:
        self.maildirs = maildirs
        self.domains = {domain.lower() for domain in domains}
        self.hostname = hostname
        self.guard_senders = guard_senders

    def _local(self, address: str) -> str | None:
        """The local part when ``address`` is in one of our domains, else None."""
        local, at, domain = address.rpartition("@")
        if not at or domain.lower().rstrip(".") not in self.domains:
            return None
        return local

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        local = self._local(address)
        if self.guard_senders and local is not None and session.auth_data is None:
            return f"530 5.7.0 Authentication required to send as {address}"
        if (self.guard_senders and local is not None
                and getattr(session.auth_data, "login", b"").decode().lower() != local.lower()):
            return f"550 5.7.1 Not authorized to send as {address}"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        local = self._local(address)
        if local is None:
            return "550 5.7.1 Relaying denied: this server only receives mail for " + \
                ", ".join(sorted(self.domains))
        folder = await asyncio.to_thread(self.maildirs.folder, local.lower())
        if folder is None:
            return f"550 5.1.1 No such user: {address}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        peer = session.peer[0] if isinstance(session.peer, tuple) else "local"
        received = (f"Return-Path: <{envelope.mail_from or ''}>\r\n"
                    f"Received: from {session.host_name or 'unknown'} ([{peer}])\r\n"
                    f"\tby {self.hostname} (dropins mail); {formatdate()}\r\n").encode()
        for address in envelope.rcpt_tos:
            local = self._local(address) or ""
            try:
                await asyncio.to_thread(self.maildirs.deliver, local.lower(), received + content)
            except (OSError, LookupError) as error:
                log.error("mail: cannot deliver to %s: %s", address, error)
                return "451 4.3.0 Cannot store the message now; try again later"
            log.info("mail: delivered %d bytes from <%s> to %s", len(content),
                     envelope.mail_from, address)
        return "250 2.0.0 Message accepted for delivery"


class SMTPServer(SMTP):
    """aiosmtpd's SMTP with logins through the cred portal, and plaintext AUTH on loopback.

    aiosmtpd's authenticator is synchronous and the portal is not: ``_authenticate`` hands
    back the credentials, and ``auth_PLAIN``/``auth_LOGIN`` then await the portal.
    """

    def __init__(self, handler: DeliveringHandler, *, logins: Logins | None,
                 tls_context: ssl.SSLContext | None, plaintext_on_loopback: bool = True,
                 **settings: Any) -> None:
        self.logins = logins
        self.plaintext_on_loopback = plaintext_on_loopback
        excluded = [] if logins is not None else ["PLAIN", "LOGIN"]
        super().__init__(handler, tls_context=tls_context, auth_exclude_mechanism=excluded,
                         authenticator=lambda *args: AuthResult(success=False),
                         hostname=handler.hostname, ident="dropins mail", **settings)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.plaintext_on_loopback and is_loopback(
                transport.get_extra_info("peername")):
            self._auth_require_tls = False
        super().connection_made(transport)

    def _authenticate(self, mechanism: str, auth_data: Any) -> AuthResult:
        return AuthResult(success=False, handled=False, auth_data=_Pending(auth_data))

    async def _check(self, result: AuthResult) -> AuthResult:
        pending = result.auth_data
        if not isinstance(pending, _Pending) or self.logins is None:
            return result
        credentials = pending.credentials
        peer = self.session.peer if self.session is not None else None
        address = peer[0] if isinstance(peer, tuple) else "local"
        try:
            user = credentials.login.decode()
            password = credentials.password.decode()
        except UnicodeDecodeError:
            return AuthResult(success=False, handled=False)
        avatar = await self.logins.check(address, user, password)
        if avatar is None:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=LoginPassword(avatar.encode(), b""))

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._check(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._check(await super().auth_LOGIN(_, args))
