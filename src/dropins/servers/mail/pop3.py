"""The POP3 side of ``dropins mail``: RFC 1939 with CAPA (RFC 2449) and STLS (RFC 2595).

Commands: USER, PASS, STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, QUIT, CAPA, STLS.
Messages marked with DELE are removed only at QUIT (the UPDATE state); a dropped connection
removes nothing.  A mailbox is locked while a session has it (``-ERR [IN-USE]``).

Refused by design: APOP (it needs the password stored in the clear); USER/PASS before STLS
on a non-loopback connection, or anywhere with ``--tls-logins-only`` (``-ERR [AUTH]``: the
password would cross the wire in the clear); command lines over 255 octets (RFC 2449's
limit).  A client idle longer than the timeout, or sending more than ``MAX_ERRORS`` bad
commands, is disconnected.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from dropins.servers.logins import Logins, is_loopback
from dropins.servers.mail.maildirs import Maildirs, Message

__all__ = ["POP3Server"]

log = logging.getLogger("dropins.servers.mail")

MAX_LINE = 255
MAX_ERRORS = 10


def _wire_lines(data: bytes) -> list[bytes]:
    """A message's lines with CRLF endings, dot-stuffed (RFC 1939 section 3)."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [(b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines]


def _top(lines: list[bytes], count: int) -> list[bytes]:
    """The header, the blank line and the first ``count`` body lines."""
    for index, line in enumerate(lines):
        if line == b"\r\n":
            return lines[:index + 1 + count]
    return lines


@dataclass
class _Session:
    peer: object
    tls: bool = False
    user: str | None = None
    mailbox: str | None = None
    messages: list[Message] = field(default_factory=list)
    deleted: set[int] = field(default_factory=set)
    errors: int = 0


class POP3Server:
    """The connection handler; one instance serves every connection of a ``--pop3`` endpoint."""

    def __init__(self, maildirs: Maildirs, logins: Logins | None,
                 tls_context: ssl.SSLContext | None, timeout: float, hostname: str,
                 plaintext_on_loopback: bool = True) -> None:
        self.plaintext_on_loopback = plaintext_on_loopback
        self.maildirs = maildirs
        self.logins = logins
        self.tls_context = tls_context
        self.timeout = timeout
        self.hostname = hostname
        self.locked: set[str] = set()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(writer.get_extra_info("peername"))
        try:
            await self._serve(reader, writer, session)
        finally:
            if session.mailbox is not None:
                self.locked.discard(session.mailbox)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     session: _Session) -> None:
        writer.write(f"+OK {self.hostname} dropins POP3 server ready\r\n".encode())
        while True:
            try:  # a client that stops reading our replies is let go, not waited for
                await asyncio.wait_for(writer.drain(), self.timeout)
            except TimeoutError:
                writer.transport.abort()
                return
            try:
                line = await asyncio.wait_for(reader.readline(), self.timeout)
            except TimeoutError:
                writer.write(b"-ERR idle too long; closing\r\n")
                await writer.drain()
                return
            except ValueError:  # longer than the stream's limit
                writer.write(b"-ERR line too long\r\n")
                return
            if not line:
                return
            if len(line) > MAX_LINE + 2 or not line.endswith(b"\n"):
                reply: bytes | list[bytes] = b"-ERR command line too long\r\n"
            else:
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                verb, _, rest = text.partition(" ")
                verb = verb.upper()
                if verb == "QUIT":
                    await self._quit(writer, session)
                    return
                if verb == "STLS" and self._can_stls(session):
                    # the client's TLS hello must not land in the reader as text
                    cast(asyncio.Transport, writer.transport).pause_reading()
                    writer.write(b"+OK begin TLS negotiation\r\n")
                    await writer.drain()
                    assert self.tls_context is not None
                    await writer.start_tls(self.tls_context)
                    session.tls = True
                    continue
                reply = await self._command(verb, rest.split(), session)
            if isinstance(reply, list):
                writer.writelines(reply)
            else:
                writer.write(reply)
            if isinstance(reply, bytes) and reply.startswith(b"-ERR"):
                session.errors += 1
                if session.errors > MAX_ERRORS:
                    writer.write(b"-ERR too many errors; closing\r\n")
                    await writer.drain()
                    return

    def _can_stls(self, session: _Session) -> bool:
        return self.tls_context is not None and not session.tls and session.user is None \
            and session.mailbox is None

    def _plaintext_ok(self, session: _Session) -> bool:
        return session.tls or (self.plaintext_on_loopback and is_loopback(session.peer))

    def _capabilities(self, session: _Session) -> list[bytes]:
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
                "EXPIRE NEVER", "IMPLEMENTATION dropins"]
        if session.mailbox is None and self._plaintext_ok(session) and self.logins:
            caps.insert(0, "USER")
        if self._can_stls(session):
            caps.append("STLS")
        return [b"+OK capability list follows\r\n",
                *(cap.encode() + b"\r\n" for cap in caps), b".\r\n"]

    async def _command(self, verb: str, args: list[str],
                       session: _Session) -> bytes | list[bytes]:
        if verb == "CAPA":
            return self._capabilities(session)
        if verb == "NOOP" and session.mailbox is not None:
            return b"+OK\r\n"
        if session.mailbox is None:
            return await self._authorization(verb, args, session)
        return await asyncio.to_thread(self._transaction, verb, args, session)

    async def _authorization(self, verb: str, args: list[str], session: _Session) -> bytes:
        if verb == "STLS":
            return b"-ERR STLS not available now\r\n"
        if verb not in ("USER", "PASS"):
            return b"-ERR unknown command, or not allowed before login\r\n"
        if not self._plaintext_ok(session):
            hint = "use STLS first" if self.tls_context else "not offered without TLS"
            return f"-ERR [AUTH] plaintext login refused off loopback: {hint}\r\n".encode()
        if verb == "USER":
            if len(args) != 1:
                return b"-ERR usage: USER name\r\n"
            session.user = args[0]
            return b"+OK send PASS\r\n"
        if session.user is None:
            return b"-ERR send USER first\r\n"
        user, session.user = session.user, None
        password = " ".join(args)
        address = session.peer[0] if isinstance(session.peer, tuple) else "local"
        avatar = await self.logins.check(address, user, password) if self.logins else None
        if avatar is None:
            return b"-ERR [AUTH] invalid user name or password\r\n"
        mailbox = avatar.lower()
        if mailbox in self.locked:
            return b"-ERR [IN-USE] mailbox already locked by another session\r\n"
        self.locked.add(mailbox)
        session.mailbox = mailbox
        session.user = avatar
        try:
            session.messages = await asyncio.to_thread(self.maildirs.messages, mailbox)
        except OSError as error:
            self.locked.discard(mailbox)
            session.mailbox = None
            log.error("pop3: cannot read the mailbox of %s: %s", mailbox, error)
            return b"-ERR [SYS/TEMP] cannot open the mailbox now\r\n"
        log.info("pop3: %s logged in from %s", avatar, address)
        return f"+OK {avatar} has {len(session.messages)} message(s)\r\n".encode()

    def _number(self, text: str, session: _Session) -> int | None:
        """The 0-based index of message ``text`` when it exists and is not deleted."""
        if not text.isdigit():
            return None
        index = int(text) - 1
        if not 0 <= index < len(session.messages) or index in session.deleted:
            return None
        return index

    def _live(self, session: _Session) -> list[tuple[int, Message]]:
        return [(index + 1, message) for index, message in enumerate(session.messages)
                if index not in session.deleted]

    def _transaction(self, verb: str, args: list[str], session: _Session) -> bytes | list[bytes]:
        """The TRANSACTION state's commands (run in a thread: they read files)."""
        live = self._live(session)
        if verb == "STAT" and not args:
            return f"+OK {len(live)} {sum(m.size for _, m in live)}\r\n".encode()
        if verb in ("LIST", "UIDL") and len(args) <= 1:
            def item(number: int, message: Message) -> str:
                return f"{number} {message.size if verb == 'LIST' else message.uid}"
            if args:
                index = self._number(args[0], session)
                if index is None:
                    return b"-ERR no such message\r\n"
                return f"+OK {item(index + 1, session.messages[index])}\r\n".encode()
            return [f"+OK {len(live)} messages\r\n".encode(),
                    *(f"{item(n, m)}\r\n".encode() for n, m in live), b".\r\n"]
        if verb in ("RETR", "TOP", "DELE") and args:
            index = self._number(args[0], session)
            if index is None:
                return b"-ERR no such message\r\n"
            message = session.messages[index]
            if verb == "DELE" and len(args) == 1:
                session.deleted.add(index)
                return f"+OK message {index + 1} deleted\r\n".encode()
            if verb == "RETR" and len(args) == 1:
                lines = self._read(message.path)
                if lines is None:
                    return b"-ERR [SYS/TEMP] message gone\r\n"
                return [f"+OK {message.size} octets\r\n".encode(), *lines, b".\r\n"]
            if verb == "TOP" and len(args) == 2 and args[1].isdigit():
                lines = self._read(message.path)
                if lines is None:
                    return b"-ERR [SYS/TEMP] message gone\r\n"
                return [b"+OK top of message follows\r\n", *_top(lines, int(args[1])), b".\r\n"]
        if verb == "RSET" and not args:
            session.deleted.clear()
            return f"+OK {len(session.messages)} message(s)\r\n".encode()
        if verb in ("USER", "PASS", "STLS"):
            return b"-ERR already logged in\r\n"
        return b"-ERR unknown command or bad arguments\r\n"

    @staticmethod
    def _read(path: Path) -> list[bytes] | None:
        try:
            return _wire_lines(path.read_bytes())
        except FileNotFoundError:
            return None

    async def _quit(self, writer: asyncio.StreamWriter, session: _Session) -> None:
        """QUIT: in TRANSACTION, remove the messages marked deleted (the UPDATE state)."""
        failed = 0
        for index in sorted(session.deleted):
            try:
                await asyncio.to_thread(session.messages[index].path.unlink)
            except FileNotFoundError:
                pass
            except OSError as error:
                failed += 1
                log.error("pop3: cannot delete %s: %s", session.messages[index].path, error)
        if failed:
            writer.write(b"-ERR [SYS/TEMP] some deleted messages not removed\r\n")
        else:
            writer.write(f"+OK {self.hostname} dropins POP3 server signing off\r\n".encode())
        await writer.drain()
