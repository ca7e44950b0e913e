"""``dropins words`` against the Debian ngircd, and with irssi: the same scripted session
must get the same numeric reply codes (texts differ, codes must not)."""

from __future__ import annotations

import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from _words_helpers import Client, split_line, words_server
from conftest import get_free_port

#: Groups of (lines sent, what they test), one client each, run side by side (ngircd delays
#: every client's commands, so one long session would take most of a minute); each step ends
#: with a PING whose PONG closes it.  ``{n}`` is the client's nick, ``{c}`` its channel.
SCRIPT = [
    [(["NICK 9bad"], "an erroneous nick"),
     (["FROBNICATE"], "an unknown command"),
     (["USER again 0 * :x"], "registering twice"),
     (["PRIVMSG nobody :hi"], "no such nick"),
     (["PRIVMSG"], "no recipient"),
     (["NICK"], "nick without a nick")],
    [(["JOIN {c}"], "join"),
     (["TOPIC {c} :tea time"], "set a topic"),
     (["TOPIC {c}"], "read the topic"),
     (["NAMES {c}"], "names"),
     (["PRIVMSG {c}"], "no text"),
     (["MODE {c} +k"], "mode +k without a key")],
    [(["PART #nowhere"], "part a channel that does not exist"),
     (["WHOIS nobody"], "whois an unknown nick"),
     (["KICK {c}"], "kick without enough parameters"),
     (["JOIN"], "join without a channel"),
     (["MODE {n}"], "user modes")],
    [(["AWAY :later"], "away"),
     (["AWAY"], "back"),
     (["MOTD"], "motd")],
]
#: Codes ngircd adds that words does not send (LUSERS in the welcome burst, topic setter
#: and channel creation time); every other difference fails the test.
NGIRCD_EXTRAS = {"250", "251", "252", "253", "254", "255", "265", "266", "329", "333"}
#: Where words follows RFC 2812 and ngircd does not: (what, words' codes, ngircd's codes).
KNOWN = {("nick without a nick", ("431",), ("461",)),  # RFC 2812 3.1.2: 431
         ("mode +k without a key", ("461",), ())}  # ngircd ignores it silently


def run_group(address: tuple[str, int], index: int) -> list[list[str]]:
    """Codes before registration, in the welcome burst, then after each step."""
    client = Client(address)
    nick, channel = f"alice{index}", f"#tea{index}"
    client.send("JOIN #early")
    codes = [[split_line(client.line())[1]]]
    client.send(f"NICK {nick}", f"USER {nick} 0 * :Alice")
    welcome: list[str] = []
    while welcome[-1:] not in (["376"], ["422"]):
        welcome.append(split_line(client.line())[1])
    codes.append(welcome)
    for step, (lines, _) in enumerate(SCRIPT[index]):
        client.send(*[line.format(n=nick, c=channel) for line in lines], f"PING :step{step}")
        found = []
        while True:
            reply = split_line(client.line(timeout=30))
            if reply[1] == "PONG" and reply[-1] == f"step{step}":
                break
            if reply[1].isdigit():
                found.append(reply[1])
        codes.append(found)
    client.close()
    return codes


def run_script(address: tuple[str, int]) -> list[list[list[str]]]:
    with ThreadPoolExecutor(len(SCRIPT)) as pool:
        return list(pool.map(lambda index: run_group(address, index), range(len(SCRIPT))))


def start_ngircd(folder: Path, port: int) -> subprocess.Popen[bytes]:
    motd = folder / "motd.txt"
    motd.write_text("hello\n")
    motd.chmod(0o644)
    folder.chmod(0o755)
    config = folder / "ngircd.conf"
    config.write_text(f"[Global]\nName = irc.test\nInfo = test\nListen = 127.0.0.1\n"
                      f"Ports = {port}\nPidFile = {folder}/ngircd.pid\nMotdFile = {motd}\n"
                      "[Limits]\nMaxConnectionsIP = 0\n"
                      "[Options]\nPAM = no\nIdent = no\nDNS = no\n")
    ngircd = shutil.which("ngircd") or "/usr/sbin/ngircd"
    process = subprocess.Popen([ngircd, "-n", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            Client(("127.0.0.1", port)).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("ngircd did not listen within 10 s")


def test_numerics_match_ngircd_for_the_same_script(tmp_path: Path) -> None:
    if not (shutil.which("ngircd") or Path("/usr/sbin/ngircd").exists()):
        pytest.skip("ngircd is not installed (Debian package ngircd; .ci/run installs it)")
    port = get_free_port()
    ngircd = start_ngircd(tmp_path, port)
    try:
        theirs = run_script(("127.0.0.1", port))
    finally:
        ngircd.terminate()
        ngircd.wait(10)
    (tmp_path / "motd.txt").write_text("hello\n")
    with words_server(tmp_path, "--motd", str(tmp_path / "motd.txt")) as (_, address):
        ours = run_script(address)
    differences = []
    for group, my_group, their_group in zip(SCRIPT, ours, theirs, strict=True):
        steps = [(["JOIN #early"], "a command before registration"),
                 (["NICK", "USER"], "registration"), *group]
        for (lines, what), mine, reference in zip(steps, my_group, their_group, strict=True):
            reference = [c for c in reference if c not in NGIRCD_EXTRAS]
            if what == "registration":
                mine, reference = sorted(set(mine)), sorted(set(reference))
            if (what, tuple(mine), tuple(reference)) in KNOWN:
                continue
            if mine != reference:
                differences.append(f"{what} ({lines}): words {mine}, ngircd {reference}")
    assert not differences, "\n".join(differences)
