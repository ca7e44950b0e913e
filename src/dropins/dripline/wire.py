"""dripline messages on AMQP: headers, JSON bodies, chunking and reassembly.

Field names and values follow dripline-cpp (``content_encoding`` application/json, ``message_id``
``UUID/chunk/total``, a ``headers`` table with ``message_type`` 2/3/4 for reply/request/alert).
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

REPLY, REQUEST, ALERT = 2, 3, 4
OP_SET, OP_GET, OP_CMD = 0, 1, 9
OPERATIONS = {"set": OP_SET, "get": OP_GET, "cmd": OP_CMD}
OPERATION_NAMES = {value: name for name, value in OPERATIONS.items()}
TYPE_NAMES = {REPLY: "reply", REQUEST: "request", ALERT: "alert"}
ENCODING = "application/json"


def timestamp() -> str:
    """RFC 3339 with microseconds, UTC, as the standard asks."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sender_info(service_name: str = "", versions: dict[str, Any] | None = None) -> dict[str, Any]:
    """Who sends: executable, host, user, service and the versions of what is loaded."""
    import dropins

    known = {"dropins": {"version": dropins.__version__, "commit": "", "package": "dropins"}}
    known.update(versions or {})
    try:
        user = getpass.getuser()
    except Exception:
        user = ""
    exe = os.path.basename(sys.argv[0])
    return {"exe": "dropins" if exe in ("", "__main__.py") else exe,
            "hostname": socket.gethostname(), "username": user,
            "service_name": service_name, "versions": known}


@dataclass
class Message:
    """One dripline message, whole (after reassembly)."""

    message_type: int
    payload: Any = None
    routing_key: str = ""
    specifier: str = ""
    operation: int | None = None
    lockout_key: str = ""
    return_code: int = 0
    return_message: str = ""
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    reply_to: str = ""
    sender: dict[str, Any] = field(default_factory=dict)
    stamp: str = field(default_factory=timestamp)

    def headers(self) -> dict[str, Any]:
        headers: dict[str, Any] = {"message_type": self.message_type, "specifier": self.specifier,
                                   "timestamp": self.stamp, "sender_info": self.sender}
        if self.message_type == REQUEST:
            headers["message_operation"] = self.operation
            headers["lockout_key"] = self.lockout_key
        elif self.message_type == REPLY:
            headers["return_code"] = self.return_code
            headers["return_message"] = self.return_message
        return headers


def chunks(message: Message, max_payload_size: int) -> list[Any]:
    """The AMQP messages (``aio_pika.Message``) carrying ``message``, split every
    ``max_payload_size`` characters of its JSON body."""
    import aio_pika

    body = json.dumps(message.payload)
    size = max(1, max_payload_size)
    pieces = [body[start:start + size] for start in range(0, len(body), size)] or [""]
    base = str(uuid.uuid4())
    return [aio_pika.Message(piece.encode(), content_encoding=ENCODING,
                             correlation_id=message.correlation_id,
                             message_id=f"{base}/{index}/{len(pieces)}",
                             reply_to=message.reply_to or None, headers=message.headers())
            for index, piece in enumerate(pieces)]


class DecodeError(ValueError):
    """A message that is not dripline (its code says which check failed)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


def _split_id(message_id: str | None) -> tuple[str, int, int]:
    parts = (message_id or "").split("/")
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit() and int(parts[2]) > 0:
        return parts[0], int(parts[1]), int(parts[2])
    return message_id or str(uuid.uuid4()), 0, 1


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value if value is not None else "")


def _plain(value: Any) -> Any:
    """AMQP tables come back with bytes and nested types; make them JSON-friendly."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


class Assembler:
    """Joins chunked messages; a message with missing chunks is given up after ``wait_s``
    with the gaps filled with ``#`` (as dripline-cpp does), so it then fails to decode."""

    def __init__(self, wait_s: float = 1.0) -> None:
        self.wait_s = wait_s
        self._partial: dict[str, tuple[float, list[str | None], Any]] = {}

    def add(self, incoming: Any) -> Message | None:
        """Feed one AMQP message; return the whole dripline message once complete."""
        if _text(incoming.content_encoding) != ENCODING:
            raise DecodeError(301, f"content_encoding must be {ENCODING}")
        base, index, total = _split_id(incoming.message_id)
        if total == 1:
            return self._decode(incoming, incoming.body.decode(errors="replace"))
        first, pieces, head = self._partial.get(base, (time.monotonic(), [None] * total, incoming))
        if index < len(pieces):
            pieces[index] = incoming.body.decode(errors="replace")
        self._partial[base] = (first, pieces, head)
        if all(piece is not None for piece in pieces):
            del self._partial[base]
            return self._decode(head, "".join(piece or "" for piece in pieces))
        return None

    def expire(self) -> list[Message]:
        """Messages waited for too long (completed with ``#``; usually undecodable)."""
        now, done = time.monotonic(), []
        for base, (first, pieces, head) in list(self._partial.items()):
            if now - first > self.wait_s:
                del self._partial[base]
                try:
                    done.append(self._decode(head, "".join(p or "#" for p in pieces)))
                except DecodeError:
                    pass
        return done

    def _decode(self, incoming: Any, body: str) -> Message:
        headers = _plain(incoming.headers or {})
        try:
            payload = json.loads(body) if body else None
        except ValueError as error:
            raise DecodeError(302, f"the payload is not JSON: {error}") from None
        try:
            message_type = int(headers.get("message_type", 0))
        except (TypeError, ValueError):
            raise DecodeError(302, "message_type is not a number") from None
        operation = headers.get("message_operation")
        return Message(message_type=message_type, payload=payload,
                       routing_key=incoming.routing_key or "",
                       specifier=_text(headers.get("specifier")),
                       operation=None if operation is None else int(operation),
                       lockout_key=_text(headers.get("lockout_key")),
                       return_code=int(headers.get("return_code") or 0),
                       return_message=_text(headers.get("return_message")),
                       correlation_id=_text(incoming.correlation_id),
                       reply_to=_text(incoming.reply_to), sender=headers.get("sender_info") or {},
                       stamp=_text(headers.get("timestamp")))
