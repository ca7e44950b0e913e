"""MODE: channel ``+o +v +t +n +k +l +i +m`` and user ``+i``; channel changes are stored."""

from __future__ import annotations

from dropins.words.irc import numerics as n
from dropins.words.irc.connection import Connection
from dropins.words.irc.parse import Line
from dropins.words.realm import Channel, Message

__all__ = ["mode"]

FLAGS = "imnt"
WITH_ARGUMENT = "ovkl"


def mode(conn: Connection, line: Line) -> None:
    if not line.params:
        conn.reply(n.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
        return
    target = line.params[0]
    if target[:1] in "#&":
        channel = conn.realm.find_channel(target)
        if channel is None:
            conn.reply(n.ERR_NOSUCHCHANNEL, target, "No such channel")
        elif len(line.params) == 1:
            _show(conn, channel)
        else:
            _change(conn, channel, line.params[1], line.params[2:])
        return
    user = conn.user
    assert user is not None
    if target.casefold() != user.nick.casefold():
        conn.reply(n.ERR_USERSDONTMATCH, "Cannot change mode for other users")
        return
    if len(line.params) == 1:
        conn.reply(n.RPL_UMODEIS, "+i" if user.invisible else "+")
        return
    adding, applied = True, ""
    for char in line.params[1]:
        if char in "+-":
            adding = char == "+"
        elif char == "i":
            user.invisible = adding
            applied += ("+" if adding else "-") + "i"
        else:
            conn.reply(n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    if applied:
        conn.write(user.mask, "MODE", [user.nick, applied])


def _show(conn: Connection, channel: Channel) -> None:
    record = channel.record
    modes, arguments = "+" + record.modes, []
    if record.key:
        modes += "k"
        arguments.append(record.key)
    if record.limit is not None:
        modes += "l"
        arguments.append(str(record.limit))
    conn.reply(n.RPL_CHANNELMODEIS, channel.name, modes, *arguments)


def _change(conn: Connection, channel: Channel, changes: str, arguments: list[str]) -> None:
    user = conn.user
    assert user is not None
    if changes in ("b", "+b"):
        conn.reply("368", channel.name, "End of channel ban list")
        return
    if not channel.is_op(user):
        conn.reply(n.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")
        return
    record = channel.record
    adding, done, done_arguments = True, "", []
    sign = ""
    for char in changes:
        if char in "+-":
            adding = char == "+"
            continue
        mark = "+" if adding else "-"
        if char in FLAGS:
            present = char in record.modes
            if adding and not present:
                record.modes = "".join(sorted(record.modes + char))
            elif not adding and present:
                record.modes = record.modes.replace(char, "")
            else:
                continue
        elif char in "ov":
            if not arguments:
                conn.reply(n.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
                continue
            nick = arguments.pop(0)
            member = conn.realm.find_user(nick)
            if member is None or member not in channel.members:
                conn.reply(n.ERR_USERNOTINCHANNEL, nick, channel.name,
                           "They aren't on that channel")
                continue
            flags = channel.members[member]
            if adding:
                flags.add(char)
            else:
                flags.discard(char)
            if char == "o" and member.account:
                (record.operators.add if adding else record.operators.discard)(member.account)
            done_arguments.append(member.nick)
        elif char == "k":
            if adding:
                if not arguments:
                    conn.reply(n.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
                    continue
                record.key = arguments.pop(0)[:23]
                done_arguments.append(record.key)
            else:
                if arguments:
                    arguments.pop(0)
                record.key = None
                done_arguments.append("*")
        elif char == "l":
            if adding:
                if not arguments or not arguments[0].isdigit():
                    conn.reply(n.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
                    continue
                record.limit = int(arguments.pop(0))
                done_arguments.append(str(record.limit))
            else:
                record.limit = None
        else:
            conn.reply(n.ERR_UNKNOWNMODE, char, "is unknown mode char to me")
            continue
        if mark != sign:
            done += mark
            sign = mark
        done += char
    if not done:
        return
    conn.realm.save(channel)
    message = Message(user.mask, "MODE", [channel.name, done, *done_arguments],
                      account=user.account)
    for member in channel.members:
        member.deliver(message)
