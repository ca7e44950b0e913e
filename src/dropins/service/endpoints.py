r"""Endpoint strings: ``tcp:8080:interface=127.0.0.1`` and friends, parsed into server endpoints.

Syntax
------
``KIND:FIELD:FIELD...``.  A field is positional (``8080``) or ``key=value`` (split at the first
``=``).  A backslash makes the next character literal, so ``\:`` is a colon inside a field,
``\=`` an equals sign and ``\\`` a backslash: ``unix:C\:\\run\\app.sock``.  A value that starts
with ``[`` runs to the matching ``]`` and may hold colons unescaped, which is how IPv6 addresses
are usually written: ``tcp6:8080:interface=[::1]`` is the same as ``tcp6:8080:interface=\:\:1``
(the brackets are kept in the value; the tcp6 and ssl kinds accept both spellings).

Built-in kinds::

    tcp:PORT[:interface=ADDR][:backlog=N]           IPv4 (ADDR may be a host name)
    tcp6:PORT[:interface=ADDR][:backlog=N]          IPv6 only (IPV6_V6ONLY is set)
    ssl:PORT:certKey=PEM[:privateKey=PEM][:interface=ADDR][:backlog=N]
    unix:PATH[:mode=0660][:lockfile=1][:backlog=N]
    udp:PORT[:interface=ADDR]                       IPv4 datagrams (DatagramServerService)
    udp6:PORT[:interface=ADDR]                      IPv6 datagrams only (IPV6_V6ONLY is set)
    systemd:domain=INET|INET6|UNIX:index=N          socket activation (LISTEN_FDS)
    systemd:domain=...:name=NAME                    ... by LISTEN_FDNAMES

More kinds come from plugins providing ``IServerEndpointParser`` in ``dropins.plugins``: a
``prefix`` and ``parse(args, kwargs)``, which receives the fields already split and unescaped
and returns an endpoint.  Built-in kinds never consult plugins.

The endpoint protocol
---------------------
An endpoint (what ``parse_endpoint`` returns, and what parser plugins must return) has:

``describe() -> str``
    The endpoint as the user wrote it; used in messages such as ``cannot listen on ...``.
``bind() -> list[socket.socket]``
    Synchronous: create, bind and listen (run before privileges are dropped).  Raise
    ``ListenError`` or ``OSError`` on failure, leaving nothing open behind.
``async serve(loop, sockets, protocol_factory, gate=None) -> asyncio.AbstractServer``
    Serve the protocol on the bound sockets (TLS endpoints wrap connections here); ``gate``,
    a ``dropins.service.accepting.ConnectionGate``, limits connections (a ``serve`` without
    that parameter is called without it).

and optionally ``address(sock) -> str`` (the real address in endpoint style, such as
``tcp:127.0.0.1:43121``) and ``close(sockets)`` (release what ``bind`` took once the server has
closed: remove a unix socket file, drop a lock).  ``dropins.service.serving.SocketEndpoint``
provides all but ``bind``.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dropins.service.errors import EndpointError

__all__ = [
    "EndpointError",
    "bind_fields",
    "known_kinds",
    "parse_bool",
    "parse_endpoint",
    "parse_int",
    "parse_port",
    "register_parser",
    "split_endpoint",
]

#: built-in kind -> (module, parse function); modules are imported only when their kind is used
_BUILTIN: dict[str, tuple[str, str]] = {
    "tcp": ("dropins.service.endpoint_inet", "parse_tcp"),
    "tcp6": ("dropins.service.endpoint_inet", "parse_tcp6"),
    "ssl": ("dropins.service.endpoint_inet", "parse_ssl"),
    "udp": ("dropins.service.endpoint_datagram", "parse_udp"),
    "udp6": ("dropins.service.endpoint_datagram", "parse_udp6"),
    "unix": ("dropins.service.endpoint_unix", "parse_unix"),
    "systemd": ("dropins.service.endpoint_systemd", "parse_systemd"),
}

#: parsers registered in-process with register_parser(), by prefix
_REGISTERED: dict[str, Any] = {}

_PLUGIN_INTERFACE = "dropins.service.interfaces.IServerEndpointParser"


def split_endpoint(description: str) -> tuple[str, list[str], dict[str, str]]:
    """Split ``description`` into its kind, positional fields and ``key=value`` fields.

    Raises ``EndpointError`` for a dangling backslash, an unclosed ``[`` or a repeated key.
    """
    fields: list[tuple[str, int | None]] = []  # (text, offset of the first unescaped "=")
    text: list[str] = []
    size = 0  # characters in text
    equals: int | None = None
    index, length = 0, len(description)
    while index < length:
        char = description[index]
        if char == "\\":
            if index + 1 == length:
                raise _invalid(description, "it ends with a lone backslash (write \\\\ for one)")
            chunk = description[index + 1]
            index += 2
        elif char == "[" and (size == 0 or (equals is not None and size == equals + 1)):
            close = description.find("]", index)
            if close < 0:
                raise _invalid(description, "a '[' is never closed by ']'")
            chunk = description[index:close + 1]
            index = close + 1
        elif char == ":":
            fields.append(("".join(text), equals))
            text, size, equals = [], 0, None
            index += 1
            continue
        else:
            if char == "=" and equals is None:
                equals = size
            chunk = char
            index += 1
        text.append(chunk)
        size += len(chunk)
    fields.append(("".join(text), equals))

    (kind, kind_equals), rest = fields[0], fields[1:]
    if not kind or kind_equals is not None:
        raise _invalid(description, "it must start with a kind, as in 'tcp:8080'")
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for field, field_equals in rest:
        if field_equals is None:
            args.append(field)
            continue
        key, value = field[:field_equals], field[field_equals + 1:]
        if not key:
            raise _invalid(description, f"field {field!r} has no name before '='")
        if key in kwargs:
            raise _invalid(description, f"field {key!r} is given twice")
        kwargs[key] = value
    return kind.lower(), args, kwargs


def parse_endpoint(description: str) -> Any:
    """Parse an endpoint string into a server endpoint (see the module documentation).

    Raises ``EndpointError`` with a one-line message naming the string and the faulty field.
    """
    if not isinstance(description, str):
        raise TypeError(f"an endpoint description must be a string, not {type(description)!r}")
    kind, args, kwargs = split_endpoint(description.strip())
    if kind in _BUILTIN:
        module, function = _BUILTIN[kind]
        builtin = getattr(importlib.import_module(module), function)
        try:
            return builtin(args, kwargs, description=description)
        except EndpointError as error:
            raise _reword(description, error) from None
    parser = _REGISTERED.get(kind) or _plugin_parsers().get(kind)
    if parser is None:
        raise _unknown_kind(description, kind)
    try:
        endpoint = parser.parse(list(args), dict(kwargs))
    except EndpointError as error:
        raise _reword(description, error) from None
    _remember_description(endpoint, description)
    return endpoint


def register_parser(parser: Any) -> None:
    """Add an endpoint kind in this process: ``parser`` has ``prefix`` and ``parse(args, kwargs)``.

    Plugins are the usual way to add kinds; this suits applications that embed the service
    layer and tests.  A built-in kind cannot be replaced.
    """
    prefix = str(parser.prefix).lower()
    if prefix in _BUILTIN:
        raise ValueError(f"endpoint kind {prefix!r} is built in and cannot be replaced")
    _REGISTERED[prefix] = parser


def known_kinds() -> list[str]:
    """Every endpoint kind available: built-in, registered and from plugins, sorted."""
    return sorted(set(_BUILTIN) | set(_REGISTERED) | set(_plugin_parsers()))


def _plugin_parsers() -> dict[str, Any]:
    """Endpoint parser plugins by prefix; the first plugin providing a prefix wins."""
    try:
        get_plugins = importlib.import_module("dropins.plugin").get_plugins
    except (ImportError, AttributeError):  # the plugin system is optional for the service layer
        return {}
    found: dict[str, Any] = {}
    try:
        for parser in get_plugins(_PLUGIN_INTERFACE):
            prefix = getattr(parser, "prefix", None)
            if isinstance(prefix, str) and prefix.lower() not in found:
                found[prefix.lower()] = parser
    except Exception as error:  # a broken plugin system must not hide the built-in kinds
        import logging

        logging.getLogger("dropins.service").warning(
            "cannot look up endpoint parser plugins: %s", error)
    return found


def _remember_description(endpoint: Any, description: str) -> None:
    """Let ``describe()`` default to the string as written, for plugin endpoints without one."""
    if not callable(getattr(endpoint, "describe", None)):
        try:
            endpoint.describe = lambda: description
        except AttributeError:
            pass


def _invalid(description: str, reason: str) -> EndpointError:
    return EndpointError(f"invalid endpoint {description!r}: {reason}")


def _reword(description: str, error: EndpointError) -> EndpointError:
    message = str(error)
    if message.startswith("invalid endpoint "):
        return error
    return _invalid(description, message)


def _unknown_kind(description: str, kind: str) -> EndpointError:
    kinds = known_kinds()
    close = difflib.get_close_matches(kind, kinds, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return EndpointError(f"unknown endpoint kind {kind!r} in {description!r}{hint}; "
                         f"known kinds: {', '.join(kinds)}")


# ---- helpers for parsers (built-in and plugins) --------------------------------------------

def bind_fields(kind: str, args: Sequence[str], kwargs: Mapping[str, str],
                positional: Sequence[str], optional: Iterable[str] = ()) -> dict[str, str]:
    """Match fields to names: ``positional`` may also be given as keys; others are keys only.

    Raises ``EndpointError`` for extra positional fields, a field given both ways, or an
    unknown key (with a did-you-mean hint).
    """
    names = list(positional) + [name for name in optional if name not in positional]
    if len(args) > len(positional):
        extra = ":".join(args[len(positional):])
        expected = ", ".join(positional) or "none"
        raise EndpointError(f"unexpected positional field {extra!r} for {kind} "
                            f"(positional fields: {expected}; use key=value for the others)")
    values = dict(zip(positional, args, strict=False))
    for key, value in kwargs.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise EndpointError(f"unknown field {key!r} for {kind}{hint}; "
                                f"known fields: {', '.join(sorted(names))}")
        if key in values:
            raise EndpointError(f"field {key!r} is given twice")
        values[key] = value
    return values


def parse_port(text: str, field: str = "port") -> int:
    """A TCP port, 0 (any free port) to 65535."""
    if text.isascii() and text.isdigit() and int(text) <= 65535:
        return int(text)
    return _raise(f"{field} must be a number from 0 to 65535, got {text!r}")


def parse_int(text: str, field: str, low: int, high: int) -> int:
    """A decimal integer from ``low`` to ``high``."""
    if text.isascii() and text.isdigit() and low <= int(text) <= high:
        return int(text)
    return _raise(f"{field} must be a number from {low} to {high}, got {text!r}")


def parse_bool(text: str, field: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case)."""
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    return _raise(f"{field} must be 1 or 0 (true or false), got {text!r}")


def _raise(message: str) -> Any:
    raise EndpointError(message)
