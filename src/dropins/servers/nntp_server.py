"""The protocol of ``dropins nntp``: the reader subset of RFC 3977, with AUTHINFO USER/PASS
(RFC 4643) through ``--auth`` and STARTTLS (RFC 4642).

Commands: CAPABILITIES, MODE READER, LIST [ACTIVE|NEWSGROUPS|OVERVIEW.FMT] [wildmat], GROUP,
LISTGROUP, ARTICLE, HEAD, BODY, STAT, NEXT, LAST, OVER/XOVER, POST, AUTHINFO, STARTTLS, DATE,
HELP, QUIT.

Refused by design: POST without a login when ``--auth`` is given (``480``), or at all without
``--auth`` unless ``--open-posting``; a post whose Message-ID is already in the spool
(``441 duplicate``), that names no existing group, lacks From/Subject/Newsgroups, or is over
``--max-article``; AUTHINFO before STARTTLS off loopback (``483``); the transit and peering
commands (IHAVE, NEWNEWS, XPAT): this is a reader server, not a feed.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import cast

from dropins.servers.logins import Logins, is_loopback
from dropins.servers.nntp_store import OVERVIEW, Spool, read_headers

__all__ = ["NNTPServer"]

log = logging.getLogger("dropins.servers.nntp")

MAX_LINE = 512
MAX_ERRORS = 20

Reply = list[bytes]


@dataclass
class _Session:
    peer: object
    tls: bool = False
    user: str | None = None
    pending_user: str | None = None
    group: str | None = None
    current: int | None = None
    errors: int = 0


def _line(text: str) -> bytes:
    return text.encode("utf-8", "replace") + b"\r\n"


def _block(status: str, lines: list[bytes]) -> Reply:
    """A multi-line reply: status, dot-stuffed lines, the terminating dot."""
    body = [b"." + line if line.startswith(b".") else line for line in lines]
    return [_line(status), *(line + b"\r\n" for line in body), b".\r\n"]


class NNTPServer:
    """The connection handler; one instance serves every ``--listen`` endpoint."""

    def __init__(self, spool: Spool, *, logins: Logins | None, open_posting: bool,
                 tls_context: ssl.SSLContext | None, max_article: int, timeout: float,
                 plaintext_on_loopback: bool = True) -> None:
        self.spool = spool
        self.logins = logins
        self.open_posting = open_posting
        self.tls_context = tls_context
        self.max_article = max_article
        self.timeout = timeout
        self.plaintext_on_loopback = plaintext_on_loopback
        self.hostname = socket.getfqdn()
        self._posting = asyncio.Lock()

    def _may_post(self, session: _Session) -> bool:
        return session.user is not None if self.logins is not None else self.open_posting

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(writer.get_extra_info("peername"))
        can_post = self.open_posting or self.logins is not None
        writer.write(_line(f"{200 if can_post else 201} {self.hostname} dropins NNTP ready"))
        while True:
            try:  # a client that stops reading our replies is let go, not waited for
                await asyncio.wait_for(writer.drain(), self.timeout)
            except TimeoutError:
                writer.transport.abort()
                return
            line = await self._readline(reader, writer)
            if line is None:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, rest = text.partition(" ")
            verb, args = verb.upper(), rest.split()
            if verb == "QUIT":
                writer.write(b"205 closing connection\r\n")
                await writer.drain()
                return
            if verb == "STARTTLS" and self._can_starttls(session):
                cast(asyncio.Transport, writer.transport).pause_reading()  # hello isn't text
                writer.write(b"382 continue with TLS negotiation\r\n")
                await writer.drain()
                assert self.tls_context is not None
                await writer.start_tls(self.tls_context)
                session.tls = True
                continue
            if verb == "POST":
                reply = await self._post(reader, writer, session)
            elif len(line) > MAX_LINE:
                reply = [b"501 command line too long\r\n"]
            else:
                reply = await self._command(verb, args, session)
            writer.writelines(reply)
            if reply[0][:1] in (b"4", b"5"):
                session.errors += 1
                if session.errors > MAX_ERRORS:
                    writer.write(b"400 too many errors; closing\r\n")
                    await writer.drain()
                    return

    async def _readline(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> bytes | None:
        try:
            line = await asyncio.wait_for(reader.readline(), self.timeout)
        except TimeoutError:
            writer.write(b"400 idle too long; closing\r\n")
            await writer.drain()
            return None
        except ValueError:
            writer.write(b"400 line too long; closing\r\n")
            return None
        return line or None

    def _can_starttls(self, session: _Session) -> bool:
        return self.tls_context is not None and not session.tls and session.user is None

    def _capabilities(self, session: _Session) -> Reply:
        caps = ["VERSION 2", "READER", "OVER", "LIST ACTIVE NEWSGROUPS OVERVIEW.FMT",
                "IMPLEMENTATION dropins"]
        if self._may_post(session) or (self.logins is not None and session.user is None):
            caps.append("POST")
        if self.logins is not None and session.user is None and self._plaintext_ok(session):
            caps.append("AUTHINFO USER")
        if self._can_starttls(session):
            caps.append("STARTTLS")
        return _block("101 capability list follows", [cap.encode() for cap in caps])

    def _plaintext_ok(self, session: _Session) -> bool:
        return session.tls or (self.plaintext_on_loopback and is_loopback(session.peer))

    async def _command(self, verb: str, args: list[str], session: _Session) -> Reply:
        if verb == "CAPABILITIES":
            return self._capabilities(session)
        if verb == "MODE" and args and args[0].upper() == "READER":
            return [_line(f"{200 if self._may_post(session) else 201} reader mode")]
        if verb == "AUTHINFO":
            return await self._authinfo(args, session)
        if verb == "STARTTLS":
            return [b"502 STARTTLS not available now\r\n"]
        if verb == "DATE":
            return [_line("111 " + time.strftime("%Y%m%d%H%M%S", time.gmtime()))]
        if verb == "HELP":
            return _block("100 help text follows", [b"see RFC 3977; CAPABILITIES lists"
                                                    b" what this server does"])
        handler = getattr(self, "_cmd_" + verb.lower(), None)
        if handler is None:
            return [b"500 unknown command\r\n"]
        result: Reply = await asyncio.to_thread(handler, args, session)
        return result

    async def _authinfo(self, args: list[str], session: _Session) -> Reply:
        if self.logins is None:
            return [b"502 no logins on this server\r\n"]
        if session.user is not None:
            return [b"502 already logged in\r\n"]
        if not self._plaintext_ok(session):
            return [b"483 plaintext login refused off loopback: use STARTTLS first\r\n"]
        if len(args) < 2 or args[0].upper() not in ("USER", "PASS"):
            return [b"501 usage: AUTHINFO USER name / AUTHINFO PASS password\r\n"]
        if args[0].upper() == "USER":
            session.pending_user = args[1]
            return [b"381 password required\r\n"]
        if session.pending_user is None:
            return [b"482 send AUTHINFO USER first\r\n"]
        user, session.pending_user = session.pending_user, None
        address = session.peer[0] if isinstance(session.peer, tuple) else "local"
        avatar = await self.logins.check(address, user, " ".join(args[1:]))
        if avatar is None:
            return [b"481 authentication failed\r\n"]
        session.user = avatar
        log.info("nntp: %s logged in from %s", avatar, address)
        return [b"281 authentication accepted\r\n"]

    # ---- reading (run in a thread: they read files) ---------------------------------------

    def _cmd_list(self, args: list[str], session: _Session) -> Reply:
        keyword = args[0].upper() if args else "ACTIVE"
        pattern = args[1] if len(args) > 1 else "*"
        if keyword == "OVERVIEW.FMT":
            return _block("215 order of fields in overview database",
                          [f"{name}:".encode() for name in OVERVIEW] + [b":bytes", b":lines"])
        groups = [g for name, g in self.spool.groups.items() if fnmatch.fnmatchcase(name, pattern)]
        if keyword == "ACTIVE":
            flag = "y" if self._may_post(session) else "n"
            return _block("215 list of newsgroups follows",
                          [f"{g.name} {g.high} {g.low} {flag}".encode() for g in groups])
        if keyword == "NEWSGROUPS":
            return _block("215 descriptions follow",
                          [f"{g.name}\t{g.name}".encode() for g in groups])
        return [b"501 unknown LIST keyword\r\n"]

    def _cmd_group(self, args: list[str], session: _Session) -> Reply:
        if len(args) != 1:
            return [b"501 usage: GROUP name\r\n"]
        group = self.spool.groups.get(args[0])
        if group is None:
            return [b"411 no such newsgroup\r\n"]
        session.group = group.name
        session.current = group.low if group.articles else None
        count = len(group.articles)
        return [_line(f"211 {count} {group.low if count else 0} {group.high} {group.name}")]

    def _cmd_listgroup(self, args: list[str], session: _Session) -> Reply:
        if args:
            reply = self._cmd_group(args[:1], session)
            if not reply[0].startswith(b"211"):
                return reply
        if session.group is None:
            return [b"412 no newsgroup selected\r\n"]
        group = self.spool.groups[session.group]
        count = len(group.articles)
        status = f"211 {count} {group.low if count else 0} {group.high} {group.name} list follows"
        return _block(status, [str(number).encode() for number in sorted(group.articles)])

    def _find(self, args: list[str], session: _Session) -> tuple[str, int, str] | bytes:
        """(group, number, message-id) of the article named by ``args``, or an error line."""
        if args and args[0].startswith("<"):
            where = self.spool.message_ids.get(args[0])
            if where is None:
                return b"430 no article with that message-id\r\n"
            group, number = where
            return group, 0, args[0]
        if session.group is None:
            return b"412 no newsgroup selected\r\n"
        if args:
            if not args[0].isdigit():
                return b"501 give an article number or <message-id>\r\n"
            number = int(args[0])
        elif session.current is None:
            return b"420 current article number is invalid\r\n"
        else:
            number = session.current
        article = self.spool.groups[session.group].articles.get(number)
        if article is None:
            return b"423 no article with that number\r\n"
        if args:
            session.current = number
        return session.group, number, article.message_id

    def _retrieve(self, args: list[str], session: _Session, code: int, part: str) -> Reply:
        found = self._find(args, session)
        if isinstance(found, bytes):
            return [found]
        group, number, message_id = found
        if code == 223:
            return [_line(f"223 {number} {message_id}")]
        stored = self.spool.message_ids.get(message_id, (group, number)) if not number else (
            group, number)
        data = self.spool.read(*stored)
        if data is None:
            return [b"423 article gone\r\n"]
        lines = data.replace(b"\r\n", b"\n").split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        blank = lines.index(b"") if b"" in lines else len(lines)
        chosen = {"article": lines, "head": lines[:blank], "body": lines[blank + 1:]}[part]
        return _block(f"{code} {number} {message_id}", chosen)

    def _cmd_article(self, args: list[str], session: _Session) -> Reply:
        return self._retrieve(args, session, 220, "article")

    def _cmd_head(self, args: list[str], session: _Session) -> Reply:
        return self._retrieve(args, session, 221, "head")

    def _cmd_body(self, args: list[str], session: _Session) -> Reply:
        return self._retrieve(args, session, 222, "body")

    def _cmd_stat(self, args: list[str], session: _Session) -> Reply:
        return self._retrieve(args, session, 223, "")

    def _step(self, session: _Session, forward: bool) -> Reply:
        if session.group is None:
            return [b"412 no newsgroup selected\r\n"]
        if session.current is None:
            return [b"420 current article number is invalid\r\n"]
        numbers = sorted(self.spool.groups[session.group].articles)
        later = [n for n in numbers if (n > session.current if forward else n < session.current)]
        if not later:
            return [b"421 no next article\r\n" if forward else b"422 no previous article\r\n"]
        session.current = later[0] if forward else later[-1]
        article = self.spool.groups[session.group].articles[session.current]
        return [_line(f"223 {session.current} {article.message_id}")]

    def _cmd_next(self, args: list[str], session: _Session) -> Reply:
        return self._step(session, True)

    def _cmd_last(self, args: list[str], session: _Session) -> Reply:
        return self._step(session, False)

    def _cmd_over(self, args: list[str], session: _Session) -> Reply:
        if session.group is None:
            return [b"412 no newsgroup selected\r\n"]
        group = self.spool.groups[session.group]
        if not args:
            if session.current is None:
                return [b"420 current article number is invalid\r\n"]
            low = high = session.current
        else:
            first, dash, last = args[0].partition("-")
            if not first.isdigit() or (last and not last.isdigit()):
                return [b"501 give a range such as 1-10 or 5-\r\n"]
            low = int(first)
            high = int(last) if last else (group.high if dash else low)
        chosen = [group.articles[n] for n in sorted(group.articles) if low <= n <= high]
        if not chosen:
            return [b"423 no articles in that range\r\n"]
        rows = []
        for article in chosen:
            fields = [str(article.number)]
            fields += [article.headers.get(name.lower(), "").replace("\t", " ")
                       for name in OVERVIEW]
            fields += [str(article.size), str(article.lines)]
            rows.append("\t".join(fields).encode("utf-8", "replace"))
        return _block("224 overview information follows", rows)

    _cmd_xover = _cmd_over

    # ---- posting ------------------------------------------------------------------------

    async def _post(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    session: _Session) -> Reply:
        if not self._may_post(session):
            if self.logins is not None:
                return [b"480 authentication required to post\r\n"]
            return [b"440 posting not permitted\r\n"]
        writer.write(b"340 send article to be posted; end with <CR-LF>.<CR-LF>\r\n")
        await writer.drain()
        lines: list[bytes] = []
        size, too_big = 0, False
        while True:
            line = await self._readline(reader, writer)
            if line is None:
                raise ConnectionResetError("client left during POST")
            if line in (b".\r\n", b".\n"):
                break
            size += len(line)
            if size > self.max_article:
                too_big = True
                continue  # read to the end, keep nothing
            lines.append(line[1:] if line.startswith(b"..") else line)
        if too_big:
            return [_line(f"441 article over the {self.max_article}-byte limit")]
        return await self._accept(b"".join(lines), session)

    async def _accept(self, data: bytes, session: _Session) -> Reply:
        headers = read_headers(data)
        missing = [name for name in ("from", "subject", "newsgroups") if not headers.get(name)]
        if missing:
            return [_line(f"441 missing header(s): {', '.join(missing)}")]
        wanted = [name.strip() for name in headers["newsgroups"].split(",") if name.strip()]
        groups = [name for name in wanted if name in self.spool.groups]
        if not groups:
            return [b"441 no such newsgroup\r\n"]
        added = b""
        message_id = headers.get("message-id")
        if message_id is None:
            message_id = f"<{uuid.uuid4().hex}@{self.hostname}>"
            added += f"Message-ID: {message_id}\r\n".encode()
        if "date" not in headers:
            added += time.strftime("Date: %a, %d %b %Y %H:%M:%S +0000\r\n",
                                   time.gmtime()).encode()
        added += f"Path: {self.hostname}!not-for-mail\r\n".encode()
        async with self._posting:
            if message_id in self.spool.message_ids:
                return [b"441 duplicate: that Message-ID is already here\r\n"]
            try:
                await asyncio.to_thread(self.spool.post, groups, added + data)
            except OSError as error:
                log.error("nntp: cannot store a post: %s", error)
                return [b"441 cannot store the article now\r\n"]
        log.info("nntp: %s posted %s to %s", session.user or "anonymous", message_id,
                 ",".join(groups))
        return [_line(f"240 article received {message_id}")]
