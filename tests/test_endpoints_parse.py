"""Endpoint strings: splitting, escaping, field checks, and one-line errors for bad strings."""

from __future__ import annotations

import socket

import pytest

from dropins.service import EndpointError, endpoints, parse_endpoint, register_parser
from dropins.service.endpoint_inet import TCPServerEndpoint
from dropins.service.endpoint_systemd import SystemdEndpoint
from dropins.service.endpoint_unix import UNIXServerEndpoint
from dropins.service.endpoints import known_kinds, split_endpoint
from dropins.service.serving import SocketEndpoint


@pytest.mark.parametrize(("text", "expected"), [
    ("tcp:80", ("tcp", ["80"], {})),
    ("TCP:80:interface=127.0.0.1", ("tcp", ["80"], {"interface": "127.0.0.1"})),
    (r"unix:C\:\\run\\app.sock", ("unix", ["C:\\run\\app.sock"], {})),
    (r"tcp6:8080:interface=\:\:1", ("tcp6", ["8080"], {"interface": "::1"})),
    ("tcp6:8080:interface=[::1]", ("tcp6", ["8080"], {"interface": "[::1]"})),
    ("tcp6:8080:interface=[fe80::1%eth0]:backlog=5",
     ("tcp6", ["8080"], {"interface": "[fe80::1%eth0]", "backlog": "5"})),
    (r"unix:/tmp/a\=b:mode=0600", ("unix", ["/tmp/a=b"], {"mode": "0600"})),
    ("x:key=a=b", ("x", [], {"key": "a=b"})),
    ("x:a[1]:b", ("x", ["a[1]", "b"], {})),  # "[" only groups at the start of a value
    ("x", ("x", [], {})),
    ("x::", ("x", ["", ""], {})),
])
def test_split(text: str, expected: tuple[str, list[str], dict[str, str]]) -> None:
    assert split_endpoint(text) == expected


def test_tcp_fields() -> None:
    endpoint = parse_endpoint("tcp:8080:interface=127.0.0.1:backlog=7")
    assert isinstance(endpoint, TCPServerEndpoint)
    assert (endpoint.port, endpoint.interface, endpoint.backlog) == (8080, "127.0.0.1", 7)
    assert endpoint.family == socket.AF_INET
    assert endpoint.describe() == "tcp:8080:interface=127.0.0.1:backlog=7"
    assert parse_endpoint("tcp:port=81").port == 81
    assert parse_endpoint("tcp:0").interface == "0.0.0.0"


def test_tcp6_accepts_escaped_and_bracketed_addresses() -> None:
    escaped = parse_endpoint(r"tcp6:8080:interface=\:\:1")
    bracketed = parse_endpoint("tcp6:8080:interface=[::1]")
    assert escaped.interface == bracketed.interface == "::1"
    assert escaped.family == socket.AF_INET6
    assert parse_endpoint("tcp6:1").interface == "::"


def test_unix_fields() -> None:
    endpoint = parse_endpoint(r"unix:/run/a\:b.sock:mode=660:lockfile=yes")
    assert isinstance(endpoint, UNIXServerEndpoint)
    assert (endpoint.path, endpoint.mode, endpoint.lockfile) == ("/run/a:b.sock", 0o660, True)
    assert parse_endpoint("unix:rel.sock:mode=0o600").mode == 0o600
    assert parse_endpoint("unix:rel.sock").mode is None


def test_systemd_fields() -> None:
    by_index = parse_endpoint("systemd:domain=inet:index=2")
    by_name = parse_endpoint("systemd:domain=UNIX:name=web")
    assert isinstance(by_index, SystemdEndpoint)
    assert (by_index.domain, by_index.index, by_index.name) == ("INET", 2, None)
    assert (by_name.domain, by_name.index, by_name.name) == ("UNIX", None, "web")


# (endpoint string, text the one-line error must contain: the faulty field and the fix)
BAD_STRINGS = [
    ("tcp:80x", "port must be a number from 0 to 65535, got '80x'"),
    ("tcp:65536", "port must be a number from 0 to 65535, got '65536'"),
    ("tcp:-1", "port must be a number from 0 to 65535, got '-1'"),
    ("tcp", "port is missing"),
    ("tcp:80:backlog=0", "backlog must be a number from 1 to 65535, got '0'"),
    ("tcp:80:interfce=127.0.0.1", "unknown field 'interfce' for tcp (did you mean 'interface'?)"),
    ("tcp:80:81", "unexpected positional field '81' for tcp"),
    ("tcp:80:port=81", "field 'port' is given twice"),
    ("tcp:80:interface=1.2.3.4:interface=5.6.7.8", "field 'interface' is given twice"),
    ("tcp:80:interface=::1", "IPv6 address with unescaped colons; write it in brackets"),
    ("tcp6:80:interface=fe80::1", "interface=[::1], or escape them"),
    (r"tcp:80:interface=\:\:1", "interface '::1' is an IPv6 address; use tcp6"),
    ("tcp6:80:interface=127.0.0.1", "interface '127.0.0.1' is an IPv4 address; use tcp:"),
    ("tcp:80:interface=", "interface is empty"),
    ("tcp:80:interface=no way!", "interface must be an IP address or host name, got 'no way!'"),
    ("tcp6:80:interface=[::1", "a '[' is never closed by ']'"),
    ("tcp6:80:interface=[1.2.3.4]", "interface [1.2.3.4] must be an IPv6 address"),
    ("tcp:80\\", "ends with a lone backslash"),
    (":80", "it must start with a kind"),
    ("tcp:80:=x", "field '=x' has no name before '='"),
    ("unix:", "path is missing"),
    ("unix:/tmp/s:mode=888", "mode must be octal permissions such as 0660, got '888'"),
    ("unix:/tmp/s:mode=01777", "mode must be octal permissions such as 0660, got '01777'"),
    ("unix:/tmp/s:lockfile=maybe", "lockfile must be 1 or 0 (true or false), got 'maybe'"),
    ("ssl:443", "certKey is missing"),
    ("ssl:443:certKey=/nonexistent/cert.pem",
     "certKey: cannot read '/nonexistent/cert.pem': no such file or directory"),
    ("ssl:443:certKey=/dev/null:privateKey=/nonexistent/key.pem",
     "privateKey: cannot read '/nonexistent/key.pem': no such file or directory"),
    ("systemd:index=0", "domain must be one of INET, INET6, UNIX (it is missing)"),
    ("systemd:domain=IPX:index=0", "domain must be one of INET, INET6, UNIX, got 'IPX'"),
    ("systemd:domain=INET", "give exactly one of index=N"),
    ("systemd:domain=INET:index=0:name=web", "give exactly one of index=N"),
    ("systemd:domain=INET:index=first", "index must be a number from 0 to 65535, got 'first'"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD_STRINGS, ids=[t for t, _ in BAD_STRINGS])
def test_bad_strings_get_one_line_errors_naming_the_field(text: str, fragment: str) -> None:
    with pytest.raises(EndpointError) as caught:
        parse_endpoint(text)
    message = str(caught.value)
    assert message.startswith(f"invalid endpoint {text!r}: "), message
    assert fragment in message
    assert "\n" not in message


def test_exact_message_for_a_bad_port() -> None:
    with pytest.raises(EndpointError) as caught:
        parse_endpoint("tcp:80x")
    assert str(caught.value) == (
        "invalid endpoint 'tcp:80x': port must be a number from 0 to 65535, got '80x'")
    assert isinstance(caught.value, ValueError)


def test_unknown_kind_lists_the_known_ones_and_suggests() -> None:
    with pytest.raises(EndpointError) as caught:
        parse_endpoint("tpc:80")
    message = str(caught.value)
    assert message.startswith("unknown endpoint kind 'tpc' in 'tpc:80' (did you mean 'tcp'?); "
                              "known kinds: ")
    assert "ssl, systemd, tcp, tcp6, udp, udp6, unix" in message


def test_ssl_with_a_file_that_is_not_a_certificate(tmp_path: object) -> None:
    from pathlib import Path

    junk = Path(str(tmp_path)) / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(EndpointError) as caught:
        parse_endpoint(f"ssl:443:certKey={junk}")
    message = str(caught.value)
    assert message.startswith(f"invalid endpoint 'ssl:443:certKey={junk}': cannot load a "
                              f"certificate and private key from certKey='{junk}'")


class _Echo(SocketEndpoint):
    def __init__(self, args: list[str], kwargs: dict[str, str]) -> None:
        self.args, self.kwargs = args, kwargs


class _Parser:
    prefix = "echoproto"

    def parse(self, args: list[str], kwargs: dict[str, str]) -> _Echo:
        if "bad" in kwargs:
            raise EndpointError(f"bad must not be given, got {kwargs['bad']!r}")
        return _Echo(args, kwargs)


def test_registered_parsers_get_unescaped_fields_and_reworded_errors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoints, "_REGISTERED", {})
    register_parser(_Parser())
    endpoint = parse_endpoint(r"echoproto:a\:b:key=v\=w")
    assert (endpoint.args, endpoint.kwargs) == (["a:b"], {"key": "v=w"})
    assert "echoproto" in known_kinds()
    with pytest.raises(EndpointError) as caught:
        parse_endpoint("echoproto:bad=1")
    assert str(caught.value) == "invalid endpoint 'echoproto:bad=1': bad must not be given, got '1'"
    with pytest.raises(ValueError, match="built in"):
        register_parser(type("Hijack", (), {"prefix": "tcp"})())
