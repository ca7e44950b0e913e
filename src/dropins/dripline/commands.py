"""The commands ``dropins dl-serve``, ``dl-agent`` and ``dl-mon`` (service makers).

``dl-agent`` does its one request while the service is being made and exits with the reply's
verdict (0 for return code 0, else 1), so it needs no service tree; the other two return
services that the runner runs like any other.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from dropins.dripline.mesh import ConfigError, Mesh, mesh_from
from dropins.options import Argument, Flag, Options, Parameter, UsageError
from dropins.service.base import Service as BaseService


def _broker(text: str) -> tuple[str, int | None]:
    host, colon, port = text.rpartition(":")
    if colon and port.isdigit():
        return host, int(port)
    if colon:
        raise UsageError(f"invalid --broker {text!r}: give HOST or HOST:PORT")
    return text, None


class MeshOptions(Options):
    broker = Parameter(short="b", type=_broker, metavar="HOST[:PORT]",
                       help="The RabbitMQ broker (default: dripline_mesh's, else localhost).")
    password_file = Parameter(metavar="FILE",
                              help="Read the broker password from FILE's first line (else "
                                   "DRIPLINE_PASSWORD, else guest).")


def _mesh(options: Any, block: Any = None) -> Mesh:
    try:
        mesh = mesh_from(block, password_file=options["password_file"])
    except ConfigError as error:
        raise UsageError(str(error)) from None
    if options["broker"] is not None:
        mesh.broker, port = options["broker"]
        mesh.broker_port = port or mesh.broker_port
    return mesh


class ServeOptions(MeshOptions):
    description = "Serve a dripline service described by a dl-serve YAML file."
    config = Parameter(short="c", required=True, metavar="FILE.yaml",
                       help="The service's YAML file (name, module, endpoints, dripline_mesh).")


def serve(options: Any) -> Any:
    from dropins.dripline.loading import build_service, load_yaml

    path = options["config"]
    try:
        document = load_yaml(path)
        service = build_service(document, password_file=options["password_file"], source=path)
    except ConfigError as error:
        raise UsageError(str(error)) from None
    if options["broker"] is not None:
        service.mesh.broker, port = options["broker"]
        service.mesh.broker_port = port or service.mesh.broker_port
    return service


class AgentOptions(MeshOptions):
    description = "Send one dripline request and print the reply."
    specifier = Parameter(short="s", default="", metavar="SPECIFIER",
                          help="The request's specifier.")
    lockout_key = Parameter(short="k", default="", metavar="KEY", help="The lockout key.")
    timeout = Parameter(short="t", type=float, default=10.0, metavar="SECONDS",
                        help="How long to wait for the reply (default 10).")
    json = Flag(help="Print the whole reply (code, message, payload, sender_info) as JSON.")
    operation = Argument(choices=("get", "set", "cmd"), metavar="get|set|cmd",
                         help="The operation.")
    routing_key = Argument(metavar="ROUTING_KEY", help="Where to send it.")
    words = Argument(nargs="*", metavar="VALUES", help="Values, then k=v keyword arguments.")

    @classmethod
    def _parse_with(cls, parser: Any, argv: Any) -> Any:
        """Options may come after the values too (``cmd wob -s update_seed 7``), as with
        dripline's dl-agent: argparse's intermixed parsing allows it."""
        original = parser.parse_args
        parser.parse_args = parser.parse_intermixed_args
        try:
            return super()._parse_with(parser, argv)
        finally:
            parser.parse_args = original


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def request_payload(words: list[str]) -> dict[str, Any]:
    """``values`` from the plain words, other keys from ``k=v`` words (values read as JSON)."""
    payload: dict[str, Any] = {}
    values = []
    for word in words:
        key, equals, value = word.partition("=")
        if equals and key.isidentifier():
            payload[key] = _value(value)
        else:
            values.append(_value(word))
    if values:
        payload["values"] = values
    return payload


def agent(options: Any) -> Any:
    import logging

    from dropins.dripline.client import Client

    logging.getLogger("aiormq").setLevel(logging.CRITICAL)  # our one line says it all
    mesh = _mesh(options)
    payload = request_payload(list(options["words"]))
    if options["operation"] == "set" and "values" not in payload:
        raise UsageError("set needs a value, e.g. dl-agent set peaches 1.5")

    async def send() -> Any:
        async with Client(mesh) as client:
            return await client.request(options["operation"], options["routing_key"], payload,
                                        specifier=options["specifier"],
                                        lockout_key=options["lockout_key"],
                                        timeout=options["timeout"])
    try:
        reply = asyncio.run(send())
    except Exception as error:
        sys.stderr.write(f"dl-agent: cannot reach the broker at {mesh.broker}:"
                         f"{mesh.broker_port}: {error or type(error).__name__}\n")
        raise SystemExit(1) from None
    if options["json"]:
        print(json.dumps({"return_code": reply.return_code,
                          "return_message": reply.return_message, "payload": reply.payload,
                          "sender_info": reply.sender}, indent=2, sort_keys=True))
    elif reply.return_code == 0:
        print(reply.payload if isinstance(reply.payload, str) else json.dumps(reply.payload))
    if reply.return_code != 0:
        sys.stderr.write(f"{reply.return_code}: {reply.return_message}\n")
    sys.stdout.flush()
    raise SystemExit(0 if reply.return_code == 0 else 1)


class MonitorOptions(MeshOptions):
    description = "Print the requests and alerts seen on the exchanges, one line each."
    requests = Parameter(short="r", multiple=True, default=[], metavar="KEYS",
                         help="Binding keys on the requests exchange (repeatable, '#' for all).")
    alerts = Parameter(short="a", multiple=True, default=[], metavar="KEYS",
                       help="Binding keys on the alerts exchange (repeatable, '#' for all).")


class Monitor(BaseService):
    """Prints each message it sees: time, exchange, routing key, type, details, payload."""

    def __init__(self, mesh: Mesh, requests: list[str], alerts: list[str]) -> None:
        super().__init__("dl-mon")
        self.mesh, self.request_keys, self.alert_keys = mesh, requests, alerts
        self.connection: Any = None

    async def start(self) -> None:
        import aio_pika

        from dropins.dripline.wire import Assembler

        self.connection = await aio_pika.connect_robust(self.mesh.url, timeout=10)
        channel = await self.connection.channel()
        self._assembler = Assembler(self.mesh.message_wait_ms / 1000)
        for exchange_name, keys in ((self.mesh.requests_exchange, self.request_keys),
                                    (self.mesh.alerts_exchange, self.alert_keys)):
            if not keys:
                continue
            exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC)
            queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
            for key in keys:
                await queue.bind(exchange, routing_key=key)
            await queue.consume(self._print, no_ack=True)

    async def ready(self) -> bool:
        return bool(self.connection is not None and self.connection.connected.is_set())

    async def _print(self, incoming: Any) -> None:
        from dropins.dripline.wire import OPERATION_NAMES, TYPE_NAMES

        try:
            message = self._assembler.add(incoming)
        except ValueError as error:
            print(f"{incoming.exchange} {incoming.routing_key} undecodable: {error}", flush=True)
            return
        if message is None:
            return
        kind = TYPE_NAMES.get(message.message_type, str(message.message_type))
        detail = ""
        if kind == "request":
            operation = -1 if message.operation is None else message.operation
            detail = f" {OPERATION_NAMES.get(operation, '?')}"
            detail += f" specifier={message.specifier!r}" if message.specifier else ""
        elif kind == "reply":
            detail = f" return_code={message.return_code}"
        print(f"{message.stamp} {incoming.exchange} {kind} {message.routing_key}{detail} "
              f"{json.dumps(message.payload)}", flush=True)

    async def stop(self) -> None:
        if self.connection is not None:
            await self.connection.close()


def monitor(options: Any) -> Any:
    if not options["requests"] and not options["alerts"]:
        raise UsageError("give at least one -r KEYS or -a KEYS (e.g. -a '#')")
    return Monitor(_mesh(options), list(options["requests"]), list(options["alerts"]))


class _Command:
    def __init__(self, options: type[Options], make: Any) -> None:
        self.Options, self.make_service = options, make


dl_serve = _Command(ServeOptions, serve)
dl_agent = _Command(AgentOptions, agent)
dl_mon = _Command(MonitorOptions, monitor)
