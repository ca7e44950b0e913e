"""Helpers for the admin's tests: an application of three services run with ``--admin``, and
a small JSON client (HTTP Basic, or a cookie session) with deadlines."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _config_helpers import shop_folder
from _runner_helpers import Dropins
from conftest import get_free_port, write_tree

USERS = "memory:alice:alice-secret:bob:bob-secret"


def shop_toml(echo: int, site: int) -> str:
    return f'''# The shop: kept by hand, edited from the admin.
name = "shop"

[services.echo]  # the echo service
command = "echo"
listen = "tcp:{echo}:interface=127.0.0.1"

[services.site]
command = "web"
path = "public"
listen = "tcp:{site}:interface=127.0.0.1"

[services.jobs]
factory = "shopjobs:make_service"
interval = 5
'''


class Shop:
    """A running ``dropins --admin ... -c shop.toml`` and its ports."""

    def __init__(self, process: Dropins, folder: Path, admin: int, echo: int,
                 site: int) -> None:
        self.process = process
        self.folder = folder
        self.admin = admin
        self.echo = echo
        self.site = site

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.admin}"


@contextmanager
def running_shop(folder: Path, *extra: str) -> Iterator[Shop]:
    shop_folder(folder)
    echo, site, admin = get_free_port(), get_free_port(), get_free_port()
    write_tree(folder, {"shop.toml": shop_toml(echo, site)})
    with Dropins("--admin", f"tcp:{admin}:interface=127.0.0.1", "--admin-auth", USERS,
                 "--admin-role", "alice=operator", "--shutdown-timeout", "3", *extra,
                 "-c", "shop.toml", cwd=folder) as process:
        process.ready()
        yield Shop(process, folder, admin, echo, site)


def request(port: int, method: str, path: str, body: Any = None, *,
            user: str | None = "alice", headers: dict[str, str] | None = None,
            raw: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    """(status, headers, decoded JSON body) of one request to the admin on ``port``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    sent = dict(headers or {})
    if user is not None:
        password = f"{user}-secret" if ":" not in user else user.split(":", 1)[1]
        name = user.split(":", 1)[0]
        token = base64.b64encode(f"{name}:{password}".encode()).decode()
        sent["Authorization"] = f"Basic {token}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    if data is not None:
        sent.setdefault("Content-Type", "application/json")
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        text = response.read()
        answer = dict((key.lower(), value) for key, value in response.getheaders())
    finally:
        connection.close()
    decoded = json.loads(text) if answer.get("content-type") == "application/json" else text
    return response.status, answer, decoded
