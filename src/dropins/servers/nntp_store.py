"""The news spool of ``dropins nntp``: one folder per group under ``--groups DIR``, one file
per article named by its number (``DIR/comp.lang.python/17``).

Group names come from folder names that are valid NNTP names (``[a-z0-9+_-]`` parts joined
by dots); anything else in the folder is ignored.  Message-IDs are indexed when the server
starts and on every post, so a second post of the same Message-ID is refused (RFC 5537's
"duplicate"), and ``ARTICLE <id>`` finds an article in any group.  A post is written to a
temporary file and renamed into place, so a reader never sees half an article.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

__all__ = ["Article", "Group", "Spool", "valid_group"]

_GROUP = re.compile(r"[a-z0-9+_-]+(\.[a-z0-9+_-]+)*")
OVERVIEW = ("Subject", "From", "Date", "Message-ID", "References")


def valid_group(name: str) -> bool:
    return bool(_GROUP.fullmatch(name)) and len(name) <= 200


@dataclass
class Article:
    """What the overview needs of one article, read once from its file."""

    number: int
    message_id: str
    headers: dict[str, str]
    size: int
    lines: int


@dataclass
class Group:
    name: str
    folder: Path
    articles: dict[int, Article] = field(default_factory=dict)
    created: float = 0.0

    @property
    def low(self) -> int:
        return min(self.articles, default=self.high + 1)

    @property
    def high(self) -> int:
        return max(self.articles, default=0)


def _split(data: bytes) -> tuple[bytes, bytes]:
    """An article's header block and body (either line ending)."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = data.partition(separator)
        if found:
            return head, body
    return data, b""


def read_headers(data: bytes) -> dict[str, str]:
    head, _ = _split(data)
    message = BytesHeaderParser(policy=compat32).parsebytes(head + b"\n\n")
    return {key.lower(): " ".join(str(value).split()) for key, value in message.items()}


class Spool:
    """The groups and their articles; every method does file I/O (run it in a thread)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.groups: dict[str, Group] = {}
        self.message_ids: dict[str, tuple[str, int]] = {}

    def load(self) -> None:
        """Scan the folder: groups, their articles, the Message-ID index."""
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if not entry.is_dir(follow_symlinks=False) or not valid_group(entry.name):
                continue
            group = Group(entry.name, Path(entry.path), created=entry.stat().st_mtime)
            for item in os.scandir(entry.path):
                if item.name.isdigit() and item.is_file(follow_symlinks=False):
                    self._index(group, int(item.name), Path(item.path).read_bytes())
            self.groups[group.name] = group

    def _index(self, group: Group, number: int, data: bytes) -> Article:
        headers = read_headers(data)
        message_id = headers.get("message-id", f"<{group.name}.{number}@dropins.invalid>")
        _, body = _split(data)
        article = Article(number, message_id, headers, len(data), body.count(b"\n"))
        group.articles[number] = article
        self.message_ids.setdefault(message_id, (group.name, number))
        return article

    def path(self, group: str, number: int) -> Path:
        return self.groups[group].folder / str(number)

    def read(self, group: str, number: int) -> bytes | None:
        try:
            return self.path(group, number).read_bytes()
        except (FileNotFoundError, KeyError):
            return None

    def post(self, groups: list[str], data: bytes) -> list[tuple[str, int]]:
        """Store ``data`` in each group (they exist; the caller checked); return the numbers."""
        placed = []
        for name in groups:
            group = self.groups[name]
            number = group.high + 1
            temporary = group.folder / f".tmp.{os.getpid()}.{time.monotonic_ns()}"
            with open(temporary, "xb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, group.folder / str(number))
            self._index(group, number, data)
            placed.append((name, number))
        return placed
