"""The console over SSH (asyncssh, imported only when this service is built).

Logins are by password, through the ``--auth`` portal and its throttle (``login``), and by
public key, against ``--authorized-keys`` (an OpenSSH ``authorized_keys`` file, re-read for
every connection, so keys can be added or revoked while the server runs).  Any user name is
accepted with a key from the file; it is the name the session's statements are logged under.

With a pty (``ssh -t``, the default for an interactive ssh) asyncssh's line editor gives line
editing and history, and turns Ctrl-C into a break, which interrupts the running statement.
Without one (``ssh host < script.py``) lines are read as they come.  Nothing else is offered:
no shell, no port forwarding, no agent forwarding, no SFTP.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import asyncssh

from dropins.console.hostkey import load_host_key
from dropins.console.login import LoginDenied
from dropins.service.base import Service
from dropins.service.errors import listen_error
from dropins.service.serving import format_address

__all__ = ["SSHConsoleService"]

log = logging.getLogger("dropins.console")

#: Seconds open SSH connections get to close when the service stops.
_CLOSE_TIMEOUT = 5.0


class _Server(asyncssh.SSHServer):
    """One SSH connection's authentication."""

    def __init__(self, service: SSHConsoleService) -> None:
        self.service = service
        self.connection: asyncssh.SSHServerConnection | None = None
        self.address = ""

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.connection = conn
        self.address = str((conn.get_extra_info("peername") or ("?",))[0])
        self.service.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.connection is not None:
            self.service.connections.discard(self.connection)
            for session in self.service.sessions.pop(self.connection, ()):
                session.connection_lost()  # what it was running is cancelled

    def begin_auth(self, username: str) -> bool:
        path = self.service.authorized_keys
        if path is not None and self.connection is not None:
            try:
                self.connection.set_authorized_keys(asyncssh.read_authorized_keys(path))
            except (OSError, ValueError) as error:
                log.error("console: cannot read --authorized-keys %s: %s", path, error)
        return True

    def password_auth_supported(self) -> bool:
        return self.service.password_login is not None

    def public_key_auth_supported(self) -> bool:
        return self.service.authorized_keys is not None

    async def validate_password(self, username: str, password: str) -> bool:
        assert self.service.password_login is not None
        try:
            await self.service.password_login.login(self.address, username, password)
        except LoginDenied:
            return False
        return True


class SSHConsoleService(Service):
    """Serve the console with SSH on ``endpoint`` (an endpoint string) while running."""

    def __init__(self, endpoint: str, console: Any, *, host_key: str, name: str = "ssh",
                 password_login: Any = None, authorized_keys: str | None = None) -> None:
        super().__init__(name)
        from dropins.service.endpoints import parse_endpoint

        self.description = endpoint
        self.endpoint = parse_endpoint(endpoint)
        self.console = console
        self.host_key_path = host_key
        self.password_login = password_login
        self.authorized_keys = authorized_keys
        self.connections: set[asyncssh.SSHServerConnection] = set()
        #: The console sessions open on each connection, ended when it is lost.
        self.sessions: dict[asyncssh.SSHServerConnection, set[Any]] = {}
        self._key: Any = None
        self._sockets: list[socket.socket] | None = None
        self._acceptors: list[Any] = []

    def __repr__(self) -> str:
        return f"<SSHConsoleService on {self.description}>"

    @property
    def addresses(self) -> list[str]:
        """The bound addresses, in endpoint style (``tcp:127.0.0.1:2222``) for the ready line."""
        address = getattr(self.endpoint, "address", None)
        return [address(sock) if address else format_address(sock)
                for sock in self._sockets or []]

    def privileged_start(self) -> None:
        """Read (or make) the host key and bind, while the process may still do both."""
        if self._key is None:
            self._key = load_host_key(self.host_key_path)
        if self._sockets is None:
            try:
                self._sockets = list(self.endpoint.bind())
            except Exception as error:
                raise listen_error(self.description, error) from error

    async def start(self) -> None:
        self.privileged_start()
        if logging.getLogger("asyncssh").level == logging.NOTSET:
            logging.getLogger("asyncssh").setLevel(logging.WARNING)  # it logs every packet step
        for sock in self._sockets or []:
            self._acceptors.append(await asyncssh.listen(
                sock=sock, server_factory=lambda: _Server(self), server_host_keys=[self._key],
                process_factory=self._serve, encoding="utf-8", agent_forwarding=False,
                allow_scp=False, x11_forwarding=False))
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        acceptors, self._acceptors = self._acceptors, []
        for acceptor in acceptors:
            acceptor.close()
        for connection in list(self.connections):
            connection.close()
        waits = [acceptor.wait_closed() for acceptor in acceptors]
        waits += [connection.wait_closed() for connection in list(self.connections)]
        if waits:
            await asyncio.wait([asyncio.ensure_future(wait) for wait in waits],
                               timeout=_CLOSE_TIMEOUT)
        for sock in self._sockets or []:
            sock.close()
        self._sockets = None

    async def _serve(self, process: asyncssh.SSHServerProcess[str]) -> None:
        """One SSH session: lines from stdin to a console session, its text to stdout."""
        done = asyncio.Event()

        def close() -> None:
            done.set()
            try:
                process.exit(0)
            except OSError:
                pass

        def write(text: str) -> None:
            try:
                process.stdout.write(text)
            except (OSError, asyncssh.Error):  # the channel is closing: nobody to read it
                pass

        peer = process.get_extra_info("peername") or ("?", 0)
        session = self.console.open_session(process.get_extra_info("username") or "?", "ssh",
                                            f"{peer[0]}:{peer[1]}", write, close)
        connection = process.get_extra_info("connection")
        self.sessions.setdefault(connection, set()).add(session)
        session.start()
        try:
            while not done.is_set():
                try:
                    line = await process.stdin.readline()
                except (asyncssh.BreakReceived, asyncssh.SignalReceived):
                    session.interrupt()
                    continue
                except asyncssh.TerminalSizeChanged:
                    continue
                if not line:
                    session.end_of_input()
                    break
                session.line_received(line.rstrip("\r\n"))
            await done.wait()
        except (asyncssh.Error, OSError):
            session.connection_lost()
        except asyncio.CancelledError:
            session.connection_lost()
            raise
        finally:
            self.sessions.get(connection, set()).discard(session)
