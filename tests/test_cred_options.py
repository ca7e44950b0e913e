"""``--auth TYPE:ARGS`` strings and the AuthOptions mixin, through the plugin system."""

from __future__ import annotations

import subprocess
import sys

import pytest

from _cred_helpers import avatar_id, cheap_bcrypt
from conftest import clean_env, write_tree
from dropins.cred import (
    AllowAnonymousChecker,
    AuthOptions,
    IUsernamePassword,
    PasswordFileChecker,
    checker_factories,
    parse_auth,
    split_arguments,
    unescape,
)
from dropins.options import Parameter, UsageError


class ServerOptions(AuthOptions):
    description = "A test server."
    port = Parameter(short="p", default=1235, type=int)


class PasswordOnlyOptions(AuthOptions):
    supported_credential_interfaces = (IUsernamePassword,)


def parse_exit(options_class, argv, capsys):
    with pytest.raises(SystemExit) as caught:
        options_class.parse(argv, prog="dropins myserver")
    out, err = capsys.readouterr()
    return caught.value.code, out, err


@pytest.mark.parametrize("text, fields", [
    ("a:b", ["a", "b"]),
    (r"a\:b:c", ["a:b", "c"]),
    (r"a\\:b", ["a\\", "b"]),
    (r"a\\\:b", ["a\\:b"]),
    (r"C\:\users\x", ["C:\\users\\x"]),
    ("", [""]),
    ("a::b", ["a", "", "b"]),
    ("trailing\\", ["trailing\\"]),
])
def test_split_arguments_unescapes_colons_and_backslashes(text, fields):
    assert split_arguments(text) == fields


def test_unescape_keeps_unescaped_colons_of_a_single_field():
    assert unescape(r"/srv/a:b\:c\\d") == "/srv/a:b:c\\d"


def test_the_built_in_types_are_found_as_plugins():
    factories = checker_factories()
    assert list(factories) == ["anonymous", "file", "htpasswd", "memory"]
    for auth_type, factory in factories.items():
        assert factory.name == auth_type and factory.description


def test_parse_auth_makes_each_type(tmp_path):
    assert avatar_id(parse_auth("memory:alice:secret"), "alice", "secret") == "alice"
    assert isinstance(parse_auth("anonymous"), AllowAnonymousChecker)
    users = tmp_path / "users.txt"
    users.write_text(f"bob:{cheap_bcrypt('pw')}\n")
    checker = parse_auth(f"file:{users}")
    assert isinstance(checker, PasswordFileChecker)
    assert avatar_id(checker, "bob", "pw") == "bob"
    assert avatar_id(parse_auth(f"htpasswd:{users}"), "bob", "pw") == "bob"


@pytest.mark.parametrize("text, message", [
    ("memroy:alice:secret", "unknown auth type 'memroy' (did you mean 'memory'?); known types:"
                            " anonymous, file, htpasswd, memory (see --help-auth)"),
    ("kerberos", "unknown auth type 'kerberos'; known types: anonymous, file, htpasswd, memory"
                 " (see --help-auth)"),
    (":x", "empty auth type: expected TYPE:ARGS (see --help-auth for the types)"),
])
def test_unknown_types_are_named_with_a_suggestion(text, message):
    with pytest.raises(UsageError) as caught:
        parse_auth(text)
    assert str(caught.value) == message


def test_auth_options_give_ready_checkers():
    options = ServerOptions.parse(["--auth", "memory:alice:secret", "--auth", "anonymous",
                                   "-p", "99"])
    assert options["port"] == 99
    memory, anonymous = options["auth"]
    assert avatar_id(memory, "alice", "secret") == "alice"
    assert isinstance(anonymous, AllowAnonymousChecker)
    assert ServerOptions.parse([])["auth"] == []


def test_make_portal_uses_the_checkers():
    import asyncio

    from dropins.cred import UsernamePassword

    portal = ServerOptions.parse(["--auth", "memory:alice:secret"]).make_portal()
    assert asyncio.run(portal.login(UsernamePassword("alice", "secret")))[1] == "alice"


def test_bad_auth_is_one_line_exit_2_without_the_password(capsys):
    status, out, err = parse_exit(ServerOptions, ["--auth", "memory:alice:s3cret:bob"], capsys)
    assert status == 2 and out == ""
    assert err == ("dropins myserver: error: argument --auth: auth type 'memory' expects"
                   " 'memory:USER:PASS[:USER2:PASS2...]': give a password after each user name"
                   " (see 'dropins myserver --help')\n")
    assert "s3cret" not in err


def test_missing_password_file_is_one_line_exit_2(tmp_path, capsys):
    status, _, err = parse_exit(ServerOptions, ["--auth", f"file:{tmp_path}/users.txt"], capsys)
    assert status == 2
    assert err.count("\n") == 1 and "no such file" in err and "dropins passwd" in err


def test_help_auth_lists_every_type_and_exits_0(capsys):
    status, out, err = parse_exit(ServerOptions, ["--help-auth"], capsys)
    assert status == 0 and err == ""
    lines = out.splitlines()
    for usage in ("anonymous", "file:PATH", "htpasswd:PATH", "memory:USER:PASS[:USER2:PASS2...]"):
        assert any(line.strip().startswith(usage) for line in lines), usage
    assert "--help-auth-type TYPE" in out and "\\:" in out


def test_help_auth_type_prints_the_full_help(capsys):
    status, out, _ = parse_exit(ServerOptions, ["--help-auth-type", "memory"], capsys)
    assert status == 0
    assert out.startswith("--auth memory:USER:PASS[:USER2:PASS2...]\n")
    assert "process list" in out and "dropins passwd" in out
    assert "Accepts: IUsernamePassword" in out


def test_help_auth_type_unknown_is_one_line_exit_2(capsys):
    status, out, err = parse_exit(ServerOptions, ["--help-auth-type", "htpassword"], capsys)
    assert status == 2 and out == ""
    assert "unknown auth type 'htpassword' (did you mean 'htpasswd'?)" in err
    assert err.count("\n") == 1


def test_help_mentions_the_auth_options(capsys):
    status, out, _ = parse_exit(ServerOptions, ["--help"], capsys)
    assert status == 0
    assert "--auth TYPE:ARGS" in out and "--help-auth-type TYPE" in out


def test_supported_interfaces_hide_and_refuse_other_types(capsys):
    status, out, _ = parse_exit(PasswordOnlyOptions, ["--help-auth"], capsys)
    assert status == 0 and "memory:" in out and "anonymous" not in out
    status, _, err = parse_exit(PasswordOnlyOptions, ["--auth", "anonymous"], capsys)
    assert status == 2
    assert err == ("dropins myserver: error: argument --auth: auth type 'anonymous' cannot be"
                   " used by 'dropins myserver' (it checks: username and password); usable"
                   " types: file, htpasswd, memory (see --help-auth)\n")
    assert PasswordOnlyOptions.parse(["--auth", "memory:a:b"])["auth"]


def test_a_restricted_command_lists_only_the_types_it_can_use(capsys):
    status, _, err = parse_exit(PasswordOnlyOptions, ["--auth", "kerberos"], capsys)
    assert status == 2
    assert err == ("dropins myserver: error: argument --auth: unknown auth type 'kerberos';"
                   " known types: file, htpasswd, memory (see --help-auth)\n")
    status, out, err = parse_exit(PasswordOnlyOptions, ["--help-auth-type", "anonymous"], capsys)
    assert status == 2 and out == ""
    assert err == ("dropins myserver: error: auth type 'anonymous' cannot be used by 'dropins"
                   " myserver' (it checks: username and password); usable types: file,"
                   " htpasswd, memory (see --help-auth)\n")


def test_validate_names_credentials_not_classes():
    """A checker whose credentials differ from what its factory declared is still refused,
    in words the operator understands."""
    options = PasswordOnlyOptions({"auth": [AllowAnonymousChecker()]})
    with pytest.raises(UsageError) as caught:
        options.validate()
    assert str(caught.value) == ("--auth: a checker for anonymous access cannot be used by this"
                                 " command (it checks: username and password)")


@pytest.mark.parametrize("options_class, argv", [
    (ServerOptions, ["--auth", "kerberos"]),
    (ServerOptions, ["--auth", ":x"]),
    (ServerOptions, ["--auth", "memory:alice"]),
    (ServerOptions, ["--auth", "file:/nonexistent/users.txt"]),
    (ServerOptions, ["--help-auth-type", "kerberos"]),
    (PasswordOnlyOptions, ["--auth", "anonymous"]),
    (PasswordOnlyOptions, ["--auth", "anonymos"]),
    (PasswordOnlyOptions, ["--help-auth-type", "anonymous"]),
    (ServerOptions, ["--port", "x"]),
])
def test_every_error_ends_with_one_hint(options_class, argv, capsys):
    status, _, err = parse_exit(options_class, argv, capsys)
    assert status == 2 and err.count("\n") == 1
    hints = err.count("(see ") + err.count("(create it with")
    assert hints == 1 and err.rstrip().endswith(")"), err


def test_a_third_party_type_is_usable_at_once(tmp_path):
    """A development plugin folder adds an auth type that every --auth accepts."""
    write_tree(tmp_path, {"dropins/plugins/reversed_auth.py": '''
        from zope.interface import implementer

        from dropins.cred import IUsernamePassword, UnauthorizedLogin
        from dropins.cred.interfaces import ICheckerFactory, ICredentialsChecker
        from dropins.plugin.interfaces import IPlugin


        @implementer(ICredentialsChecker)
        class ReversedChecker:
            credential_interfaces = (IUsernamePassword,)

            async def request_avatar_id(self, credentials):
                if credentials.password != credentials.username[::-1]:
                    raise UnauthorizedLogin()
                return credentials.username


        @implementer(IPlugin, ICheckerFactory)
        class ReversedFactory:
            name = auth_type = "reversed"
            description = "Password is the user name backwards"
            argument_help = ""
            auth_help = "The password of every user is their name, reversed."
            credential_interfaces = (IUsernamePassword,)

            def make_checker(self, argument):
                return ReversedChecker()


        reversed_factory = ReversedFactory()
    '''})
    script = (
        "import asyncio\n"
        "from dropins.cred import AuthOptions, Portal, UsernamePassword, UsernameRealm\n"
        "options = AuthOptions.parse(['--auth', 'reversed'])\n"
        "portal = Portal(UsernameRealm(), options['auth'], failure_delay=0)\n"
        "print(asyncio.run(portal.login(UsernamePassword('alice', 'ecila')))[1])\n"
        "AuthOptions.parse(['--help-auth'])\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, env=clean_env({"PYTHONPATH": str(tmp_path)}))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "alice"
    assert any(line.split()[:1] == ["reversed"] and "backwards" in line for line in lines)
