"""``--admin ENDPOINT``: the admin's HTTP server, who may use it, and its runner options.

Access rules (DESIGN.md's for every admin surface):

* on a ``unix:`` endpoint no password is asked, but the peer's uid (``SO_PEERCRED``) must be
  the process owner's or root's; that user is an operator;
* elsewhere ``--admin-auth TYPE:ARGS`` (the cred checkers) is required, and plain TCP that
  other machines can reach is refused unless the endpoint is ``ssl:`` or ``--insecure-admin``
  is given (passwords and session cookies would travel in clear).

Users are ``viewer`` unless ``--admin-role USER=operator`` says otherwise.  Like the health
server it is served by the web server's HTTP/1.1 connection and kept out of the application
tree, so a reload or a stopped service never takes the admin away.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.parse
from importlib import resources
from typing import Any

from dropins.admin.api import Api, ApiError, json_body
from dropins.web.login import LoginGate, LoginRefused

__all__ = ["ROLES", "AdminServer", "check_admin_options", "parse_roles"]

log = logging.getLogger("dropins.admin")

ROLES = ("viewer", "operator")
MAX_BODY = 1024 * 1024
_STATIC = {"/": ("index.html", b"text/html; charset=utf-8"),
           "/admin.css": ("admin.css", b"text/css; charset=utf-8"),
           "/admin.js": ("admin.js", b"text/javascript; charset=utf-8")}
_SECURITY = [(b"Cache-Control", b"no-store"), (b"X-Content-Type-Options", b"nosniff"),
             (b"X-Frame-Options", b"DENY"), (b"Referrer-Policy", b"no-referrer"),
             (b"Content-Security-Policy", b"default-src 'self'; frame-ancestors 'none'")]


def parse_roles(values: list[str] | None) -> dict[str, str]:
    """``alice=operator`` strings into {user: role}; ``ValueError`` naming a bad one."""
    roles: dict[str, str] = {}
    for value in values or ():
        user, equals, role = value.partition("=")
        if not equals or not user.strip() or role.strip() not in ROLES:
            raise ValueError(f"invalid --admin-role {value!r}: give USER=ROLE with ROLE one of "
                             f"{', '.join(ROLES)}, e.g. alice=operator")
        roles[user.strip()] = role.strip()
    return roles


def check_admin_options(options: Any, make_checkers: bool = True) -> list[Any]:
    """Check ``--admin`` and its companions; return the checkers (made only with
    ``make_checkers``: a checker may warn, once is enough). ``ValueError`` if unusable."""
    from dropins.service.endpoints import parse_endpoint
    from dropins.web.auth import insecure_listeners

    endpoint = options.admin
    extras = {"--admin-auth": options.admin_auth, "--admin-role": options.admin_role,
              "--insecure-admin": options.insecure_admin}
    if endpoint is None:
        given = [name for name, value in extras.items() if value]
        if given:
            raise ValueError(f"{given[0]} goes with --admin ENDPOINT: it configures the admin")
        return []
    import importlib.util

    if importlib.util.find_spec("httptools") is None:
        raise ValueError("--admin needs httptools: pip install 'dropins[admin]'")
    try:
        parse_endpoint(endpoint)
    except ValueError as error:
        raise ValueError(f"--admin {endpoint}: {error}") from None
    parse_roles(options.admin_role)
    unix = endpoint.split(":", 1)[0].strip().lower() == "unix"
    if not unix and not options.admin_auth:
        raise ValueError(f"--admin {endpoint} needs --admin-auth TYPE:ARGS (who may log in, "
                         "e.g. --admin-auth file:admins.txt), or a unix: endpoint")
    if insecure_listeners([endpoint]) and not unix and not options.insecure_admin:
        raise ValueError(f"--admin {endpoint} can be reached from other machines over plain "
                         "TCP; listen on loopback (tcp:PORT:interface=127.0.0.1), use an ssl: "
                         "endpoint, or add --insecure-admin")
    if not make_checkers:
        from dropins.cred.strings import find_checker_factory

        for text in options.admin_auth or ():
            try:
                find_checker_factory(text.partition(":")[0].strip())
            except Exception as error:
                raise ValueError(f"--admin-auth {text.partition(':')[0]}: {error}") from None
        return []
    from dropins.cred.strings import parse_auth

    try:
        return [parse_auth(text) for text in options.admin_auth or ()]
    except Exception as error:  # the cred layer's UsageError
        raise ValueError(f"--admin-auth: {error}") from None


class AdminServer:
    """Serves the admin pages and API of ``runner`` (its application, reloader, options)."""

    def __init__(self, endpoint: str, checkers: list[Any], roles: dict[str, str],
                 parts: Any) -> None:
        from dropins.cred.portal import Portal, UsernameRealm
        from dropins.service.stream import StreamServerService
        from dropins.web.server import Limits, WebServer

        self.unix = endpoint.split(":", 1)[0].strip().lower() == "unix"
        self.gate = LoginGate(Portal(UsernameRealm(), checkers))
        self.roles = roles
        self.parts = parts  # an AdminParts: tree, ring, editor
        self.api = Api(parts.tree, parts.ring, parts.editor, time.time(), parts.workers)
        limits = Limits(max_head_size=16 * 1024, max_headers=60, max_body_size=MAX_BODY,
                        header_timeout=10.0, keepalive_timeout=30.0, send_timeout=30.0)
        server = WebServer(self.handle, limits, access_log=False)
        server.allow = b"GET, HEAD, POST"
        server.render_error = _json_error  # a 413 or 400 of the server itself: JSON too
        self.service = StreamServerService(endpoint, server, name="admin",
                                           shutdown_timeout=1.0)
        parts.ring.attach(None)  # from now: the log shows the start-up too

    @property
    def addresses(self) -> list[str]:
        return self.service.addresses

    def privileged_start(self) -> None:
        self.service.privileged_start()

    async def start(self) -> None:
        import asyncio

        self.parts.ring.attach(asyncio.get_running_loop())
        await self.service.start()
        log.info("admin: serving on %s", ", ".join(self.addresses))

    async def stop(self) -> None:
        self.parts.ring.detach()  # ends the live log streams first
        await self.service.stop()

    def role(self, user: str) -> str:
        """The peer of the unix socket owns the process: operator unless told otherwise."""
        return self.roles.get(user, "operator" if self.unix else "viewer")

    async def handle(self, exchange: Any) -> None:
        try:
            await self._handle(exchange)
        except ApiError as error:
            _json(exchange, error.status, error.body)
        except LoginRefused as refused:
            headers = []
            if refused.retry_after:
                headers.append((b"Retry-After", b"%d" % max(1, round(refused.retry_after))))
            _json(exchange, refused.status, {"error": refused.message}, *headers)

    async def _handle(self, exchange: Any) -> None:
        path = urllib.parse.unquote(exchange.path.decode("latin-1"))
        method = exchange.method.decode("latin-1")
        query = dict(urllib.parse.parse_qsl(exchange.query.decode("latin-1")))
        if path == "/favicon.ico":
            exchange.respond(204, _SECURITY)  # no icon, and no 404 in the browser's console
            return
        if path in _STATIC and method in ("GET", "HEAD"):
            _static(exchange, *_STATIC[path])
            return
        if method not in ("GET", "HEAD", "POST"):
            raise ApiError(405, f"method {method} is not allowed: use GET or POST")
        body = await _read_body(exchange) if method == "POST" else b""
        if path == "/login" and method == "POST":
            await self._login(exchange, body)
            return
        if not path.startswith("/api/") and path != "/logout":
            raise ApiError(404, f"not found: {path} (the admin is at /, its API under /api/)")
        user, session = await self._who(exchange)
        if path == "/api/session":
            _json(exchange, 200, {"user": user, "role": self.role(user),
                                  "csrf": session.csrf if session else None})
            return
        if method == "POST":
            if not self.gate.csrf_ok(session, exchange.headers):
                raise ApiError(403, "missing or wrong X-CSRF-Token: reload the page and retry")
            if path == "/logout":
                if session is not None:
                    self.gate.close_session(session)
                _json(exchange, 200, {"ok": True},
                      self.gate.set_cookie(None, exchange.scheme == "https"))
                return
            if self.role(user) != "operator":
                log.warning("admin: refused POST %s by %s (role viewer)", path, user)
                raise ApiError(403, f"{user} is a viewer: changes need the operator role "
                                    f"(--admin-role {user}=operator)")
            _json(exchange, 200, await self.api.post(path, body, user))
            return
        if path == "/api/logs/stream":
            await self.api.stream(exchange, query)
            return
        answer = await self.api.get(path, query)
        if path == "/api/config" and self.role(user) != "operator":
            from dropins.admin.redact import redact_secrets

            answer = {**answer, "text": redact_secrets(answer["text"]), "redacted": True}
        _json(exchange, 200, answer)

    async def _who(self, exchange: Any) -> tuple[str, Any]:
        if self.unix:
            return _unix_peer(exchange), None
        address = exchange.client[0] if isinstance(exchange.client, tuple) else exchange.client
        return await self.gate.authenticate(exchange.headers, address)

    async def _login(self, exchange: Any, body: bytes) -> None:
        if not self.gate.same_origin(exchange.headers):  # login CSRF: the attacker's account
            raise ApiError(403, "a login from another site's page is refused: use the admin's "
                                "own page")
        content_type = (exchange.header(b"content-type") or b"").decode("latin-1")
        if content_type.startswith("application/json"):
            fields = json_body(body)
            if not all(isinstance(fields.get(key, ""), str) for key in ("user", "password")):
                raise ApiError(400, 'give {"user": "NAME", "password": "..."} as strings')
        else:
            fields = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        user, password = fields.get("user", ""), fields.get("password", "")
        if not user:
            raise ApiError(400, "give a user name and a password")
        if self.unix:
            raise ApiError(400, "no login on the unix socket: its peer's uid decides")
        address = exchange.client[0] if isinstance(exchange.client, tuple) else exchange.client
        try:
            user = await self.gate.check_password(user, password, address)
        except LoginRefused:
            log.warning("admin: failed login for %r from %s", user, address)
            raise
        previous = self.gate.session_of(exchange.headers)
        if previous is not None:  # a new login replaces the browser's session, never adds one
            self.gate.close_session(previous)
        session = self.gate.open_session(user)
        log.info("admin: %s logged in from %s (%s)", user, address, self.role(user))
        _json(exchange, 200, {"user": user, "role": self.role(user), "csrf": session.csrf},
              self.gate.set_cookie(session, exchange.scheme == "https"))


def _unix_peer(exchange: Any) -> str:
    from dropins.console.peercred import _user_name, peer_uid

    transport = exchange.connection.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    uid = peer_uid(sock) if sock is not None else None
    if uid is None or uid not in (os.geteuid(), 0):
        raise ApiError(403, f"this admin socket is only for uid {os.geteuid()} and root")
    return _user_name(uid)


async def _read_body(exchange: Any) -> bytes:
    from dropins.web.exchange import BodyError

    if exchange.body is None:
        return b""
    chunks = []
    try:
        while chunk := await exchange.body.read_chunk():
            chunks.append(chunk)
    except BodyError as error:
        raise ApiError(error.status, str(error))
    return b"".join(chunks)


def _json(exchange: Any, status: int, value: Any, *headers: tuple[bytes, bytes]) -> None:
    body = json.dumps(value, indent=1, default=str).encode() + b"\n"
    exchange.respond(status, [(b"Content-Type", b"application/json"), *_SECURITY, *headers],
                     body)


def _json_error(status: int, message: str) -> tuple[bytes, bytes]:
    if status == 413:
        message = f"the request body is larger than {MAX_BODY // 1024} KiB"
    return b"application/json", json.dumps({"error": message}, indent=1).encode() + b"\n"


def _static(exchange: Any, name: str, content_type: bytes) -> None:
    data = resources.files("dropins.admin").joinpath("static", name).read_bytes()
    exchange.respond(200, [(b"Content-Type", content_type), *_SECURITY], data)
