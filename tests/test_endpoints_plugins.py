"""Endpoint kinds from plugins: a dev plugin folder adds ``myproto:`` in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import clean_env, write_tree

PLUGIN = '''
    """A plugin adding the myproto endpoint kind: tcp on loopback, with a required port."""
    import socket

    from zope.interface import implementer

    from dropins.plugin.interfaces import IPlugin
    from dropins.service.endpoint_inet import TCPServerEndpoint
    from dropins.service.endpoints import bind_fields, parse_port
    from dropins.service.errors import EndpointError
    from dropins.service.interfaces import IServerEndpointParser


    @implementer(IPlugin, IServerEndpointParser)
    class MyProtoParser:
        prefix = "myproto"

        def parse(self, args, kwargs):
            fields = bind_fields("myproto", args, kwargs, ["port"], ["greeting"])
            if "port" not in fields:
                raise EndpointError("port is missing, as in myproto:8080")
            endpoint = TCPServerEndpoint(parse_port(fields["port"]), "127.0.0.1",
                                         socket.AF_INET)
            endpoint.greeting = fields.get("greeting", "hello")
            return endpoint


    myproto = MyProtoParser()
'''

SCRIPT = '''
    import asyncio

    from dropins.service import EndpointError, StreamServerService, parse_endpoint

    for bad in ("myproto:http", "myprot:1"):
        try:
            parse_endpoint(bad)
        except EndpointError as error:
            print("error:", error)

    endpoint = parse_endpoint(r"myproto:0:greeting=hi\\:there")
    print("greeting:", endpoint.greeting)

    async def handle(reader, writer):
        writer.write(endpoint.greeting.encode() + b" " + await reader.readline())

    async def main():
        service = StreamServerService(endpoint, handle, shutdown_timeout=1)
        await service.start()
        host, port = service.addresses[0].split(":")[1:]
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"world\\n")
        print("reply:", (await asyncio.wait_for(reader.readline(), 5)).decode().strip())
        writer.close()
        await service.stop()

    asyncio.run(asyncio.wait_for(main(), 15))
'''


def test_a_dev_plugin_adds_an_endpoint_kind(tmp_path: Path) -> None:
    write_tree(tmp_path, {"dropins/plugins/myproto_endpoint.py": PLUGIN,  # no __init__.py
                          "script.py": SCRIPT})
    result = subprocess.run([sys.executable, str(tmp_path / "script.py")], cwd=tmp_path,
                            env=clean_env({"PYTHONPATH": str(tmp_path)}), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "error: invalid endpoint 'myproto:http': port must be a number from 0 " \
                       "to 65535, got 'http'"
    assert lines[1].startswith("error: unknown endpoint kind 'myprot' in 'myprot:1' "
                               "(did you mean 'myproto'?); known kinds: ")
    assert "myproto" in lines[1].split("known kinds: ")[1].split(", ")
    assert lines[2:] == ["greeting: hi:there", "reply: hi:there world"]
