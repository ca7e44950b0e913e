"""The per-user Maildirs under ``--maildir DIR``: ``DIR/USER/{tmp,new,cur}``.

A user exists when their folder exists: the operator creates ``DIR/alice`` (``--auth``
checkers cannot be listed, so they cannot say who exists), and mail for unknown local parts is
refused at RCPT time instead of piling up.  ``--create-maildirs`` opts in to making a Maildir
for any valid local part on first delivery.  Names are checked before they touch the filesystem: no
``..``, no slash, no leading dot, so no recipient can write outside ``DIR``.

Delivery follows the Maildir rules: write to ``tmp/`` under a unique name, fsync, then rename
into ``new/``, so a reader never sees half a message and a crash loses nothing delivered.
"""

from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Maildirs", "Message", "valid_user"]

_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]{0,63}")
_counter = 0


def valid_user(name: str) -> bool:
    """A local part that can name a folder safely (no path separators, no dot files)."""
    return bool(_USER.fullmatch(name)) and ".." not in name


@dataclass
class Message:
    """One message of a mailbox as POP3 sees it: its file, unique id and size in CRLF octets."""

    path: Path
    uid: str
    size: int


class Maildirs:
    """The folder of Maildirs; ``create`` makes a missing user's Maildir on first delivery."""

    def __init__(self, root: str | Path, create: bool = False) -> None:
        self.root = Path(root)
        self.create = create

    def folder(self, user: str) -> Path | None:
        """The Maildir of ``user`` (made complete if half there), or None when unknown."""
        if not valid_user(user):
            return None
        folder = self.root / user
        if not folder.is_dir() and not self.create:
            return None
        if folder.is_symlink():
            return None  # a Maildir pointing elsewhere is not followed
        for sub in ("tmp", "new", "cur"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return folder

    def deliver(self, user: str, content: bytes) -> str:
        """Store ``content`` in ``user``'s Maildir; return its unique name."""
        global _counter
        folder = self.folder(user)
        if folder is None:
            raise LookupError(user)
        _counter += 1
        unique = (f"{time.time_ns() // 1000}.P{os.getpid()}Q{_counter}."
                  f"{socket.gethostname().replace('/', '_').replace(':', '_')}")
        temporary = folder / "tmp" / unique
        with open(temporary, "xb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, folder / "new" / unique)
        return unique

    def messages(self, user: str) -> list[Message]:
        """The messages of ``user``'s Maildir (``new`` and ``cur``), oldest first."""
        folder = self.folder(user)
        if folder is None:
            return []
        found: list[Message] = []
        for sub in ("new", "cur"):
            for entry in os.scandir(folder / sub):
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                data = Path(entry.path).read_bytes()
                size = len(data) + data.count(b"\n") - data.count(b"\r\n")
                found.append(Message(Path(entry.path), entry.name.split(":", 1)[0], size))
        found.sort(key=lambda message: (message.path.stat().st_mtime_ns, message.uid))
        return found
