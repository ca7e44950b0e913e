"""SQLite persistence of the realm: accounts, channel topics, modes, keys, limits, operators.

Only what must survive a restart is stored; who is online lives in memory.  Every write is
its own committed transaction, so a crash loses at most the change being made.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
from dataclasses import dataclass, field

__all__ = ["ChannelRecord", "Store", "check_password", "hash_password"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, password TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS channels (name TEXT PRIMARY KEY, topic TEXT NOT NULL DEFAULT '',
    modes TEXT NOT NULL DEFAULT 'nt', key TEXT, lim INTEGER);
CREATE TABLE IF NOT EXISTS channel_ops (channel TEXT NOT NULL, account TEXT NOT NULL,
    PRIMARY KEY (channel, account));
"""


def hash_password(password: str) -> str:
    """A salted scrypt hash (stdlib only, so accounts need no extra)."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2 ** 14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    actual = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2 ** 14, r=8, p=1)
    return hmac.compare_digest(actual.hex(), digest)


@dataclass
class ChannelRecord:
    """The stored part of a channel."""

    name: str
    topic: str = ""
    modes: str = "nt"
    key: str | None = None
    limit: int | None = None
    operators: set[str] = field(default_factory=set)


class Store:
    """The realm's database at ``path`` (``:memory:`` for none)."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path)
        self.db.executescript(_SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    # accounts (names are stored casefolded)
    def add_account(self, name: str, hashed: str) -> bool:
        """Store an account whose password ``hash_password`` hashed; False if it exists."""
        try:
            with self.db:
                self.db.execute("INSERT INTO accounts VALUES (?, ?)", (name.casefold(), hashed))
        except sqlite3.IntegrityError:
            return False
        return True

    def set_password(self, name: str, hashed: str) -> bool:
        with self.db:
            cursor = self.db.execute("UPDATE accounts SET password = ? WHERE name = ?",
                                     (hashed, name.casefold()))
        return cursor.rowcount == 1

    def delete_account(self, name: str) -> bool:
        with self.db:
            cursor = self.db.execute("DELETE FROM accounts WHERE name = ?", (name.casefold(),))
            self.db.execute("DELETE FROM channel_ops WHERE account = ?", (name.casefold(),))
        return cursor.rowcount == 1

    def has_account(self, name: str) -> bool:
        row = self.db.execute("SELECT 1 FROM accounts WHERE name = ?",
                              (name.casefold(),)).fetchone()
        return row is not None

    def accounts(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT name FROM accounts ORDER BY name")]

    def password_of(self, name: str) -> str | None:
        row = self.db.execute("SELECT password FROM accounts WHERE name = ?",
                              (name.casefold(),)).fetchone()
        return None if row is None else str(row[0])

    # channels
    def channels(self) -> list[ChannelRecord]:
        records = {}
        for name, topic, modes, key, limit in self.db.execute(
                "SELECT name, topic, modes, key, lim FROM channels"):
            records[name] = ChannelRecord(name, topic, modes, key, limit)
        for channel, account in self.db.execute("SELECT channel, account FROM channel_ops"):
            if channel in records:
                records[channel].operators.add(account)
        return list(records.values())

    def save_channel(self, record: ChannelRecord) -> None:
        key = record.name
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO channels VALUES (?, ?, ?, ?, ?)",
                            (key, record.topic, record.modes, record.key, record.limit))
            self.db.execute("DELETE FROM channel_ops WHERE channel = ?", (key,))
            self.db.executemany("INSERT INTO channel_ops VALUES (?, ?)",
                                [(key, account) for account in sorted(record.operators)])
