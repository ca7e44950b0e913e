"""``dropins words --web``: the JSON API behind HTTP Basic creates an account that then logs in
over IRC, sets a topic and kicks a user."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from _runner_helpers import Dropins, host_port
from _words_helpers import Client
from conftest import run_dropins


def _call(base: str, method: str, path: str, body: Any = None,
          user: str = "admin:adminpw") -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", "Basic " + base64.b64encode(user.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None


def test_web_admin_creates_an_account_that_logs_in_over_irc(tmp_path: Path) -> None:
    with Dropins("words", "--irc", "tcp:0:interface=127.0.0.1", "--web",
                 "tcp:0:interface=127.0.0.1", "--db", str(tmp_path / "w.db"),
                 "--auth", "memory:admin:adminpw", cwd=tmp_path) as server:
        addresses = server.ready()
        irc = host_port(next(a for a in addresses if a))
        web_host, web_port = host_port(addresses[1])
        base = f"http://{web_host}:{web_port}"
        assert _call(base, "GET", "/api/accounts", user="admin:wrong")[0] == 401
        assert _call(base, "POST", "/api/accounts", {"name": "zoe", "password": "pw1"}) == \
            (201, {"name": "zoe"})
        assert _call(base, "POST", "/api/accounts", {"name": "zoe", "password": "x"})[0] == 409
        zoe = Client(irc)
        zoe.register("zoe", "PASS pw1")
        zoe.send("JOIN #news")
        zoe.expect("366")
        status, groups = _call(base, "GET", "/api/groups")
        assert status == 200 and groups[0]["members"] == ["@zoe"]
        assert _call(base, "POST", "/api/topic", {"channel": "#news", "topic": "extra"})[0] \
            == 200
        assert zoe.expect("TOPIC")[-1] == "extra"
        users = _call(base, "GET", "/api/users")[1]
        assert users == [{"nick": "zoe", "account": "zoe", "away": None,
                          "channels": ["#news"]}]
        assert _call(base, "POST", "/api/kick", {"channel": "#news", "nick": "zoe"})[0] == 200
        assert zoe.expect("KICK")[3] == "zoe"
        assert _call(base, "POST", "/api/accounts/zoe/password", {"password": "pw2"})[0] == 200
        assert _call(base, "DELETE", "/api/accounts/zoe")[0] == 200
        assert _call(base, "GET", "/api/accounts") == (200, [])
        server.stop()


def test_web_needs_auth(tmp_path: Path) -> None:
    result = run_dropins("words", "--web", "tcp:0:interface=127.0.0.1", cwd=tmp_path)
    assert result.returncode == 2 and "--web needs --auth" in result.stderr
