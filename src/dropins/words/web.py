"""The web administration of ``dropins words``: a JSON API and one page, behind HTTP Basic.

A minimal stand-in until the admin login seam (cookie sessions, CSRF) lands: every request
needs ``--auth`` credentials (``BasicAuth`` from ``dropins.web.auth``).  Under ``/api/``:
``GET groups``, ``GET users``, ``GET accounts``, ``POST accounts`` ``{"name", "password"}``,
``POST accounts/NAME/password`` ``{"password"}``, ``DELETE accounts/NAME``, ``POST kick``
``{"channel", "nick", "reason"}``, ``POST topic`` ``{"channel", "topic"}``.
"""

from __future__ import annotations

import json
from typing import Any

from dropins.words.realm import Realm

__all__ = ["WordsAdmin"]

MAX_BODY = 65536
PAGE = b"""<!doctype html><meta charset="utf-8"><title>words</title>
<h1>dropins words</h1><pre id="out">loading</pre><script>
Promise.all(["groups", "users", "accounts"].map(p => fetch("api/" + p).then(r => r.json())))
  .then(([g, u, a]) => { document.getElementById("out").textContent =
    JSON.stringify({groups: g, users: u, accounts: a}, null, 2); });
</script>
"""


class WordsAdmin:
    """The handler (``exchange`` -> coroutine) of the admin site; see the module docstring."""

    def __init__(self, realm: Realm) -> None:
        self.realm = realm

    def __call__(self, exchange: Any) -> Any:
        return self._serve(exchange)

    async def _serve(self, exchange: Any) -> None:
        path = exchange.path.decode("utf-8", "replace")
        method = exchange.method.decode()
        if path == "/" and method == "GET":
            exchange.respond(200, [(b"Content-Type", b"text/html; charset=utf-8")], PAGE)
            return
        if not path.startswith("/api/"):
            exchange.respond_error(404)
            return
        parts = path[len("/api/"):].strip("/").split("/")
        body: dict[str, Any] = {}
        if method in ("POST", "PUT"):
            raw = b""
            while chunk := await exchange.body.read_chunk():
                raw += chunk
                if len(raw) > MAX_BODY:
                    self._json(exchange, 413, {"error": "body over 64 KiB"})
                    return
            try:
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise ValueError
            except ValueError:
                self._json(exchange, 400, {"error": "the body must be a JSON object"})
                return
        status, answer = await self._route(method, parts, body)
        self._json(exchange, status, answer)

    async def _route(self, method: str, parts: list[str],
                     body: dict[str, Any]) -> tuple[int, Any]:
        realm, store = self.realm, self.realm.store
        if method == "GET" and parts == ["groups"]:
            return 200, [{"name": c.name, "topic": c.record.topic, "modes": c.record.modes,
                          "members": [c.prefix(u) + u.nick for u in c.members]}
                         for c in realm.channels.values()]
        if method == "GET" and parts == ["users"]:
            return 200, [{"nick": u.nick, "account": u.account, "away": u.away,
                          "channels": [c.name for c in u.channels.values()]}
                         for u in realm.users.values()]
        if method == "GET" and parts == ["accounts"]:
            return 200, store.accounts()
        if method == "POST" and parts == ["accounts"]:
            name, password = body.get("name"), body.get("password")
            if not (isinstance(name, str) and isinstance(password, str) and name and password):
                return 400, {"error": "give a name and a password"}
            if not await realm.register(name, password):
                return 409, {"error": f"account {name} exists"}
            return 201, {"name": name.casefold()}
        if len(parts) == 3 and parts[0] == "accounts" and parts[2] == "password" and \
                method == "POST":
            password = body.get("password")
            if not isinstance(password, str) or not password:
                return 400, {"error": "give a password"}
            if not await realm.reset_password(parts[1], password):
                return 404, {"error": f"no account {parts[1]}"}
            return 200, {"name": parts[1].casefold()}
        if len(parts) == 2 and parts[0] == "accounts" and method == "DELETE":
            if not store.delete_account(parts[1]):
                return 404, {"error": f"no account {parts[1]}"}
            return 200, {"deleted": parts[1].casefold()}
        if method == "POST" and parts in (["kick"], ["topic"]):
            channel = realm.find_channel(str(body.get("channel", "")))
            if channel is None:
                return 404, {"error": "no such channel"}
            if parts == ["topic"]:
                realm.set_topic(realm.server_name, channel, str(body.get("topic", ""))[:390])
                return 200, {"channel": channel.name, "topic": channel.record.topic}
            user = realm.find_user(str(body.get("nick", "")))
            if user is None or user not in channel.members:
                return 404, {"error": "no such nick on that channel"}
            realm.kick(realm.server_name, channel, user, str(body.get("reason", "admin")))
            return 200, {"kicked": user.nick}
        return 404, {"error": "no such API path"}

    @staticmethod
    def _json(exchange: Any, status: int, answer: Any) -> None:
        exchange.respond(status, [(b"Content-Type", b"application/json")],
                         json.dumps(answer).encode())
