"""The realm: users online, accounts and groups (channels), shared by every front-end.

A front-end (the IRC gateway, a bot plugin) adds a ``User`` with a ``deliver`` callable and
calls ``join``, ``part``, ``send``; the realm checks the channel rules and hands each
recipient a ``Message``.  What must survive a restart goes through ``Store``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dropins.words.store import ChannelRecord, Store, check_password, hash_password

__all__ = ["Channel", "Message", "Realm", "User"]


@dataclass
class Message:
    """One event for a recipient: ``source`` is a user's mask or the server's name."""

    source: str
    command: str
    params: list[str]
    time: float = field(default_factory=time.time)
    account: str | None = None


class User:
    """Someone online; ``deliver`` receives each Message meant for them."""

    def __init__(self, nick: str, deliver: Callable[[Message], None], *, ident: str = "user",
                 host: str = "localhost", realname: str = "") -> None:
        self.nick = nick
        self.deliver = deliver
        self.ident = ident
        self.host = host
        self.realname = realname
        self.account: str | None = None
        self.away: str | None = None
        self.invisible = False
        self.channels: dict[str, Channel] = {}
        self.signon = time.time()

    @property
    def mask(self) -> str:
        return f"{self.nick}!{self.ident}@{self.host}"


class Channel:
    """A group: its members (with their ``o``/``v`` flags) and its stored record."""

    def __init__(self, record: ChannelRecord) -> None:
        self.record = record
        self.members: dict[User, set[str]] = {}
        self.invited: set[str] = set()

    @property
    def name(self) -> str:
        return self.record.name

    def prefix(self, user: User) -> str:
        flags = self.members.get(user, set())
        return "@" if "o" in flags else "+" if "v" in flags else ""

    def is_op(self, user: User) -> bool:
        return "o" in self.members.get(user, set())


class Realm:
    """Users, channels and accounts; see the module docstring."""

    def __init__(self, store: Store, server_name: str = "dropins.words") -> None:
        self.store = store
        self.server_name = server_name
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.listeners: list[Callable[[User, str, str], None]] = []
        for record in store.channels():
            self.channels[record.name.casefold()] = Channel(record)

    # accounts: hashing runs in a thread, the database is used from the loop's thread only
    async def register(self, name: str, password: str) -> bool:
        """Create account ``name``; False when it exists."""
        hashed = await asyncio.get_running_loop().run_in_executor(None, hash_password,
                                                                  password)
        return self.store.add_account(name, hashed)

    async def reset_password(self, name: str, password: str) -> bool:
        hashed = await asyncio.get_running_loop().run_in_executor(None, hash_password,
                                                                  password)
        return self.store.set_password(name, hashed)

    async def verify(self, name: str, password: str) -> bool:
        """Whether ``password`` is account ``name``'s (False for no such account)."""
        stored = self.store.password_of(name)
        if stored is None:
            return False
        return await asyncio.get_running_loop().run_in_executor(None, check_password,
                                                                password, stored)

    # users
    def find_user(self, nick: str) -> User | None:
        return self.users.get(nick.casefold())

    def add_user(self, user: User) -> bool:
        """Put ``user`` online; False when the nick is taken."""
        if user.nick.casefold() in self.users:
            return False
        self.users[user.nick.casefold()] = user
        return True

    def rename(self, user: User, nick: str) -> bool:
        key = nick.casefold()
        if key in self.users and self.users[key] is not user:
            return False
        old = user.mask
        self.users.pop(user.nick.casefold(), None)
        user.nick = nick
        self.users[key] = user
        self._to_peers(user, Message(old, "NICK", [nick], account=user.account), True)
        return True

    def remove_user(self, user: User, reason: str = "Quit") -> None:
        if self.users.get(user.nick.casefold()) is not user:
            return
        del self.users[user.nick.casefold()]
        self._to_peers(user, Message(user.mask, "QUIT", [reason], account=user.account), False)
        for channel in list(user.channels.values()):
            self._leave(channel, user)

    def peers(self, user: User) -> set[User]:
        """Everyone who shares a channel with ``user`` (not ``user``)."""
        seen: set[User] = set()
        for channel in user.channels.values():
            seen.update(channel.members)
        seen.discard(user)
        return seen

    def _to_peers(self, user: User, message: Message, include_self: bool) -> None:
        for peer in self.peers(user):
            peer.deliver(message)
        if include_self:
            user.deliver(message)

    # channels
    def find_channel(self, name: str) -> Channel | None:
        return self.channels.get(name.casefold())

    def join(self, user: User, name: str, key: str | None = None) -> str | None:
        """Put ``user`` in channel ``name``; None, or why not: 'key', 'limit', 'invite'."""
        channel = self.find_channel(name)
        created = channel is None
        if channel is None:
            channel = Channel(ChannelRecord(name))
            self.channels[name.casefold()] = channel
        if user in channel.members:
            return None
        record = channel.record
        if not created:
            if record.key and key != record.key:
                return "key"
            if record.limit is not None and len(channel.members) >= record.limit:
                return "limit"
            if "i" in record.modes and user.nick.casefold() not in channel.invited:
                return "invite"
        channel.invited.discard(user.nick.casefold())
        flags: set[str] = set()
        operator_account = user.account is not None and user.account in record.operators
        if operator_account or (not channel.members and not record.operators):
            flags.add("o")
            if user.account is not None and created:
                record.operators.add(user.account)
        channel.members[user] = flags
        user.channels[channel.name.casefold()] = channel
        if created:
            self.store.save_channel(record)
        message = Message(user.mask, "JOIN", [channel.name], account=user.account)
        for member in channel.members:
            member.deliver(message)
        return None

    def part(self, user: User, channel: Channel, reason: str = "") -> None:
        message = Message(user.mask, "PART", [channel.name, *([reason] if reason else [])],
                          account=user.account)
        for member in channel.members:
            member.deliver(message)
        self._leave(channel, user)

    def kick(self, by: str, channel: Channel, user: User, reason: str) -> None:
        message = Message(by, "KICK", [channel.name, user.nick, reason])
        for member in channel.members:
            member.deliver(message)
        self._leave(channel, user)

    def _leave(self, channel: Channel, user: User) -> None:
        channel.members.pop(user, None)
        user.channels.pop(channel.name.casefold(), None)

    def set_topic(self, source: str, channel: Channel, topic: str) -> None:
        channel.record.topic = topic
        self.store.save_channel(channel.record)
        message = Message(source, "TOPIC", [channel.name, topic])
        for member in channel.members:
            member.deliver(message)

    def save(self, channel: Channel) -> None:
        self.store.save_channel(channel.record)

    # messages
    def send(self, user: User, target: str, text: str, command: str = "PRIVMSG") -> str | None:
        """Send ``text`` to a channel or a nick; None, or why not: 'nosuch', 'cannotsend'."""
        message = Message(user.mask, command, [target, text], account=user.account)
        channel = self.find_channel(target) if target[:1] in "#&" else None
        if channel is not None:
            modes = channel.record.modes
            flags = channel.members.get(user)
            if (flags is None and "n" in modes) or ("m" in modes and not flags):
                return "cannotsend"
            for member in channel.members:
                if member is not user:
                    member.deliver(message)
        else:
            peer = self.find_user(target)
            if peer is None:
                return "nosuch"
            peer.deliver(message)
        for listener in self.listeners:
            listener(user, target, text)
        return None

    def on_message(self, callback: Callable[[User, str, str], None]) -> None:
        """Call ``callback(user, target, text)`` for every message sent in the realm."""
        self.listeners.append(callback)

    def notify_account(self, user: User) -> None:
        """Tell ``user``'s peers their account changed (IRCv3 account-notify)."""
        message = Message(user.mask, "ACCOUNT", [user.account or "*"], account=user.account)
        for peer in self.peers(user):
            peer.deliver(message)

    def notify_away(self, user: User) -> None:
        message = Message(user.mask, "AWAY", [user.away] if user.away else [],
                          account=user.account)
        for peer in self.peers(user):
            peer.deliver(message)
