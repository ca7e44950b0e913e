"""``dropins finger``: the Finger user information protocol (RFC 1288), answering for a few
chosen users and nothing more.

What a query may see: the entries of a ``--users`` file (TOML: one table per user with
``name``, ``office`` and ``plan``, or just a string), and, with ``--plans``, the ``.plan`` file
a user chose to put in their home directory (``--homes DIR`` looks in ``DIR/USER`` instead of
the passwd entry).  What it refuses, by design and as RFC 1288 section 3.2 advises:

- forwarding (``user@host``, the ``{Q2}`` query): a finger server must not be a relay;
- listing users for an empty query, unless ``--list`` says so (and then only the file's);
- anything but a plain user name: no paths, no wildcard matching on real names.

A ``.plan`` is read only if it is a regular file owned by that user (or root), opened without
following a symlink (another user's files are not reachable by linking them), and at most
``PLAN_LIMIT`` bytes.  Control characters are replaced before sending, so a plan cannot drive
the reader's terminal.  One query per connection, with a line limit and a timeout.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from typing import Any

from dropins.options import Flag, Parameter, UsageError, path
from dropins.options import Options as BaseOptions

__all__ = ["DEFAULT_LISTEN", "FingerDirectory", "Options", "make_service"]

DEFAULT_LISTEN = "tcp:8079:interface=127.0.0.1"
#: the longest query line read, and the largest .plan sent
LINE_LIMIT = 512
PLAN_LIMIT = 64 * 1024
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise UsageError(f"invalid --timeout {text!r}: give a positive number of seconds")
    return value


class Options(BaseOptions):
    description = "Answer finger queries (RFC 1288) for the users of a file or their ~/.plan."
    listen = Parameter(short="l", multiple=True, metavar="ENDPOINT", default=[DEFAULT_LISTEN],
                       help=f"Where to listen (repeatable; default: {DEFAULT_LISTEN}).")
    users = Parameter(short="u", metavar="FILE", type=path,
                      help="A TOML file: one table per user (name, office, plan).")
    plans = Flag(help="Also answer for users who put a .plan file in their home directory.")
    homes = Parameter(metavar="DIR", type=path,
                      help="With --plans, look for DIR/USER/.plan instead of passwd homes.")
    list = Flag(help="Answer an empty query with the users of --users (off by default).")
    timeout = Parameter(type=_positive, default=10.0, metavar="SECONDS",
                        help="How long a client may take to send its query (default 10).")


def load_users(path: str) -> dict[str, dict[str, str]]:
    """The ``--users`` file as ``{user: {"name": ..., "office": ..., "plan": ...}}``."""
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as error:
        raise UsageError(f"cannot read --users {path!r}: "
                         f"{(error.strerror or str(error)).lower()}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"--users {path!r} is not valid TOML: {error}") from None
    users: dict[str, dict[str, str]] = {}
    for user, entry in data.items():
        if not _USER.fullmatch(user):
            raise UsageError(f"--users {path!r}: {user!r} is not a user name (letters, digits, "
                             "'.', '_' and '-', at most 32)")
        if isinstance(entry, str):
            entry = {"plan": entry}
        if not isinstance(entry, Mapping) or not all(
                key in ("name", "office", "plan") and isinstance(value, str)
                for key, value in entry.items()):
            raise UsageError(f"--users {path!r}: [{user}] may hold only the strings name, "
                             "office and plan")
        users[user] = dict(entry)
    return users


class FingerDirectory:
    """Who can be fingered, and what a query for them answers."""

    def __init__(self, users: dict[str, dict[str, str]], *, plans: bool = False,
                 homes: str | None = None, listing: bool = False) -> None:
        self.users = users
        self.plans = plans
        self.homes = homes
        self.listing = listing

    def answer(self, line: str) -> str:
        """The reply text for one query line (without its CRLF)."""
        query = line.strip()
        verbose = query[:2].upper() == "/W"
        if verbose:
            query = query[2:].strip()
        if "@" in query:
            return "finger: forwarding (user@host) is refused by this server.\n"
        if not query:
            return self._list()
        if not _USER.fullmatch(query):
            return f"finger: {_clean(query)[:40]}: no such user.\n"
        entry = dict(self.users.get(query, {}))
        plan = self._plan_file(query) if self.plans else None
        if plan is not None:
            entry["plan"] = plan
        if not entry:
            return f"finger: {query}: no such user.\n"
        return _format(query, entry)

    def _list(self) -> str:
        if not self.listing:
            return "finger: this server does not list its users; ask for one by name.\n"
        if not self.users:
            return "No one here.\n"
        rows = [f"{user:<16} {entry.get('name', '')}".rstrip()
                for user, entry in sorted(self.users.items())]
        return "Login            Name\n" + "".join(f"{row}\n" for row in rows)

    def _plan_file(self, user: str) -> str | None:
        """The user's own .plan, if they have one that is safe to read."""
        owner: int | None = None
        if self.homes is not None:
            home = os.path.join(self.homes, user)
        else:
            try:
                import pwd

                record = pwd.getpwnam(user)
            except (ImportError, KeyError):
                return None
            home, owner = record.pw_dir, record.pw_uid
        try:
            fd = os.open(os.path.join(home, ".plan"),
                         os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return None
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                return None
            if owner is not None and info.st_uid not in (owner, 0):
                return None
            data = file.read(PLAN_LIMIT + 1)
        text = data[:PLAN_LIMIT].decode("utf-8", "replace")
        return text + ("\n[plan cut at 64 KiB]\n" if len(data) > PLAN_LIMIT else "")


def _format(user: str, entry: Mapping[str, str]) -> str:
    lines = [f"Login: {user}" + (f"\t\t\tName: {entry['name']}" if entry.get("name") else "")]
    if entry.get("office"):
        lines.append(f"Office: {entry['office']}")
    if entry.get("plan"):
        lines.append("Plan:")
        lines.extend(entry["plan"].rstrip("\n").split("\n"))
    else:
        lines.append("No Plan.")
    return "".join(f"{_clean(line)}\n" for line in lines)


def _clean(text: str) -> str:
    """Replace control characters (terminal escapes, carriage returns) with '?'."""
    return _CONTROL.sub("?", text)


def handler(directory: FingerDirectory, timeout: float) -> Any:
    """One query line in, the answer out (CRLF line ends), then the connection closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
        except (TimeoutError, asyncio.IncompleteReadError):
            return
        except asyncio.LimitOverrunError:  # past asyncio's 64 KiB line cap
            raw = b""
        if not raw or len(raw) > LINE_LIMIT:
            writer.write(b"finger: query too long.\r\n")
            await asyncio.wait_for(writer.drain(), timeout)
            return
        reply = directory.answer(raw.decode("utf-8", "replace").rstrip("\r\n"))
        writer.write(reply.replace("\n", "\r\n").encode("utf-8"))
        await asyncio.wait_for(writer.drain(), timeout)

    return handle


def make_service(options: Any) -> Any:
    """A finger server on every ``--listen`` endpoint."""
    from dropins.service import MultiService, StreamServerService

    if options["homes"] and not options["plans"]:
        raise UsageError("--homes is only used with --plans; add --plans or drop --homes")
    if not options["users"] and not options["plans"]:
        raise UsageError("nothing to answer with: give --users FILE, --plans, or both")
    if options["homes"] and not os.path.isdir(options["homes"]):
        raise UsageError(f"--homes {options['homes']!r} is not a directory")
    users = load_users(options["users"]) if options["users"] else {}
    directory = FingerDirectory(users, plans=bool(options["plans"]), homes=options["homes"],
                                listing=bool(options["list"]))
    service = MultiService("finger")
    handle = handler(directory, float(options["timeout"]))
    for index, endpoint in enumerate(options["listen"]):
        service.add_service(StreamServerService(endpoint, handle, name=f"finger-{index}"))
    return service

