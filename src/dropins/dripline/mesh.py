"""Where the broker is and how to log in: the ``dripline_mesh:`` block, with dripline's keys
and defaults, plus ``DRIPLINE_USER``/``DRIPLINE_PASSWORD`` or a password file."""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote


class ConfigError(ValueError):
    """A configuration mistake, already worded for the user (one line)."""


@dataclass
class Mesh:
    broker: str = "localhost"
    broker_port: int = 5672
    requests_exchange: str = "requests"
    alerts_exchange: str = "alerts"
    max_payload_size: int = 10000
    heartbeat_routing_key: str = "heartbeat"
    heartbeat_interval_s: float = 60.0
    max_connection_attempts: int = 10
    message_wait_ms: int = 1000
    user: str = "guest"
    password: str = "guest"

    @property
    def url(self) -> str:
        return (f"amqp://{quote(self.user, safe='')}:{quote(self.password, safe='')}@"
                f"{self.broker}:{self.broker_port}/")


_ALIASES = {"port": "broker_port"}


def mesh_from(block: Any, *, password_file: str | None = None, where: str = "dripline_mesh"
              ) -> Mesh:
    """A ``Mesh`` from a mapping (unknown keys refused with the close match), the environment
    and ``password_file`` (its first line)."""
    mesh = Mesh(user=os.environ.get("DRIPLINE_USER", "guest"),
                password=os.environ.get("DRIPLINE_PASSWORD", "guest"))
    if block is None:
        block = {}
    if not isinstance(block, dict):
        raise ConfigError(f"{where}: must be a mapping of settings, not {type(block).__name__}")
    fields = {field.name: field for field in dataclasses.fields(Mesh)}
    for key, value in block.items():
        name = _ALIASES.get(str(key), str(key))
        if name not in fields:
            close = difflib.get_close_matches(str(key), [*fields, *_ALIASES], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown setting {key!r}{hint}")
        default = getattr(Mesh(), name)
        try:
            value = type(default)(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}.{key}: expected {type(default).__name__}, "
                              f"got {value!r}") from None
        setattr(mesh, name, value)
    if password_file:
        try:
            with open(password_file, encoding="utf-8") as stream:
                mesh.password = stream.readline().rstrip("\r\n")
        except OSError as error:
            raise ConfigError(f"--password-file {password_file}: {error.strerror}") from None
    if mesh.max_payload_size < 1:
        raise ConfigError(f"{where}.max_payload_size: must be at least 1")
    return mesh
