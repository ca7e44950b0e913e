"""Benchmark: cost of one login through a portal, dropins.cred against twisted.cred.

Run: .venv/bin/python bench/cred.py   (needs the [bench] extra: twisted)

Each case performs N logins in a loop; the table shows the median over RUNS runs of the time
per login, and the ratio twisted/dropins (above 1: dropins is faster).
- memory: users in memory, right password.
- file-10k-plain: a 10,000-user file of plain passwords, login as the last user (measures
  the per-login file handling: dropins stats the file, twisted re-reads it).
- file-bcrypt: a file with one bcrypt (cost 5, as htpasswd -B) user (hash cost dominates).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import warnings

RUNS = 7


def median_per_login(run_once, count: int) -> float:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        run_once(count)
        samples.append((time.perf_counter() - started) / count)
    return statistics.median(samples)


def dropins_runner(checker, username: str, password: str):
    from dropins.cred import Portal, UsernamePassword, UsernameRealm

    portal = Portal(UsernameRealm(), [checker], failure_delay=0)

    def run_once(count: int) -> None:
        async def logins() -> None:
            for _ in range(count):
                await portal.login(UsernamePassword(username, password), None)

        asyncio.run(logins())

    return run_once


def twisted_runner(checker, username: str, password: str):
    from twisted.cred.credentials import UsernamePassword
    from twisted.cred.portal import IRealm, Portal
    from zope.interface import Interface, implementer

    class IAvatar(Interface):
        pass

    @implementer(IRealm)
    class Realm:
        def requestAvatar(self, avatar_id, mind, *interfaces):
            return IAvatar, avatar_id, lambda: None

    portal = Portal(Realm(), [checker])
    failures = []

    def run_once(count: int) -> None:
        for _ in range(count):
            deferred = portal.login(UsernamePassword(username.encode(), password.encode()),
                                    None, IAvatar)
            deferred.addErrback(failures.append)
        if failures:
            raise RuntimeError(failures[0])

    return run_once


def main() -> None:
    warnings.simplefilter("ignore")
    import bcrypt
    from twisted.cred.checkers import FilePasswordDB, InMemoryUsernamePasswordDatabaseDontUse

    from dropins.cred import InMemoryUsernamePasswordChecker, PasswordFileChecker

    folder = tempfile.mkdtemp()
    big = os.path.join(folder, "big.txt")
    with open(big, "w") as stream:
        for index in range(10_000):
            stream.write(f"user{index}:password{index}\n")
    an_hour_ago = time.time() - 3600
    os.utime(big, (an_hour_ago, an_hour_ago))  # steady state: not just written (see RACY_WINDOW_NS)
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(5))
    small = os.path.join(folder, "bcrypt.txt")
    with open(small, "w") as stream:
        stream.write(f"alice:{hashed.decode()}\n")

    def bcrypt_hash(username, password, stored):
        return bcrypt.hashpw(password, stored)

    import logging
    logging.getLogger("dropins.cred").setLevel(logging.ERROR)  # the plain-password warning
    cases = [
        ("memory", 2000,
         dropins_runner(InMemoryUsernamePasswordChecker({"alice": "secret"}), "alice", "secret"),
         twisted_runner(InMemoryUsernamePasswordDatabaseDontUse(alice=b"secret"),
                        "alice", "secret")),
        ("file-10k-plain", 200,
         dropins_runner(PasswordFileChecker(big), "user9999", "password9999"),
         twisted_runner(FilePasswordDB(big, cache=False), "user9999", "password9999")),
        ("file-bcrypt-5", 20,
         dropins_runner(PasswordFileChecker(small), "alice", "pw"),
         twisted_runner(FilePasswordDB(small, hash=bcrypt_hash), "alice", "pw")),
    ]
    print(f"python {sys.version.split()[0]}, median of {RUNS} runs, time per login")
    print(f"{'case':16} {'dropins':>12} {'twisted':>12} {'twisted/dropins':>16}")
    for name, count, ours, theirs in cases:
        ours_time = median_per_login(ours, count)
        theirs_time = median_per_login(theirs, count)
        print(f"{name:16} {ours_time * 1e6:10.1f}us {theirs_time * 1e6:10.1f}us"
              f" {theirs_time / ours_time:15.2f}x")


if __name__ == "__main__":
    main()
