"""``dropins console`` and ``dropins telnet``: their options and the ``ConsoleService`` they build.

``dropins console`` listens on any mix of ``--ssh``, ``--telnet`` and ``--socket``; logins
come from ``--auth`` (passwords) and ``--authorized-keys`` (SSH keys), and a unix socket needs
neither (its peer's uid is checked).  ``dropins telnet -p PORT -u USER -w PASSWORD`` is the
0.19 seed's command: a telnet console on loopback for one user.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from dropins.cred.auth_options import AuthOptions
from dropins.cred.interfaces import IUsernamePassword
from dropins.options import Flag, Parameter, UsageError, path
from dropins.options import Options as BaseOptions

__all__ = ["console", "telnet"]

log = logging.getLogger("dropins.console")

_MISSING_EXTRA = "--ssh needs the 'console' extra: pip install 'dropins[console]'"


def _check_endpoints(option: str, endpoints: list[str]) -> None:
    from dropins.service.endpoints import parse_endpoint

    for endpoint in endpoints:
        try:
            parse_endpoint(endpoint)
        except ValueError as error:
            raise UsageError(f"{option}: {error}") from None


def _refuse_open_telnet(endpoints: list[str]) -> None:
    """Telnet sends passwords and everything typed in clear: loopback (or TLS, unix) only."""
    from dropins.web.auth import insecure_listeners

    unsafe = insecure_listeners(endpoints)
    if unsafe:
        raise UsageError(f"--telnet {unsafe[0]} can be reached from other machines, and telnet "
                         "sends passwords and statements in clear text; listen on loopback "
                         "(tcp:PORT:interface=127.0.0.1), use --ssh, or add --insecure")


class ConsoleOptions(AuthOptions):
    """The options of ``dropins console`` (with ``--auth`` from AuthOptions)."""

    description = ("A Python console into the running application (with top-level await), "
                   "over SSH, telnet or a unix socket.")
    epilog = ("examples:\n"
              "  dropins console --socket console.sock\n"
              "  dropins console --ssh tcp:2222:interface=127.0.0.1 --auth file:users.txt\n"
              "  dropins console --ssh tcp:2222 --authorized-keys ~/.ssh/authorized_keys\n"
              "  dropins console --telnet tcp:8023:interface=127.0.0.1 --auth file:users.txt")
    supported_credential_interfaces = (IUsernamePassword,)

    ssh = Parameter(multiple=True, metavar="ENDPOINT",
                    help="serve the console with SSH here, e.g. tcp:2222:interface=127.0.0.1 "
                         "(repeatable; needs --auth or --authorized-keys)")
    telnet = Parameter(multiple=True, metavar="ENDPOINT",
                       help="serve it with telnet here, e.g. tcp:8023:interface=127.0.0.1 "
                            "(repeatable; loopback only unless --insecure; needs --auth)")
    socket = Parameter(multiple=True, metavar="PATH", type=path,
                       help="serve it on a unix socket (mode 0600) for this process's user "
                            "and root, without a password (repeatable)")
    authorized_keys = Parameter(metavar="PATH", type=path,
                                help="OpenSSH authorized_keys file of the keys that may log in "
                                     "with SSH (re-read at every connection)")
    host_key = Parameter(metavar="PATH", type=path,
                         help="the SSH host key, generated there on first start (default: "
                              "console_ssh_host_ed25519_key in the user's state folder)")
    insecure = Flag(help="allow --telnet on addresses other machines can reach")

    def validate(self) -> None:
        super().validate()
        if not (self["ssh"] or self["telnet"] or self["socket"]):
            raise UsageError("say where to listen: --ssh ENDPOINT, --telnet ENDPOINT or "
                             "--socket PATH (e.g. --socket console.sock)")
        _check_endpoints("--ssh", self["ssh"])
        _check_endpoints("--telnet", self["telnet"])
        if self["telnet"] and not self["auth"]:
            raise UsageError("--telnet needs --auth for its logins (e.g. --auth file:users.txt,"
                             " made with dropins passwd)")
        if self["ssh"] and not (self["auth"] or self["authorized_keys"]):
            raise UsageError("--ssh needs --auth (passwords) or --authorized-keys (keys)")
        if self["telnet"] and not self["insecure"]:
            _refuse_open_telnet(self["telnet"])
        keys = self["authorized_keys"]
        if keys is not None and not os.path.isfile(keys):
            raise UsageError(f"--authorized-keys {keys} is not a file")


def _name(kind: str, index: int) -> str:
    return kind if index == 0 else f"{kind}-{index + 1}"


def build_console(*, telnet: Sequence[str] = (), ssh: Sequence[str] = (),
                  sockets: Sequence[str] = (), portal: Any = None,
                  authorized_keys: str | None = None, host_key: str | None = None,
                  name: str = "console") -> Any:
    """A ConsoleService with the given transports; ``portal`` checks the passwords."""
    from dropins.console.login import PasswordLogin
    from dropins.console.peercred import PeerCheckedProtocol
    from dropins.console.service import ConsoleService
    from dropins.console.telnet import TelnetProtocol
    from dropins.service.endpoint_unix import UNIXServerEndpoint
    from dropins.service.stream import StreamServerService

    service = ConsoleService(name)
    login = PasswordLogin(portal) if portal is not None else None
    for index, endpoint in enumerate(telnet):
        service.add_service(StreamServerService(
            endpoint, lambda: TelnetProtocol(service, login), name=_name("telnet", index)))
    for index, socket_path in enumerate(sockets):
        service.add_service(StreamServerService(
            UNIXServerEndpoint(socket_path, mode=0o600), lambda: PeerCheckedProtocol(service),
            name=_name("socket", index)))
    if ssh:
        try:
            from dropins.console.ssh import SSHConsoleService
        except ImportError:
            raise SystemExit(_MISSING_EXTRA) from None
        from dropins.console.hostkey import default_host_key_path

        for index, endpoint in enumerate(ssh):
            service.add_service(SSHConsoleService(
                endpoint, service, name=_name("ssh", index),
                host_key=host_key or default_host_key_path(), password_login=login,
                authorized_keys=authorized_keys))
    return service


class _Console:
    Options = ConsoleOptions

    @staticmethod
    def make_service(options: Any) -> Any:
        return build_console(telnet=options["telnet"], ssh=options["ssh"],
                             sockets=options["socket"],
                             portal=options.make_portal() if options["auth"] else None,
                             authorized_keys=options["authorized_keys"],
                             host_key=options["host_key"])


def _port(text: str) -> int:
    if not (text.isdigit() and 0 <= int(text) <= 65535):
        raise UsageError(f"-p/--port must be a number from 0 to 65535, got {text!r}")
    return int(text)


class TelnetOptions(BaseOptions):
    """The 0.19 seed's ``mktap telnet`` options."""

    description = ("A Python console on telnet, on loopback, for one user (the Twisted 0.19 "
                   "telnet server). For more, see dropins console --help.")
    port = Parameter(short="p", default=4040, type=_port, help="port on 127.0.0.1 (default: "
                                                               "4040)")
    username = Parameter(short="u", default="admin", help="the user name (default: admin)")
    password = Parameter(short="w", required=True,
                         help="the password (visible in the process list: for quick local use)")

    def validate(self) -> None:
        super().validate()
        if not self["username"]:
            raise UsageError("-u/--username must not be empty")
        if not self["password"]:
            raise UsageError("-w/--password must not be empty")
        from dropins.options_origin import parsing_file

        if parsing_file.get() is None:
            log.warning("dropins telnet: the password given with -w is visible to every user of "
                        "this machine in the process list; for anything but a quick local "
                        "session use dropins console --auth file:FILE")


class _Telnet:
    Options = TelnetOptions

    @staticmethod
    def make_service(options: Any) -> Any:
        from dropins.cred.checkers import InMemoryUsernamePasswordChecker
        from dropins.cred.portal import Portal, UsernameRealm

        checker = InMemoryUsernamePasswordChecker({options["username"]: options["password"]})
        return build_console(telnet=[f"tcp:{options['port']}:interface=127.0.0.1"],
                             portal=Portal(UsernameRealm(), [checker]), name="telnet")


console = _Console()
telnet = _Telnet()
