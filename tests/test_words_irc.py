"""``dropins words``: the IRC core with plain-socket clients against the real CLI."""

from __future__ import annotations

import asyncio
import base64
import signal
import socket
from pathlib import Path

import pytest

from _words_helpers import Client, words_server
from conftest import run_dropins


def test_registration_errors_and_unknown_commands(tmp_path: Path) -> None:
    with words_server(tmp_path) as (_, address):
        client = Client(address)
        client.send("JOIN #early")
        assert client.expect("451")[2] == "*"
        client.send("NICK 9bad")
        assert client.expect("432")[3] == "9bad"
        client.send("NICK alice", "USER alice 0 * :Alice Liddell")
        welcome = client.expect("001")
        assert welcome[2] == "alice"
        isupport = " ".join(client.expect("005"))
        assert "PREFIX=(ov)@+" in isupport and "CHANMODES=" in isupport
        client.expect("422")
        client.send("FROBNICATE x", "USER again 0 * :x", "PING :token-1")
        assert client.expect("421")[3] == "FROBNICATE"
        client.expect("462")
        assert client.expect("PONG")[-1] == "token-1"
        other = Client(address)
        other.send("NICK ALICE", "NICK bob", "USER bob 0 * :Bob")
        assert client.seen and other.expect("433")[3] == "ALICE"
        other.expect("001")
        client.send("PRIVMSG nobody :hi", "PRIVMSG bob", "PRIVMSG bob :hello bob")
        assert client.expect("401")[3] == "nobody"
        client.expect("412")
        assert other.expect("PRIVMSG")[-1] == "hello bob"
        client.send("QUIT :bye now")
        assert client.expect("ERROR")
        assert client.closed()


def test_channel_talk_topic_modes_kick(tmp_path: Path) -> None:
    with words_server(tmp_path) as (_, address):
        alice, bob = Client(address), Client(address)
        alice.register("alice")
        bob.register("bob")
        alice.send("JOIN #tea")
        names = alice.expect("353")
        assert names[-1] == "@alice"
        alice.expect("366")
        alice.send("TOPIC #tea :mad hatter's party", "MODE #tea +k secret")
        alice.expect("TOPIC")
        alice.expect("MODE")
        bob.send("JOIN #tea")
        assert bob.expect("475")[3] == "#tea"
        bob.send("JOIN #tea secret")
        assert bob.expect("332")[-1] == "mad hatter's party"
        assert set(bob.expect("353")[-1].split()) == {"@alice", "bob"}
        alice.expect("JOIN")
        bob.send("TOPIC #tea :mine", "PRIVMSG #tea :hello all")
        assert bob.expect("482")[3] == "#tea"
        assert alice.expect("PRIVMSG")[-1] == "hello all"
        alice.send("MODE #tea +m", "MODE #tea")
        alice.expect("MODE")
        assert alice.expect("324")[4].startswith("+")
        bob.send("PRIVMSG #tea :muted?")
        assert bob.expect("404")[3] == "#tea"
        alice.send("MODE #tea +v bob")
        assert bob.expect("MODE")[-2:] == ["+v", "bob"]
        bob.send("PRIVMSG #tea :voiced")
        assert alice.expect("PRIVMSG")[-1] == "voiced"
        alice.send("WHO #tea", "LIST", "WHOIS bob")
        who = [alice.expect("352"), alice.expect("352")]
        assert {w[7] for w in who} == {"alice", "bob"}
        alice.expect("315")
        listed = alice.expect("322")
        assert listed[3:5] == ["#tea", "2"]
        assert alice.expect("319")[-1] == "+#tea"
        alice.send("KICK #tea bob :out")
        assert bob.expect("KICK")[2:4] == ["#tea", "bob"]
        bob.send("PRIVMSG #tea :back?")
        assert bob.expect("404")  # +n: no messages from outside


def test_invite_only_limit_and_away(tmp_path: Path) -> None:
    with words_server(tmp_path) as (_, address):
        alice, bob, carol = Client(address), Client(address), Client(address)
        for client, nick in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
            client.register(nick)
        alice.send("JOIN #club", "MODE #club +il 2")
        alice.expect("MODE")
        bob.send("JOIN #club")
        assert bob.expect("473")[3] == "#club"
        alice.send("INVITE bob #club")
        assert alice.expect("341")[3:5] == ["bob", "#club"]
        assert bob.expect("INVITE")[-1] == "#club"
        bob.send("JOIN #club")
        bob.expect("366")
        alice.send("INVITE carol #club")
        carol.expect("INVITE")
        carol.send("JOIN #club")
        assert carol.expect("471")[3] == "#club"
        bob.send("AWAY :tea break")
        bob.expect("306")
        alice.send("PRIVMSG bob :there?")
        assert alice.expect("301")[3] == "bob"


def test_accounts_topics_modes_and_operators_survive_a_restart(tmp_path: Path) -> None:
    with words_server(tmp_path, "--allow-register") as (_, address):
        alice = Client(address)
        alice.register("alice")
        alice.send("PRIVMSG NickServ :REGISTER wonderland")
        assert "now registered" in " ".join(alice.expect("NOTICE"))
        alice.send("JOIN #garden", "TOPIC #garden :roses", "MODE #garden +l 9")
        alice.expect("TOPIC")
        alice.expect("MODE")
        alice.close()
    with words_server(tmp_path, "--allow-register") as (_, address):
        thief = Client(address)
        thief.send("NICK alice", "USER x 0 * :x")
        assert thief.expect("433")[3] == "alice"
        thief.send("NICK other")
        thief.expect("001")
        thief.send("JOIN #garden")
        assert thief.expect("332")[-1] == "roses"
        assert thief.expect("353")[-1] == "other"  # not an operator: alice's channel
        thief.send("MODE #garden")
        assert thief.expect("324")[4:] == ["+ntl", "9"]
        wrong = Client(address)
        wrong.send("PASS nope", "NICK alice", "USER a 0 * :a")
        wrong.expect("464")
        assert wrong.closed()
        alice = Client(address)
        alice.register("alice", "PASS wonderland")
        alice.send("JOIN #garden")
        assert "@alice" in " ".join(alice.expect("353"))


def test_sasl_plain_and_ircv3_caps(tmp_path: Path) -> None:
    with words_server(tmp_path, "--allow-register") as (_, address):
        setup = Client(address)
        setup.register("dora")
        setup.send("PRIVMSG NickServ :REGISTER explorer")
        setup.expect("NOTICE")
        setup.send("QUIT")
        setup.closed()
        client = Client(address)
        client.send("CAP LS 302")
        offered = " ".join(client.expect("CAP"))
        assert "sasl=PLAIN" in offered and "server-time" in offered
        client.send("NICK dora", "USER dora 0 * :Dora",
                    "CAP REQ :sasl server-time away-notify account-notify")
        assert client.expect("CAP")[3] == "ACK"
        client.send("AUTHENTICATE PLAIN")
        assert client.expect("AUTHENTICATE")[-1] == "+"
        token = base64.b64encode(b"\0dora\0explorer").decode()
        client.send(f"AUTHENTICATE {token}")
        assert client.expect("900")[4] == "dora"
        client.expect("903")
        client.send("CAP END")
        client.expect("001")
        watcher = Client(address)
        watcher.register("watcher")
        client.send("JOIN #map")
        client.expect("366")
        watcher.send("JOIN #map", "AWAY :gone", "PRIVMSG #map :hi")
        away = client.expect("AWAY")
        assert client.tags.startswith("@time=") and away[-1] == "gone"
        client.expect("PRIVMSG")
        assert client.tags.startswith("@time=")
        bad = Client(address)
        bad.send("CAP REQ :sasl", "AUTHENTICATE PLAIN")
        bad.expect("AUTHENTICATE")
        bad.send("AUTHENTICATE " + base64.b64encode(b"\0dora\0wrong").decode())
        assert bad.expect("904")


def test_bad_input_is_one_error_and_affects_nobody_else(tmp_path: Path) -> None:
    with words_server(tmp_path) as (server, address):
        bystander = Client(address)
        bystander.register("bystander")
        talker = Client(address)
        talker.register("talker")
        talker.send("x" * 1_000_000, "PRIVMSG bystander :" + "y" * 600, "\xff garbage",
                    "PRIVMSG bystander :still here")
        talker.expect("417")
        talker.expect("417")
        assert bystander.expect("PRIVMSG")[-1] == "still here"
        many = ",".join(f"#c{i}" for i in range(10_000))
        talker.send(f"JOIN {many}"[:500])
        assert talker.expect("405")
        talker.send(*["JOIN #churn", "PART #churn"] * 200)  # held back at 5 lines/s
        bystander.send("PING :unaffected")
        assert bystander.expect("PONG")[-1] == "unaffected"
        talker.close()
        bystander.send("WHOIS talker")
        bystander.expect("318")
        assert server.process.poll() is None


def test_a_client_that_never_reads_is_disconnected(tmp_path: Path) -> None:
    with words_server(tmp_path, "--flood-rate", "100000",
                      "--send-queue", "65536") as (server, address):
        bystander = Client(address)
        bystander.register("bystander")
        talker = Client(address)
        talker.register("talker")
        sleeper = Client(address)
        sleeper.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sleeper.register("sleeper")
        sleeper.send("JOIN #spam")
        talker.send("JOIN #spam")
        line = "PRIVMSG sleeper :" + "z" * 400
        for _ in range(3000):
            talker.send(*[line] * 20, "PING :alive")
            talker.expect("PONG")
            if "does not read" in server.stderr:
                break
        server.wait_for_line("sleeper from .* does not read")
        bystander.send("PING :fine")
        assert bystander.expect("PONG")[-1] == "fine"
        assert server.process.poll() is None
        server.signal(signal.SIGTERM)


def test_sasl_plain_from_the_pydle_client_library(tmp_path: Path) -> None:
    pydle = pytest.importorskip("pydle", reason="pydle (in the test extra) is not installed")
    with words_server(tmp_path, "--allow-register") as (_, address):
        setup = Client(address)
        setup.register("libby")
        setup.send("PRIVMSG NickServ :REGISTER bookworm")
        setup.expect("NOTICE")
        setup.send("JOIN #stacks")
        setup.expect("366")

        class Bot(pydle.Client):  # type: ignore[misc,name-defined]
            async def on_connect(self) -> None:
                await super().on_connect()
                await self.join("#stacks")
                await self.message("#stacks", "hello from pydle")

        bot = Bot("libby", sasl_username="libby", sasl_password="bookworm",
                  sasl_identity="libby")

        async def run() -> None:
            await bot.connect(address[0], address[1], tls=False)

        setup.send("NICK setup")
        setup.expect("NICK")
        loop = asyncio.new_event_loop()
        try:
            connecting = loop.create_task(run())
            reply: list[str] = []

            async def wait() -> None:
                reply.extend(await asyncio.to_thread(setup.expect, "PRIVMSG"))

            loop.run_until_complete(asyncio.wait_for(wait(), 15))
            assert connecting.done()
            assert reply[0].startswith("libby!") and reply[-1] == "hello from pydle"
            setup.send("WHOIS libby")
            assert setup.expect("330")[3:5] == ["libby", "libby"]  # logged in with SASL
            loop.run_until_complete(asyncio.wait_for(bot.disconnect(expected=True), 15))
        finally:
            leftover = asyncio.all_tasks(loop)
            for task in leftover:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            loop.close()


def test_ping_timeout_drops_a_silent_client(tmp_path: Path) -> None:
    with words_server(tmp_path, "--ping-timeout", "1") as (_, address):
        silent = Client(address)
        silent.register("silent")
        assert silent.expect("PING")
        assert silent.expect("ERROR")[-1] == "Closing link: Ping timeout"


def test_bad_options_are_one_line_and_exit_2(tmp_path: Path) -> None:
    for args, words in ((["--db", str(tmp_path / "no" / "w.db")], "does not exist"),
                        (["--irc", "nonsense:1"], "--irc"),
                        (["--motd", str(tmp_path / "missing.txt")], "is not a file"),
                        (["--ping-timeout", "0"], "above 0")):
        result = run_dropins("words", *args, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert words in result.stderr and "Traceback" not in result.stderr


def test_auth_checkers_log_clients_in_with_pass(tmp_path: Path) -> None:
    with words_server(tmp_path, "--auth", "memory:carol:s3cret") as (_, address):
        carol = Client(address)
        carol.register("carol", "PASS s3cret")
        carol.send("WHOIS carol")
        assert carol.expect("330")[4] == "carol"
        stranger = Client(address)
        stranger.send("NICK stranger", "USER s 0 * :s")
        stranger.expect("464")
        assert stranger.closed()
