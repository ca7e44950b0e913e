"""``dropins words``: its options and the ``WordsService`` they build.

The realm's database is opened when the service starts (so ``--help`` and option errors
never touch it) and closed when it stops.  Logins (PASS, SASL, NickServ IDENTIFY) are checked
against the realm's accounts first, then the ``--auth`` checkers through the cred portal.
"""

from __future__ import annotations

import os
from typing import Any

from dropins.cred.auth_options import AuthOptions
from dropins.cred.interfaces import IUsernamePassword
from dropins.options import Flag, Parameter, UsageError, path
from dropins.service.base import MultiService

__all__ = ["WordsService", "words"]


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise UsageError(f"expected a number of seconds above 0, got {text!r}")
    return value


class WordsOptions(AuthOptions):
    """The options of ``dropins words`` (with ``--auth`` from AuthOptions)."""

    description = ("A chat server: an IRC gateway to a realm of users, accounts and channels "
                   "persisted in SQLite (the Twisted 0.19 words server).")
    epilog = ("examples:\n"
              "  dropins words --allow-register\n"
              "  dropins words --irc tcp:6667:interface=127.0.0.1 --db chat.db --motd motd.txt\n"
              "  dropins words --auth file:users.txt")
    supported_credential_interfaces = (IUsernamePassword,)

    irc = Parameter(multiple=True, metavar="ENDPOINT",
                    help="serve IRC here (repeatable; default tcp:6667:interface=127.0.0.1)")
    web = Parameter(multiple=True, metavar="ENDPOINT",
                    help="serve the web administration and its JSON API here (needs --auth; "
                         "e.g. tcp:8081:interface=127.0.0.1)")
    db = Parameter(default="words.db", metavar="PATH",
                   help="the SQLite database of accounts and channels (default: words.db)")
    allow_register = Flag(help="let users register their nick with /msg NickServ REGISTER pw")
    motd = Parameter(metavar="FILE", type=path, help="the message of the day, from this file")
    server_name = Parameter(default="dropins.words", metavar="NAME",
                            help="the server's name in replies (default: dropins.words)")
    ping_timeout = Parameter(default=120.0, type=_positive, metavar="SECONDS",
                             help="drop a client silent this long after a PING (default: 120)")
    send_queue = Parameter(default=1 << 20, type=int, metavar="BYTES",
                           help="disconnect a client whose unread output passes this "
                                "(default: 1048576)")
    flood_rate = Parameter(default=5.0, type=_positive, metavar="LINES",
                           help="lines per second a client may send after a burst of 20 "
                                "(default: 5; more are held back, not dropped)")

    def validate(self) -> None:
        super().validate()
        from dropins.service.endpoints import parse_endpoint

        for endpoint in self["irc"]:
            try:
                parse_endpoint(endpoint)
            except ValueError as error:
                raise UsageError(f"--irc: {error}") from None
        for endpoint in self["web"]:
            try:
                parse_endpoint(endpoint)
            except ValueError as error:
                raise UsageError(f"--web: {error}") from None
        if self["web"] and not self["auth"]:
            raise UsageError("--web needs --auth for its logins (e.g. --auth file:users.txt, "
                             "made with dropins passwd)")
        motd = self["motd"]
        if motd is not None and not os.path.isfile(motd):
            raise UsageError(f"--motd {motd} is not a file")
        folder = os.path.dirname(os.path.abspath(self["db"]))
        if not os.path.isdir(folder):
            raise UsageError(f"--db {self['db']}: the folder {folder} does not exist")
        if self["send_queue"] < 4096:
            raise UsageError("--send-queue must be at least 4096 bytes")
        if not self["server_name"] or " " in self["server_name"]:
            raise UsageError("--server-name must be one word, e.g. irc.example.org")


class WordsService(MultiService):
    """The realm (opened at start) and one IRC listener per endpoint."""

    def __init__(self, db: str, irc: list[str], *, portal: Any = None,
                 web: list[str] | None = None, name: str = "words", **settings: Any) -> None:
        super().__init__(name)
        self.web = web or []
        self.db = db
        self.irc = irc
        self.portal = portal
        self.settings_options = settings
        self.realm: Any = None
        self.store: Any = None
        self.settings: Any = None

    async def start(self) -> None:
        from dropins.service.stream import StreamServerService
        from dropins.words.irc.connection import Connection, Settings
        from dropins.words.realm import Realm
        from dropins.words.store import Store

        if self.store is None:
            server_name = self.settings_options.pop("server_name", "dropins.words")
            self.store = Store(self.db)
            self.realm = Realm(self.store, server_name)
            login = _portal_login(self.portal) if self.portal is not None else None
            settings = self.settings = Settings(self.realm, login=login,
                                                **self.settings_options)
            for index, endpoint in enumerate(self.irc):
                self.add_service(StreamServerService(
                    endpoint, lambda: Connection(settings),
                    name="irc" if index == 0 else f"irc-{index + 1}"))
            if self.web:
                from dropins.web.auth import BasicAuth
                from dropins.web.server import Limits, WebServer
                from dropins.words.web import WordsAdmin

                site = BasicAuth(WordsAdmin(self.realm), self.portal)
                for index, endpoint in enumerate(self.web):
                    self.add_service(StreamServerService(
                        endpoint, WebServer(site, Limits()),
                        name="web" if index == 0 else f"web-{index + 1}"))
        await super().start()

    async def stop(self) -> None:
        """Clients are told and disconnected first: IRC connections never end on their own."""
        if self.settings is not None:
            for connection in list(self.settings.connections):
                connection.close("Server shutting down")
        try:
            await super().stop()
        finally:
            if self.store is not None:
                self.store.close()


def _portal_login(portal: Any) -> Any:
    from dropins.console.login import LoginDenied, PasswordLogin

    checker = PasswordLogin(portal)

    async def login(address: str, name: str, password: str) -> str | None:
        try:
            return await checker.login(address, name, password)
        except LoginDenied:
            return None

    return login


def _motd(path_: str | None) -> list[str] | None:
    if path_ is None:
        return None
    with open(path_, "rb") as file:
        from dropins.words.irc.parse import decode

        return decode(file.read()).splitlines()


class _Words:
    Options = WordsOptions

    @staticmethod
    def make_service(options: Any) -> Any:
        return WordsService(
            options["db"], options["irc"] or ["tcp:6667:interface=127.0.0.1"],
            portal=options.make_portal() if options["auth"] else None, web=options["web"],
            allow_register=options["allow_register"], motd=_motd(options["motd"]),
            server_name=options["server_name"], ping_timeout=options["ping_timeout"],
            flood_rate=options["flood_rate"], max_queue=options["send_queue"])


words = _Words()
