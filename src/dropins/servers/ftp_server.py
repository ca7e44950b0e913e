"""The server of ``dropins ftp``: aioftp, with logins through ``--auth`` and explicit FTPS.

aioftp speaks the protocol; this module adds what a public server needs and aioftp leaves
out:

- **Logins through cred.** ``USER``/``PASS`` are checked by the ``--auth`` portal (with the
  failure throttle).  ``--anonymous`` lets ``anonymous``/``ftp`` in without a password,
  read-only.  Logged-in users may write under ``--root``.
- **Explicit FTPS** (RFC 4217): ``AUTH TLS`` upgrades the control connection, ``PROT P``
  the data connections.  A password is refused before ``AUTH TLS`` except from loopback.
- **Confinement.** aioftp maps ``..`` inside the virtual root; paths are also resolved on the
  real filesystem, so a symlink that leads out of ``--root`` is refused (``550``).
- **Upload quota.** ``--max-upload SIZE`` stops a ``STOR``/``APPE`` past that size, removes
  the partial file and answers ``552``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from pathlib import Path, PurePosixPath
from typing import Any

from aioftp import AbstractUserManager, AsyncPathIO, Permission, User
from aioftp import Server as AioftpServer
from aioftp.server import ConnectionConditions, PathConditions, PathPermissions, worker

from dropins.servers.logins import Logins, is_loopback

__all__ = ["ANONYMOUS", "ConfinedPathIO", "CredUsers", "FTPServer"]

log = logging.getLogger("dropins.servers.ftp")

ANONYMOUS = ("anonymous", "ftp")


class CredUsers(AbstractUserManager):
    """aioftp's user manager over the ``--auth`` portal (passwords are checked in ``pass_``)."""

    def __init__(self, root: Path, anonymous: bool) -> None:
        super().__init__()
        self.root = root
        self.anonymous = anonymous

    async def get_user(self, login: str) -> tuple[AbstractUserManager.GetUserResponse,
                                                  User | None, str]:
        if self.anonymous and login.lower() in ANONYMOUS:
            user = User(login="anonymous", base_path=self.root,
                        permissions=[Permission("/", readable=True, writable=False)])
            return AbstractUserManager.GetUserResponse.OK, user, "anonymous login, read-only"
        if not login:
            return AbstractUserManager.GetUserResponse.ERROR, None, "give a user name"
        user = User(login=login, password=None, base_path=self.root,
                    permissions=[Permission("/", readable=True, writable=True)])
        return AbstractUserManager.GetUserResponse.PASSWORD_REQUIRED, user, "password required"

    async def authenticate(self, user: User, password: str) -> bool:
        return False  # FTPServer.pass_ checks through the portal, which knows the peer

    async def notify_logout(self, user: User) -> None:
        return None


class _ClientFaults(logging.Filter):
    """aioftp logs a traceback at ERROR whenever a client drops a connection mid-command;
    that is the client's doing, so it becomes one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ConnectionError | TimeoutError | ssl.SSLError):
            record.msg, record.args, record.exc_info = "ftp: client connection ended: %r", (
                error,), None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


logging.getLogger("aioftp.server").addFilter(_ClientFaults())


def _within(path: Path, root: Path) -> bool:
    resolved = path.resolve()
    return resolved == root or resolved.is_relative_to(root)


class ConfinedPathIO(AsyncPathIO):
    """aioftp's threaded file access, with listings (LIST, MLSD, NLST) that leave out the
    entries whose real location is outside the user's root, so that a symlink out of the root
    shows neither its name nor the size and dates of what it points to."""

    def list(self, path: Path) -> Any:
        entries = super().list(path)
        root = Path(self.connection.user.base_path).resolve() if self.connection else None

        async def inside() -> Any:
            async for entry in entries:
                if root is None or await asyncio.to_thread(_within, entry, root):
                    yield entry

        return inside()


class FTPServer(AioftpServer):
    """aioftp's Server, served by a StreamServerService (``dispatcher`` is the handler)."""

    def __init__(self, root: Path, *, logins: Logins | None, anonymous: bool,
                 tls_context: ssl.SSLContext | None, max_upload: int | None,
                 plaintext_on_loopback: bool = True, **settings: Any) -> None:
        super().__init__(CredUsers(root, anonymous), welcome_message="dropins ftp ready",
                         **settings)
        self.root = root.resolve()
        self.logins = logins
        self.tls_context = tls_context
        if tls_context is not None:
            # TLS 1.3 session tickets sent on a data connection make GnuTLS clients (lftp)
            # drop an upload; FTPS data connections gain nothing from tickets anyway
            tls_context.num_tickets = 0
        self.max_upload = max_upload
        self.plaintext_on_loopback = plaintext_on_loopback
        self.secured: set[Any] = set()  # control streams upgraded by AUTH TLS
        self.protected: set[Any] = set()  # control streams that asked for PROT P
        self._start_server_extra_arguments = {}
        self.connections = {}
        self.server_host, self.server_port = None, 0
        self.commands_mapping.update(auth=self.auth, feat=self.feat, nlst=self.nlst)

    # ---- explicit FTPS ---------------------------------------------------------------

    async def auth(self, connection: Any, rest: str) -> bool:
        stream = connection.command_connection
        if self.tls_context is None:
            connection.response("502", "TLS is not configured on this server")
        elif rest.strip().upper() not in ("TLS", "TLS-C", "SSL"):
            connection.response("504", "only AUTH TLS is supported")
        elif stream in self.secured:
            connection.response("503", "already secured")
        else:
            # no byte of the client's TLS hello may reach the command reader as text
            stream.writer.transport.pause_reading()
            await self.write_response(stream, "234", "AUTH TLS successful")
            await stream.writer.start_tls(self.tls_context)
            self.secured.add(stream)
        return True

    async def feat(self, connection: Any, rest: str) -> bool:
        features = ["UTF8", "PASV", "EPSV", "MLST type*;size*;modify*;", "REST STREAM"]
        if self.tls_context is not None:
            features += ["AUTH TLS", "PBSZ", "PROT"]
        connection.response("211", ["Features:", *features, "End"], True)
        return True

    @ConnectionConditions(ConnectionConditions.login_required)
    async def prot(self, connection: Any, rest: str | PurePosixPath) -> bool:
        stream = connection.command_connection
        level = str(rest).strip().upper()
        if level == "P" and stream in self.secured:
            self.protected.add(stream)
            connection.response("200", "data connections are protected")
        elif level == "C":
            self.protected.discard(stream)
            connection.response("200", "data connections are clear")
        else:
            connection.response("536", "PROT P needs AUTH TLS first; levels: C, P")
        return True

    async def _start_passive_server(self, connection: Any, handler_callback: Any) -> Any:
        protect = connection.command_connection in self.protected
        self.ssl = self.tls_context if protect else None
        try:
            return await super()._start_passive_server(connection, handler_callback)
        finally:
            self.ssl = None

    # ---- logins -------------------------------------------------------------------------

    @ConnectionConditions(ConnectionConditions.user_required)
    async def pass_(self, connection: Any, rest: str) -> bool:
        stream = connection.command_connection
        if connection.future.logged.done():
            code, info = "503", "already logged in"
        elif not (stream in self.secured
                  or (self.plaintext_on_loopback and is_loopback((connection.client_host,)))):
            code, info = "530", "plaintext password refused here: use AUTH TLS first"
        elif self.logins is None:
            code, info = "530", "no password logins on this server (try anonymous)"
        elif await self.logins.check(connection.client_host, connection.user.login, rest):
            connection.logged = True
            code, info = "230", "logged in"
            log.info("ftp: %s logged in from %s", connection.user.login, connection.client_host)
        else:
            code, info = "530", "wrong user name or password"
        connection.response(code, info)
        return True

    @ConnectionConditions(ConnectionConditions.login_required,
                          ConnectionConditions.passive_server_started)
    @PathConditions(PathConditions.path_must_exists)
    @PathPermissions(PathPermissions.readable)
    async def nlst(self, connection: Any, rest: str | PurePosixPath) -> bool:
        """NLST (names only), which aioftp lacks."""
        real_path, _ = self.get_paths(connection, rest)

        @ConnectionConditions(ConnectionConditions.data_connection_made, wait=True,
                              fail_code="425", fail_info="Can't open data connection")
        @worker
        async def send(self: FTPServer, connection: Any, rest: Any) -> bool:
            stream = connection.data_connection
            del connection.data_connection
            async with stream:
                async for entry in connection.path_io.list(real_path):
                    await stream.write((entry.name + "\r\n").encode(self.encoding))
            connection.response("226", "list transfer done")
            return True

        connection.extra_workers.add(asyncio.create_task(send(self, connection, rest)))
        connection.response("150", "list transfer started")
        return True

    # ---- confinement and quota ------------------------------------------------------------

    def get_paths(self, connection: Any, path: str | PurePosixPath  # type: ignore[override]
                  ) -> tuple[Path, PurePosixPath]:
        """aioftp's virtual mapping, then the real path resolved: a path whose real location
        is outside the root (through a symlink) maps to one that cannot exist, so every
        command on it fails as on a missing file."""
        real, virtual = AioftpServer.get_paths(connection, path)
        if not self._inside(real):
            log.warning("ftp: %s tried to leave the root through %s", connection.client_host,
                        virtual)
            return self.root / ".dropins-outside-root" / "refused", virtual
        return real, virtual

    def _inside(self, real: Path) -> bool:
        """Whether ``real``, symlinks resolved, is the root or below it."""
        return _within(real, self.root)

    @ConnectionConditions(ConnectionConditions.login_required,
                          ConnectionConditions.passive_server_started)
    @PathPermissions(PathPermissions.writable)
    async def stor(self, connection: Any, rest: str | PurePosixPath,
                   mode: str = "wb") -> bool:
        real_path, _ = self.get_paths(connection, rest)
        limit = self.max_upload

        @ConnectionConditions(ConnectionConditions.data_connection_made, wait=True,
                              fail_code="425", fail_info="Can't open data connection")
        @worker
        async def receive(self: FTPServer, connection: Any, rest: Any) -> bool:
            stream = connection.data_connection
            del connection.data_connection
            offset = connection.restart_offset
            start = 0
            if mode == "ab" and await connection.path_io.exists(real_path):
                start = (await connection.path_io.stat(real_path)).st_size
            written = start
            file_out = connection.path_io.open(real_path, mode="r+b" if offset else mode)
            over = False
            async with file_out, stream:
                if offset:
                    await file_out.seek(offset)
                    start = written = offset
                async for data in stream.iter_by_block(connection.block_size):
                    written += len(data)
                    if limit is not None and written > limit:
                        over = True
                        break
                    await file_out.write(data)
            if over:
                await _cut(real_path, start)
                log.warning("ftp: upload to %s over the %d-byte limit refused", rest, limit)
                connection.response("552", f"upload exceeds the {limit}-byte limit; not kept")
            else:
                connection.response("226", "data transfer done")
            return True

        if await connection.path_io.is_dir(real_path.parent):
            task = asyncio.create_task(receive(self, connection, rest))
            connection.extra_workers.add(task)
            connection.response("150", "data transfer started")
        else:
            connection.response("550", "path unreachable")
        return True

    async def parse_command(self, stream: Any, censor_commands: tuple[str] = ("pass",)
                            ) -> Any:
        """aioftp's, but a client gone or idle too long ends the connection quietly (False
        is the dispatcher's "close" result) instead of leaving an exception unretrieved."""
        try:
            return await super().parse_command(stream, censor_commands)
        except ConnectionError:
            return False
        except TimeoutError:
            try:
                await self.write_response(stream, "421", "idle too long; closing")
            except (ConnectionError, TimeoutError):
                pass
            return False

    async def dispatcher(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        try:
            await super().dispatcher(reader, writer)
        finally:
            for streams in (self.secured, self.protected):
                for stream in [s for s in streams if s.writer is writer]:
                    streams.discard(stream)


async def _cut(path: Path, size: int) -> None:
    """Undo an upload that went over the limit: remove a new file, or cut an appended one
    back to its size before."""
    def cut() -> None:
        if size:
            os.truncate(path, size)
        else:
            path.unlink(missing_ok=True)

    await asyncio.to_thread(cut)
