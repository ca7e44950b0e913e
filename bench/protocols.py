"""Benchmark: dropins mail (SMTP, POP3) and dropins ftp against the servers they are built on
(bare aiosmtpd, bare aioftp) and against Twisted's SMTP, POP3 and FTP servers.

Each server runs in its own process on loopback; the clients are the stdlib's (smtplib,
poplib, ftplib), run in this process one after the other, so the figures are latency-bound
per operation, which is what these protocols spend their time on.  Workloads, each run
``--runs`` times per server (median reported), servers interleaved:

* ``smtp``: ``--messages`` messages of 4 KiB, one connection each, delivered to a Maildir;
* ``pop3``: one session that LISTs and RETRs ``--messages`` messages of 4 KiB;
* ``ftp``: ``--downloads`` RETRs of a 4 MiB file, one connection each (anonymous).

Run:  unset PYTHONDONTWRITEBYTECODE; .venv/bin/python bench/protocols.py
"""

from __future__ import annotations

import argparse
import ftplib
import mailbox
import os
import poplib
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BODY = ("x" * 63 + "\n") * 64  # 4 KiB

TWISTED_SMTP = r'''
import mailbox, sys
from zope.interface import implementer
from twisted.internet import reactor
from twisted.mail import smtp

box = mailbox.Maildir(sys.argv[2], create=True)

@implementer(smtp.IMessage)
class Message:
    def __init__(self):
        self.lines = []
    def lineReceived(self, line):
        self.lines.append(line if isinstance(line, bytes) else line.encode())
    def eomReceived(self):
        box.add(b"\n".join(self.lines) + b"\n")
        from twisted.internet import defer
        return defer.succeed(None)
    def connectionLost(self):
        self.lines = []

@implementer(smtp.IMessageDelivery)
class Delivery:
    def receivedHeader(self, helo, origin, recipients):
        return "Received: by twisted"
    def validateFrom(self, helo, origin):
        return origin
    def validateTo(self, user):
        if user.dest.domain == b"example.org":
            return Message
        raise smtp.SMTPBadRcpt(user)

class Factory(smtp.SMTPFactory):
    def buildProtocol(self, addr):
        protocol = smtp.ESMTP()
        protocol.delivery = Delivery()
        protocol.factory = self
        return protocol

reactor.listenTCP(int(sys.argv[1]), Factory(), interface="127.0.0.1")
print("ready", flush=True)
reactor.run()
'''

TWISTED_POP3 = r'''
import sys
from zope.interface import implementer
from twisted.cred import checkers, portal
from twisted.internet import protocol, reactor
from twisted.mail import maildir, pop3

class Mailbox(maildir.MaildirMailbox):
    def getMessage(self, i):  # Twisted 26 opens it in text mode, which its POP3 cannot send
        return open(self.list[i], "rb")

@implementer(portal.IRealm)
class Realm:
    def requestAvatar(self, avatar_id, mind, *interfaces):
        return pop3.IMailbox, Mailbox(sys.argv[2].encode()), lambda: None

checker = checkers.InMemoryUsernamePasswordDatabaseDontUse(alice=b"secret")
door = portal.Portal(Realm(), [checker])

class Factory(protocol.ServerFactory):
    def buildProtocol(self, addr):
        server = pop3.POP3()
        server.portal = door
        return server

reactor.listenTCP(int(sys.argv[1]), Factory(), interface="127.0.0.1")
print("ready", flush=True)
reactor.run()
'''

TWISTED_FTP = r'''
import sys
from twisted.cred.checkers import AllowAnonymousAccess
from twisted.cred.portal import Portal
from twisted.internet import reactor
from twisted.protocols.ftp import FTPFactory, FTPRealm

factory = FTPFactory(Portal(FTPRealm(sys.argv[2]), [AllowAnonymousAccess()]))
reactor.listenTCP(int(sys.argv[1]), factory, interface="127.0.0.1")
print("ready", flush=True)
reactor.run()
'''

AIOSMTPD = r'''
import asyncio, mailbox, sys
from aiosmtpd.smtp import SMTP

box = mailbox.Maildir(sys.argv[2], create=True)

class Handler:
    async def handle_DATA(self, server, session, envelope):
        box.add(envelope.original_content)
        return "250 OK"

async def main():
    loop = asyncio.get_running_loop()
    await loop.create_server(lambda: SMTP(Handler()), "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''

AIOFTP = r'''
import asyncio, sys
import aioftp

async def main():
    server = aioftp.Server([aioftp.User(base_path=sys.argv[2])],
                           path_io_factory=aioftp.AsyncPathIO)
    await server.start("127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()

asyncio.run(main())
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server process; ``command`` gets the port and a folder appended."""

    def __init__(self, command: list[str], folder: Path, ready: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [part.replace("PORT", str(self.port)).replace("DIR", str(folder))
             for part in command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        for line in self.process.stdout:
            if ready in line:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[:4]} did not start")
        else:
            raise RuntimeError(f"{command[:4]} exited before it was ready")
        # keep reading its log, or a full pipe would stop the server mid-run
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def dropins(*args: str) -> list[str]:
    return [sys.executable, "-m", "dropins", *args]


def smtp_run(port: int, count: int) -> float:
    message = f"From: bob@else.net\r\nTo: alice@example.org\r\nSubject: bench\r\n\r\n{BODY}"
    started = time.perf_counter()
    for _ in range(count):
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("bob@else.net", ["alice@example.org"], message)
    return count / (time.perf_counter() - started)


def pop3_run(port: int, count: int) -> float:
    started = time.perf_counter()
    client = poplib.POP3("127.0.0.1", port, timeout=30)
    client.user("alice")
    client.pass_("secret")
    listed = client.list()[1]
    assert len(listed) >= count, listed[:3]
    for number in range(1, count + 1):
        client.retr(number)
    client.quit()
    return count / (time.perf_counter() - started)


def ftp_run(port: int, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        with ftplib.FTP() as client:
            client.connect("127.0.0.1", port, timeout=30)
            client.login()
            received = bytearray()
            client.retrbinary("RETR big.bin", received.extend)
            assert len(received) == 4 * 1024 ** 2
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--downloads", type=int, default=20)
    parser.add_argument("--only", choices=["smtp", "pop3", "ftp"], help="run one workload")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5, for a meaningful median")
    work = Path(tempfile.mkdtemp(prefix="bench-protocols-"))
    (work / "ftp").mkdir()
    (work / "ftp" / "big.bin").write_bytes(os.urandom(4 * 1024 ** 2))
    spool = work / "pop3" / "alice"
    spool.parent.mkdir()
    box = mailbox.Maildir(spool, create=True)
    for _ in range(args.messages):
        box.add(f"From: bob@else.net\nSubject: bench\n\n{BODY}")

    workloads = {
        "smtp messages/s": (smtp_run, args.messages, {
            "dropins mail": (dropins("mail", "--smtp", "tcp:PORT:interface=127.0.0.1",
                                     "--domain", "example.org", "--maildir", "DIR",
                                     "--create-maildirs"), "ready"),
            "aiosmtpd": ([sys.executable, "-c", AIOSMTPD, "PORT", "DIR/alice"], "ready"),
            "twisted smtp": ([sys.executable, "-c", TWISTED_SMTP, "PORT", "DIR/alice"], "ready"),
        }),
        "pop3 retrs/s": (pop3_run, args.messages, {
            "dropins mail": (dropins("mail", "--pop3", "tcp:PORT:interface=127.0.0.1",
                                     "--maildir", str(work / "pop3"), "--auth",
                                     "memory:alice:secret"), "ready"),
            "twisted pop3": ([sys.executable, "-c", TWISTED_POP3, "PORT", str(spool)], "ready"),
        }),
        "ftp 4 MiB downloads/s": (ftp_run, args.downloads, {
            "dropins ftp": (dropins("ftp", "--listen", "tcp:PORT:interface=127.0.0.1",
                                    "--root", str(work / "ftp"), "--anonymous"), "ready"),
            "aioftp": ([sys.executable, "-c", AIOFTP, "PORT", str(work / "ftp")], "ready"),
            "twisted ftp": ([sys.executable, "-c", TWISTED_FTP, "PORT", str(work / "ftp")],
                            "ready"),
        }),
    }
    for title, (run, count, servers) in workloads.items():
        if args.only and not title.startswith(args.only):
            continue
        results: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(args.runs):
            for name, (command, ready) in servers.items():
                folder = Path(tempfile.mkdtemp(dir=work))
                server = Server(command, folder, ready)
                try:
                    results[name].append(run(server.port, count))
                finally:
                    server.close()
        medians = {name: statistics.median(values) for name, values in results.items()}
        base = next(iter(medians.values()))
        print(f"\n{title} (median of {args.runs} runs; ratio against {next(iter(medians))})")
        print(f"{'server':<16} {'rate':>10} {'ratio':>6}")
        for name, value in medians.items():
            print(f"{name:<16} {value:>10,.1f} {value / base:>6.2f}")


if __name__ == "__main__":
    main()
