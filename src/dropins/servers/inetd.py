"""The classic inetd services over TCP: echo (RFC 862), discard (RFC 863), chargen (RFC 864)
and daytime (RFC 867).  They are small, but they prove the stack end to end.

Each is an ``asyncio.Protocol`` that respects flow control, so a client that does not read can
never make the server buffer without bound: echo stops reading while its output is paused, and
chargen produces the next block only while the transport accepts more.

Each command (``echo``, ``discard``, ``chargen``, ``daytime``) is an ``InetdCommand``, which has
the ``Options`` and ``make_service`` that ``ServiceMaker`` targets such as
``"dropins.servers.inetd:echo"`` need.  Defaults listen on loopback only, on unprivileged ports
(8000 + the classic port number): a default must never expose a service to the network.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from dropins.options import Options, Parameter

__all__ = ["Chargen", "Daytime", "Discard", "Echo", "InetdCommand", "chargen", "chargen_line",
           "daytime", "daytime_text", "discard", "echo"]


class Echo(asyncio.Protocol):
    """Send back every byte received; pause reading while the output is paused."""

    transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def eof_received(self) -> bool:
        return False  # the client is done sending: close once our echo is flushed

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


class Discard(asyncio.Protocol):
    """Read and throw away everything; send nothing."""

    def data_received(self, data: bytes) -> None:
        pass


#: The 95 printable ASCII characters, the alphabet of RFC 864's rotating pattern.
_PRINTABLE = bytes(range(32, 127))
LINE_LENGTH = 72


def chargen_line(index: int) -> bytes:
    """Line ``index`` (from 0) of the chargen pattern: 72 characters starting one further on."""
    start = index % len(_PRINTABLE)
    doubled = _PRINTABLE + _PRINTABLE
    return doubled[start:start + LINE_LENGTH] + b"\r\n"


#: One full period of the pattern (95 lines); the protocol writes it block after block.
_CHARGEN_BLOCK = b"".join(chargen_line(index) for index in range(len(_PRINTABLE)))


class Chargen(asyncio.Protocol):
    """Send the RFC 864 character pattern until the client disconnects; ignore its input.

    One block is written per turn of the event loop and only while the transport is not paused,
    so the amount buffered never exceeds the transport's high-water mark plus one block, and
    other connections keep being served.
    """

    transport: asyncio.Transport | None = None
    paused = False
    _scheduled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._schedule()

    def _schedule(self) -> None:
        """Produce on the next loop turn; at most one production is ever pending."""
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._produce)

    def _produce(self) -> None:
        self._scheduled = False
        transport = self.transport
        if transport is None or transport.is_closing() or self.paused:
            return
        transport.write(_CHARGEN_BLOCK)  # may call pause_writing() before returning
        if not self.paused:
            self._schedule()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._schedule()

    def data_received(self, data: bytes) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def graceful_shutdown(self) -> None:
        """Chargen never finishes by itself: on shutdown, end the stream at once."""
        if self.transport is not None:
            self.transport.close()


def daytime_text(now: float | None = None) -> bytes:
    """The local date and time in RFC 867's suggested human form, e.g.
    ``Tuesday, February 22, 1982 17:37:43-PST``."""
    moment = time.localtime(time.time() if now is None else now)
    zone = time.strftime("%Z", moment) or time.strftime("%z", moment)
    return (time.strftime("%A, %B %d, %Y %H:%M:%S", moment) + f"-{zone}\r\n").encode("ascii",
                                                                                      "replace")


class Daytime(asyncio.Protocol):
    """Send the date and time as one line, then close."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writer = cast(asyncio.WriteTransport, transport)
        writer.write(daytime_text())
        writer.close()


class InetdCommand:
    """One inetd service as a command: its ``Options`` and ``make_service``."""

    def __init__(self, name: str, protocol: type[asyncio.Protocol], classic_port: int,
                 summary: str) -> None:
        self.name = name
        self.protocol = protocol
        self.default_listen = f"tcp:{8000 + classic_port}:interface=127.0.0.1"

        class CommandOptions(Options):
            description = summary
            listen = Parameter(short="l", multiple=True, metavar="ENDPOINT",
                               default=[self.default_listen],
                               help="Where to listen, e.g. tcp:8080 or tcp:0:interface=127.0.0.1 "
                                    f"(repeatable; default: {self.default_listen}).")

        CommandOptions.__name__ = CommandOptions.__qualname__ = f"{name.capitalize()}Options"
        self.Options = CommandOptions

    def __repr__(self) -> str:
        return f"<InetdCommand {self.name}>"

    def make_service(self, options: Any) -> Any:
        """A service listening on every ``--listen`` endpoint."""
        from dropins.service import MultiService, StreamServerService

        service = MultiService(self.name)
        for index, endpoint in enumerate(options["listen"]):
            service.add_service(StreamServerService(endpoint, self.protocol,
                                                    name=f"{self.name}-{index}"))
        return service


echo = InetdCommand("echo", Echo, 7, "Echo back whatever clients send (RFC 862).")
discard = InetdCommand("discard", Discard, 9, "Read and discard whatever clients send (RFC 863).")
chargen = InetdCommand("chargen", Chargen, 19,
                       "Send a rotating character pattern until the client leaves (RFC 864).")
daytime = InetdCommand("daytime", Daytime, 13, "Send the date and time, then close (RFC 867).")
