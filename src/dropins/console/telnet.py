"""The console over telnet: a minimal, correct NVT (RFC 854/855) with a password login.

Telnet commands are taken out of the stream before it is split into lines: ``IAC IAC`` is a
data byte 255, ``IAC IP``/``BRK``/``ABORT``/``SUSP`` interrupt the running statement (what
a telnet client sends for Ctrl-C), ``IAC EOF`` ends the input, subnegotiations are skipped,
and the other commands are ignored.  Option negotiation follows RFC 854's rule of never
acknowledging a state already in force, so it cannot loop: every option a client offers or
asks for is refused, except ``ECHO``, which the server turns on around the password prompt
(the client then stops echoing what is typed) and off again after it.  Line editing is the
client's own (telnet clients edit a line locally before sending it).

Passwords cross the network in clear text, which is why ``dropins console`` refuses telnet on
an address other machines can reach unless ``--insecure`` is given.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dropins.console.lines import LineProtocol
from dropins.console.login import LoginDenied

__all__ = ["LOGIN_TIMEOUT", "MAX_ATTEMPTS", "TelnetProtocol"]

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
IP, BRK, ABORT, SUSP, EOF = 244, 243, 238, 237, 236
ECHO = 1
_INTERRUPTS = {IP, BRK, ABORT, SUSP}

#: Wrong passwords one connection may try before it is closed.
MAX_ATTEMPTS = 3
#: Seconds a connection has to log in (as OpenSSH's LoginGraceTime, shorter).
LOGIN_TIMEOUT = 60.0


class TelnetProtocol(LineProtocol):
    """A telnet connection to the console; ``login`` is a ``PasswordLogin``."""

    kind = "telnet"
    newline = "\r\n"

    def __init__(self, console: Any, login: Any) -> None:
        super().__init__(console)
        self.login = login
        self._state = "data"  # data, iac, option (after a verb), sb, sb-iac
        self._verb = 0
        self._echoing = False  # whether the server has said WILL ECHO

    # ---- the NVT -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        plain = bytearray()
        for byte in data:
            state = self._state
            if state == "data":
                if byte == IAC:
                    self._state = "iac"
                else:
                    plain.append(byte)
            elif state == "iac":
                self._state = "data"
                if byte == IAC:
                    plain.append(IAC)
                elif byte in (DO, DONT, WILL, WONT):
                    self._verb, self._state = byte, "option"
                elif byte == SB:
                    self._state = "sb"
                else:
                    self.feed(bytes(plain))
                    plain.clear()
                    self._command(byte)
            elif state == "option":
                self._state = "data"
                self._negotiate(self._verb, byte)
            elif state == "sb":
                if byte == IAC:
                    self._state = "sb-iac"
            else:  # sb-iac: IAC SE ends the subnegotiation, IAC IAC is data inside it
                self._state = "data" if byte == SE else "sb"
        self.feed(bytes(plain))

    def eof_received(self) -> bool:
        """A telnet client never half-closes: the end of its stream means it left, and what
        it left running is cancelled (``connection_lost``)."""
        return False

    def _command(self, byte: int) -> None:
        if byte in _INTERRUPTS:
            self.interrupt()
        elif byte == EOF:
            self.end_of_input()

    def _negotiate(self, verb: int, option: int) -> None:
        if verb == DO:
            if option == ECHO and self._echoing:
                return  # the client agrees to what we asked
            self.write_bytes(bytes((IAC, WONT, option)))
        elif verb == WILL:
            self.write_bytes(bytes((IAC, DONT, option)))
        # DONT and WONT: we never enable anything but ECHO, whose DONT needs no answer

    def set_echo(self, on: bool) -> None:
        """Ask the client to stop (``on``) or resume echoing what the user types."""
        self._echoing = on
        self.write_bytes(bytes((IAC, WILL if on else WONT, ECHO)))

    def send(self, text: str) -> None:
        data = text.replace("\n", self.newline).encode("utf-8", "replace")
        self.write_bytes(data.replace(b"\xff", b"\xff\xff"))

    # ---- the login -----------------------------------------------------------------------

    async def welcome(self) -> None:
        try:
            async with asyncio.timeout(LOGIN_TIMEOUT):
                await self._login()
        except TimeoutError:
            self.send(f"\nno login within {LOGIN_TIMEOUT:.0f} s\n")
            self.close()

    async def _login(self) -> None:
        address = self.peer().rpartition(":")[0]
        for _ in range(MAX_ATTEMPTS):
            self.send("login: ")
            user = await self.next_line()
            if user is None:
                break
            self.set_echo(True)
            self.send("Password: ")
            password = await self.next_line()
            self.set_echo(False)
            self.send("\n")
            if password is None:
                break
            try:
                name = await self.login.login(address, user, password)
            except LoginDenied as denied:
                self.send(f"{denied}\n")
                if denied.final:
                    break
                continue
            self.open_session(name)
            return
        self.close()
