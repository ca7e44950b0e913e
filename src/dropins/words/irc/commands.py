"""The commands of a registered client (RFC 2812 as clients use them) and the dispatcher."""

from __future__ import annotations

from collections.abc import Callable

from dropins.words.irc import numerics as n
from dropins.words.irc import register
from dropins.words.irc.connection import Connection
from dropins.words.irc.parse import Line

__all__ = ["dispatch", "send_motd"]

Handler = Callable[[Connection, Line], None]


def _ping(conn: Connection, line: Line) -> None:
    if not line.params:
        conn.reply("409", "No origin specified")
        return
    server = conn.realm.server_name
    conn.write(server, "PONG", [server, line.params[0]])


def _pong(conn: Connection, line: Line) -> None:
    pass  # any line counts as activity for the ping timeout


def _quit(conn: Connection, line: Line) -> None:
    conn.close(f"Quit: {line.params[0]}" if line.params else "Quit")


def _join(conn: Connection, line: Line) -> None:
    user = conn.user
    assert user is not None
    if not line.params:
        conn.reply(n.ERR_NEEDMOREPARAMS, "JOIN", "Not enough parameters")
        return
    if line.params[0] == "0":
        for channel in list(user.channels.values()):
            conn.realm.part(user, channel)
        return
    keys = line.params[1].split(",") if len(line.params) > 1 else []
    for index, name in enumerate(line.params[0].split(",")):
        if name[:1] not in ("#", "&") or len(name) > 50 or any(c in name for c in " ,\a"):
            conn.reply(n.ERR_NOSUCHCHANNEL, name, "No such channel")
            continue
        if len(user.channels) >= conn.settings.max_channels and \
                name.casefold() not in user.channels:
            conn.reply(n.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
            continue
        refused = conn.realm.join(user, name, keys[index] if index < len(keys) else None)
        if refused is not None:
            code, text = {"key": (n.ERR_BADCHANNELKEY, "Cannot join channel (+k)"),
                          "limit": (n.ERR_CHANNELISFULL, "Cannot join channel (+l)"),
                          "invite": (n.ERR_INVITEONLYCHAN, "Cannot join channel (+i)")}[refused]
            conn.reply(code, name, text)
            continue
        joined = conn.realm.find_channel(name)
        assert joined is not None
        if joined.record.topic:
            conn.reply(n.RPL_TOPIC, joined.name, joined.record.topic)
        _names_of(conn, joined.name)


def _names_of(conn: Connection, name: str) -> None:
    channel = conn.realm.find_channel(name)
    if channel is not None:
        names = [channel.prefix(u) + u.nick for u in channel.members]
        for start in range(0, len(names), 40):
            conn.reply(n.RPL_NAMREPLY, "=", channel.name, " ".join(names[start:start + 40]))
    conn.reply(n.RPL_ENDOFNAMES, name, "End of /NAMES list.")


def _names(conn: Connection, line: Line) -> None:
    if not line.params:
        conn.reply(n.RPL_ENDOFNAMES, "*", "End of /NAMES list.")
        return
    for name in line.params[0].split(","):
        _names_of(conn, name)


def _part(conn: Connection, line: Line) -> None:
    assert conn.user is not None
    if not line.params:
        conn.reply(n.ERR_NEEDMOREPARAMS, "PART", "Not enough parameters")
        return
    reason = line.params[1] if len(line.params) > 1 else ""
    for name in line.params[0].split(","):
        channel = conn.realm.find_channel(name)
        if channel is None:
            conn.reply(n.ERR_NOSUCHCHANNEL, name, "No such channel")
        elif conn.user not in channel.members:
            conn.reply(n.ERR_NOTONCHANNEL, name, "You're not on that channel")
        else:
            conn.realm.part(conn.user, channel, reason)


def _message(conn: Connection, line: Line) -> None:
    assert conn.user is not None
    notice = line.command == "NOTICE"
    if not line.params:
        if not notice:
            conn.reply(n.ERR_NORECIPIENT, f"No recipient given ({line.command})")
        return
    if len(line.params) < 2 or not line.params[1]:
        if not notice:
            conn.reply(n.ERR_NOTEXTTOSEND, "No text to send")
        return
    text = line.params[1]
    for target in line.params[0].split(",")[:4]:
        if target.casefold() == "nickserv" and not notice:
            from dropins.words.irc.nickserv import nickserv

            nickserv(conn, text)
            continue
        refused = conn.realm.send(conn.user, target, text, line.command)
        if notice:
            continue
        if refused == "nosuch":
            conn.reply(n.ERR_NOSUCHNICK, target, "No such nick/channel")
        elif refused == "cannotsend":
            conn.reply(n.ERR_CANNOTSENDTOCHAN, target, "Cannot send to channel")
        else:
            peer = conn.realm.find_user(target)
            if peer is not None and peer.away:
                conn.reply(n.RPL_AWAY, peer.nick, peer.away)


def _topic(conn: Connection, line: Line) -> None:
    assert conn.user is not None
    if not line.params:
        conn.reply(n.ERR_NEEDMOREPARAMS, "TOPIC", "Not enough parameters")
        return
    channel = conn.realm.find_channel(line.params[0])
    if channel is None:
        conn.reply(n.ERR_NOSUCHCHANNEL, line.params[0], "No such channel")
    elif len(line.params) == 1:
        if channel.record.topic:
            conn.reply(n.RPL_TOPIC, channel.name, channel.record.topic)
        else:
            conn.reply(n.RPL_NOTOPIC, channel.name, "No topic is set")
    elif conn.user not in channel.members:
        conn.reply(n.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")
    elif "t" in channel.record.modes and not channel.is_op(conn.user):
        conn.reply(n.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")
    else:
        conn.realm.set_topic(conn.user.mask, channel, line.params[1][:390])


def _list(conn: Connection, line: Line) -> None:
    conn.reply(n.RPL_LISTSTART, "Channel", "Users  Name")
    wanted = {name.casefold() for name in line.params[0].split(",")} if line.params else None
    for key, channel in sorted(conn.realm.channels.items()):
        if wanted is None or key in wanted:
            conn.reply(n.RPL_LIST, channel.name, str(len(channel.members)), channel.record.topic)
    conn.reply(n.RPL_LISTEND, "End of /LIST")


def _who_line(conn: Connection, channel_name: str, user: object) -> None:
    from dropins.words.realm import User

    assert isinstance(user, User)
    flags = "G" if user.away else "H"
    channel = conn.realm.find_channel(channel_name)
    if channel is not None:
        flags += channel.prefix(user)
    conn.reply(n.RPL_WHOREPLY, channel_name, user.ident, user.host, conn.realm.server_name,
               user.nick, flags, f"0 {user.realname}")


def _who(conn: Connection, line: Line) -> None:
    mask = line.params[0] if line.params else "*"
    channel = conn.realm.find_channel(mask)
    if channel is not None:
        for member in channel.members:
            _who_line(conn, channel.name, member)
    else:
        peer = conn.realm.find_user(mask)
        if peer is not None:
            _who_line(conn, "*", peer)
    conn.reply(n.RPL_ENDOFWHO, mask, "End of /WHO list.")


def _whois(conn: Connection, line: Line) -> None:
    if not line.params:
        conn.reply(n.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    target = line.params[-1]
    peer = conn.realm.find_user(target)
    if peer is None:
        conn.reply(n.ERR_NOSUCHNICK, target, "No such nick/channel")
    else:
        server = conn.realm.server_name
        conn.reply(n.RPL_WHOISUSER, peer.nick, peer.ident, peer.host, "*", peer.realname)
        if peer.channels:
            conn.reply(n.RPL_WHOISCHANNELS, peer.nick, " ".join(
                c.prefix(peer) + c.name for c in peer.channels.values()))
        conn.reply(n.RPL_WHOISSERVER, peer.nick, server, "dropins words")
        if peer.away:
            conn.reply(n.RPL_AWAY, peer.nick, peer.away)
        if peer.account:
            conn.reply(n.RPL_WHOISACCOUNT, peer.nick, peer.account, "is logged in as")
    conn.reply(n.RPL_ENDOFWHOIS, target, "End of /WHOIS list.")


def _kick(conn: Connection, line: Line) -> None:
    assert conn.user is not None
    if len(line.params) < 2:
        conn.reply(n.ERR_NEEDMOREPARAMS, "KICK", "Not enough parameters")
        return
    channel = conn.realm.find_channel(line.params[0])
    if channel is None:
        conn.reply(n.ERR_NOSUCHCHANNEL, line.params[0], "No such channel")
        return
    if not channel.is_op(conn.user):
        conn.reply(n.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")
        return
    victim = conn.realm.find_user(line.params[1])
    if victim is None or victim not in channel.members:
        conn.reply(n.ERR_USERNOTINCHANNEL, line.params[1], channel.name,
                   "They aren't on that channel")
        return
    reason = line.params[2] if len(line.params) > 2 else conn.user.nick
    conn.realm.kick(conn.user.mask, channel, victim, reason)


def _invite(conn: Connection, line: Line) -> None:
    assert conn.user is not None
    if len(line.params) < 2:
        conn.reply(n.ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
        return
    peer = conn.realm.find_user(line.params[0])
    channel = conn.realm.find_channel(line.params[1])
    if peer is None:
        conn.reply(n.ERR_NOSUCHNICK, line.params[0], "No such nick/channel")
    elif channel is None:
        conn.reply(n.ERR_NOSUCHCHANNEL, line.params[1], "No such channel")
    elif conn.user not in channel.members:
        conn.reply(n.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")
    elif peer in channel.members:
        conn.reply(n.ERR_USERONCHANNEL, peer.nick, channel.name, "is already on channel")
    elif "i" in channel.record.modes and not channel.is_op(conn.user):
        conn.reply(n.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")
    else:
        channel.invited.add(peer.nick.casefold())
        conn.reply(n.RPL_INVITING, peer.nick, channel.name)
        from dropins.words.realm import Message

        peer.deliver(Message(conn.user.mask, "INVITE", [peer.nick, channel.name]))


def _away(conn: Connection, line: Line) -> None:
    assert conn.user is not None
    text = line.params[0] if line.params else ""
    conn.user.away = text or None
    if text:
        conn.reply(n.RPL_NOWAWAY, "You have been marked as being away")
    else:
        conn.reply(n.RPL_UNAWAY, "You are no longer marked as being away")
    conn.realm.notify_away(conn.user)


def send_motd(conn: Connection) -> None:
    motd = conn.settings.motd
    if not motd:
        conn.reply(n.ERR_NOMOTD, "MOTD File is missing")
        return
    conn.reply(n.RPL_MOTDSTART, f"- {conn.realm.server_name} Message of the day - ")
    for text in motd:
        conn.reply(n.RPL_MOTD, f"- {text}")
    conn.reply(n.RPL_ENDOFMOTD, "End of /MOTD command.")


def _motd(conn: Connection, line: Line) -> None:
    send_motd(conn)


def _mode(conn: Connection, line: Line) -> None:
    from dropins.words.irc.modes import mode

    mode(conn, line)


BEFORE: dict[str, Handler] = {"PASS": register.pass_, "NICK": register.nick, "USER": register.user,
          "CAP": register.cap, "AUTHENTICATE": register.authenticate, "PING": _ping,
          "PONG": _pong, "QUIT": _quit}
AFTER: dict[str, Handler] = {
    "JOIN": _join, "PART": _part, "PRIVMSG": _message, "NOTICE": _message, "TOPIC": _topic,
    "NAMES": _names, "LIST": _list, "WHO": _who, "WHOIS": _whois, "MODE": _mode,
    "KICK": _kick, "INVITE": _invite, "AWAY": _away, "MOTD": _motd}


def dispatch(conn: Connection, line: Line) -> None:
    """Run one command: 451 before registration, 421 when unknown."""
    handler: Handler | None = BEFORE.get(line.command)
    if handler is None:
        handler = AFTER.get(line.command)
        if handler is None:
            conn.reply(n.ERR_UNKNOWNCOMMAND, line.command[:30], "Unknown command")
            return
        if conn.user is None:
            conn.reply(n.ERR_NOTREGISTERED, "You have not registered")
            return
    handler(conn, line)
