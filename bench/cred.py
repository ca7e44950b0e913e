"""Benchmark: cost of one login through a portal, dropins.cred against twisted.cred.

Run: .venv/bin/python bench/cred.py   (needs the [bench] extra: twisted)

Each case performs N logins in a loop; the table shows the median over RUNS runs of the time
per login, and the ratio twisted/dropins (above 1: dropins is faster).
- memory: users in memory, right password.
- file-10k-plain: a 10,000-user file of plain passwords, login as the last user (measures
  the per-login file handling: dropins stats the file, twisted re-reads it).
- file-bcrypt: a file with one bcrypt (cost 5, as htpasswd -B) user (hash cost dominates).
The file cases run with dropins' memory of recent logins off (``RecentLogins(lifetime=0)``),
so that both sides verify every login; ``file-bcrypt-5-remembered`` shows dropins with it on.

A second table measures ``dropins web --auth file:FILE`` (a real server, on loopback) with the
argon2 hash ``dropins passwd`` writes, from Python clients on keep-alive connections:
- good-req/s: authenticated requests per second, the same user and password each time;
- good-under-attack: median and worst latency of a good login while BAD_CLIENTS clients, each
  from its own loopback address (127.0.0.10 and up), send wrong passwords as fast as they are
  answered (each attempt on a new connection);
- reread-100k: in process, the longest stall of the event loop while a 100,000-user file that
  changed is re-read by the next login.
``--web-only`` skips the twisted comparison.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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
    from dropins.cred.verifying import RecentLogins

    folder = tempfile.mkdtemp()
    big = os.path.join(folder, "big.txt")
    with open(big, "w") as stream:
        for index in range(10_000):
            stream.write(f"user{index}:password{index}\n")
    an_hour_ago = time.time() - 3600
    os.utime(big, (an_hour_ago, an_hour_ago))  # steady state: not just written (see RACY_WINDOW_NS)
    os.chmod(big, 0o600)  # plain passwords are accepted only in a private file
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
         dropins_runner(PasswordFileChecker(big, recent=RecentLogins(lifetime=0)),
                        "user9999", "password9999"),
         twisted_runner(FilePasswordDB(big, cache=False), "user9999", "password9999")),
        ("file-bcrypt-5", 20,
         dropins_runner(PasswordFileChecker(small, recent=RecentLogins(lifetime=0)),
                        "alice", "pw"),
         twisted_runner(FilePasswordDB(small, hash=bcrypt_hash), "alice", "pw")),
        ("file-bcrypt-5-remembered", 200,
         dropins_runner(PasswordFileChecker(small), "alice", "pw"),
         twisted_runner(FilePasswordDB(small, hash=bcrypt_hash), "alice", "pw")),
    ]
    print(f"python {sys.version.split()[0]}, median of {RUNS} runs, time per login")
    print(f"{'case':26} {'dropins':>12} {'twisted':>12} {'twisted/dropins':>16}")
    for name, count, ours, theirs in cases:
        ours_time = median_per_login(ours, count)
        theirs_time = median_per_login(theirs, count)
        print(f"{name:26} {ours_time * 1e6:10.1f}us {theirs_time * 1e6:10.1f}us"
              f" {theirs_time / ours_time:15.2f}x")


BAD_CLIENTS = 30
WEB_SECONDS = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def get(connection: http.client.HTTPConnection, headers: dict[str, str]) -> int:
    connection.request("GET", "/index.html", headers=headers)
    response = connection.getresponse()
    response.read()
    return response.status


def start_server(folder: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if key != "PYTHONDONTWRITEBYTECODE" and not key.startswith("DROPINS_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "dropins", "web", "--path", os.path.join(folder, "site"),
         "--auth", f"file:{os.path.join(folder, 'users.txt')}",
         "--listen", f"tcp:{port}:interface=127.0.0.1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("dropins web did not start")


def good_requests_per_second(port: int, clients: int = 4) -> float:
    done = [0] * clients
    stop_at = time.monotonic() + WEB_SECONDS

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < stop_at:
            if get(connection, basic("alice", "secret")) == 200:
                done[index] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / WEB_SECONDS


def good_latency_under_attack(port: int) -> tuple[float, float, int]:
    """(median, worst) seconds of good logins while bad ones run; and how many bad attempts."""
    stopping = threading.Event()
    attempts = [0] * BAD_CLIENTS

    def attacker(index: int) -> None:
        while not stopping.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60,
                                                    source_address=(f"127.0.0.{10 + index}", 0))
            try:
                get(connection, basic("alice", f"guess{index}-{attempts[index]}"))
            except OSError:
                pass
            attempts[index] += 1
            connection.close()

    threads = [threading.Thread(target=attacker, args=(index,)) for index in range(BAD_CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(1)  # let the attack fill the queues
    latencies: list[float] = []
    stop_at = time.monotonic() + WEB_SECONDS
    while time.monotonic() < stop_at or len(latencies) < 3:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        started = time.perf_counter()
        status = get(connection, basic("alice", "secret"))
        latencies.append(time.perf_counter() - started)
        connection.close()
        if status != 200:
            raise RuntimeError(f"a good login was answered {status}")
    stopping.set()
    for thread in threads:
        thread.join()
    return statistics.median(latencies), max(latencies), sum(attempts)


def reread_stall(folder: str) -> float:
    """The longest event-loop stall (s) while a changed 100,000-user file is re-read."""
    from dropins.cred import PasswordFileChecker, UnauthorizedLogin, UsernamePassword
    from dropins.cred.hashing import hash_password

    path = os.path.join(folder, "big-hashed.txt")
    hashed = hash_password("secret", "scrypt")
    with open(path, "w") as stream:
        stream.writelines(f"user{index}:{hashed}\n" for index in range(100_000))
    checker = PasswordFileChecker(path)
    with open(path, "a") as stream:
        stream.write(f"late:{hashed}\n")

    async def measure() -> float:
        longest = 0.0
        done = False

        async def ticker() -> None:
            nonlocal longest
            last = time.perf_counter()
            while not done:
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                longest = max(longest, now - last)
                last = now

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        try:
            await checker.request_avatar_id(UsernamePassword("nobody", "x"))
        except UnauthorizedLogin:
            pass
        done = True
        await task
        return longest

    return asyncio.run(measure())


def web_table() -> None:
    from dropins.cred.hashing import hash_password

    folder = tempfile.mkdtemp()
    os.mkdir(os.path.join(folder, "site"))
    with open(os.path.join(folder, "site", "index.html"), "w") as stream:
        stream.write("hello\n")
    with open(os.path.join(folder, "users.txt"), "w") as stream:
        stream.write(f"alice:{hash_password('secret', 'argon2')}\n")
    os.chmod(os.path.join(folder, "users.txt"), 0o600)
    an_hour_ago = time.time() - 3600
    os.utime(os.path.join(folder, "users.txt"), (an_hour_ago, an_hour_ago))
    process, port = start_server(folder)
    try:
        rate = good_requests_per_second(port)
        median, worst, attempts = good_latency_under_attack(port)
    finally:
        process.terminate()
        process.wait(30)
    stall = reread_stall(folder)
    print(f"dropins web --auth file: (argon2 as dropins passwd writes it), {WEB_SECONDS} s each")
    print(f"{'case':34} {'figure':>12}")
    print(f"{'good-req/s (4 clients)':34} {rate:10.1f}/s")
    print(f"{'good-under-attack median':34} {median * 1e3:10.1f}ms")
    print(f"{'good-under-attack worst':34} {worst * 1e3:10.1f}ms")
    print(f"{'bad attempts answered':34} {attempts / (WEB_SECONDS + 1):10.1f}/s"
          f"  ({BAD_CLIENTS} clients)")
    print(f"{'reread-100k longest loop stall':34} {stall * 1e3:10.1f}ms")


if __name__ == "__main__":
    if "--web-only" not in sys.argv:
        main()
        print()
    web_table()
