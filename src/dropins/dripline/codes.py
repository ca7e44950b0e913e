"""dripline's return codes (the standard's table) and the exception a handler raises to pick one.

A handler that raises anything else is answered with 999 and the exception's message: the
service never dies of a bad request.
"""

from __future__ import annotations

from enum import IntEnum


class ReturnCode(IntEnum):
    SUCCESS = 0
    NO_ACTION = 1
    DEPRECATED = 2
    DRY_RUN = 3
    OFFLINE = 4
    SUBSERVICE = 5
    AMQP_ERROR = 100
    AMQP_CONNECTION = 101
    ROUTING_KEY_NOT_FOUND = 102
    RESOURCE_ERROR = 200
    RESOURCE_CONNECTION = 201
    RESOURCE_NO_RESPONSE = 202
    SERVICE_ERROR = 300
    NO_ENCODING = 301
    DECODING_FAILURE = 302
    BAD_PAYLOAD = 303
    INVALID_VALUE = 304
    SERVICE_TIMEOUT = 305
    INVALID_METHOD = 306
    ACCESS_DENIED = 307
    INVALID_KEY = 308
    INVALID_SPECIFIER = 310
    CLIENT_ERROR = 400
    INVALID_REQUEST = 401
    HANDLING_REPLY = 402
    UNABLE_TO_SEND = 403
    CLIENT_TIMEOUT = 404
    UNHANDLED_EXCEPTION = 999


class ThrowReply(Exception):
    """Raised by a handler to answer with ``code`` and ``message`` instead of a payload."""

    def __init__(self, code: int, message: str, payload: object = None) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message
        self.payload = payload
