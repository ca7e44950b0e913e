"""Helpers for the application-file tests: a shop folder with a site, and a factory module
whose services record their start and stop in a file, so tests can see order and arguments."""

from __future__ import annotations

import http.client
from pathlib import Path

from conftest import write_tree

FACTORY_MODULE = '''
import json
import os

from dropins.service import Service

EVENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "events.txt")


class Recorder(Service):
    def __init__(self, label, interval):
        super().__init__(label)
        self.interval = interval

    async def start(self):
        with open(EVENTS, "a") as events:
            events.write(json.dumps(["start", self.name, self.interval]) + "\\n")
        await super().start()

    async def stop(self):
        with open(EVENTS, "a") as events:
            events.write(json.dumps(["stop", self.name]) + "\\n")
        await super().stop()


def make_service(label="jobs", interval=1):
    return Recorder(label, interval)
'''


def shop_folder(root: Path) -> Path:
    """``root`` with ``public/index.html`` and the factory module ``shopjobs.py``."""
    write_tree(root, {"public/index.html": "welcome to the shop\n",
                      "shopjobs.py": FACTORY_MODULE})
    return root


def events(root: Path) -> list[list[object]]:
    import json

    path = root / "events.txt"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def http_get(port: int, path: str = "/", timeout: float = 5) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def shop_toml(site: int, echo: int) -> str:
    return f'''
        name = "shop"

        [runner]
        log-level = "info"
        shutdown-timeout = 5

        [services.first]
        factory = "shopjobs:make_service"
        label = "first"
        interval = 30

        [services.site]
        command = "web"
        path = "public"
        listen = "tcp:{site}:interface=127.0.0.1"

        [services.echo]
        command = "echo"
        listen = ["tcp:{echo}:interface=127.0.0.1"]

        [services.jobs]
        factory = "shopjobs:make_service"
        label = "jobs"
        interval = 7
        '''


def shop_yaml(site: int, echo: int) -> str:
    return f'''
        name: shop
        runner:
          log-level: info
          shutdown-timeout: 5
        services:
          first:
            factory: "shopjobs:make_service"
            label: first
            interval: 30
          site:
            command: web
            path: public
            listen: "tcp:{site}:interface=127.0.0.1"
          echo:
            command: echo
            listen: ["tcp:{echo}:interface=127.0.0.1"]
          jobs:
            factory: "shopjobs:make_service"
            label: jobs
            interval: 7
        '''
