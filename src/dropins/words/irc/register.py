"""Registration: PASS, NICK, USER, CAP (LS 302, REQ, END), SASL PLAIN, then the welcome."""

from __future__ import annotations

import base64
import re

from dropins.words.irc import numerics as n
from dropins.words.irc.connection import Connection
from dropins.words.irc.parse import Line
from dropins.words.realm import User

__all__ = ["CAPS", "NICK", "authenticate", "cap", "nick", "pass_", "user", "welcome"]

CAPS = ("server-time", "message-tags", "account-notify", "away-notify", "account-tag", "sasl")
NICK = re.compile(r"^[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,29}$")
RESERVED = {"nickserv", "chanserv"}


def pass_(conn: Connection, line: Line) -> None:
    if conn.user is not None:
        conn.reply(n.ERR_ALREADYREGISTRED, "You may not reregister")
    elif not line.params:
        conn.reply(n.ERR_NEEDMOREPARAMS, "PASS", "Not enough parameters")
    else:
        conn.password = line.params[0]


def nick(conn: Connection, line: Line) -> None:
    if not line.params or not line.params[0]:
        conn.reply(n.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    wanted = line.params[0]
    if not NICK.match(wanted) or wanted.casefold() in RESERVED:
        conn.reply(n.ERR_ERRONEUSNICKNAME, wanted, "Erroneous nickname")
        return
    taken = conn.realm.find_user(wanted)
    if taken is not None and taken is not conn.user:
        conn.reply(n.ERR_NICKNAMEINUSE, wanted, "Nickname is already in use")
        return
    store = conn.realm.store
    if conn.user is not None:
        if store.has_account(wanted) and conn.account != wanted.casefold():
            conn.reply(n.ERR_NICKNAMEINUSE, wanted,
                       "Nickname is registered: identify first (/msg NickServ IDENTIFY)")
            return
        conn.realm.rename(conn.user, wanted)
        conn.nick = wanted
        return
    conn.nick = wanted
    maybe_welcome(conn)


def user(conn: Connection, line: Line) -> None:
    if conn.user is not None:
        conn.reply(n.ERR_ALREADYREGISTRED, "You may not reregister")
        return
    if len(line.params) < 4:
        conn.reply(n.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
        return
    conn.ident = line.params[0][:10] or "user"
    conn.realname = line.params[3]
    maybe_welcome(conn)


def cap(conn: Connection, line: Line) -> None:
    sub = line.params[0].upper() if line.params else ""
    target = conn.nick or "*"
    server = conn.realm.server_name
    if sub == "LS":
        if conn.user is None:
            conn.cap_negotiating = True
        offered = [c if c != "sasl" else "sasl=PLAIN" for c in CAPS] \
            if line.params[1:2] == ["302"] else list(CAPS)
        conn.write(server, "CAP", [target, "LS", " ".join(offered)])
    elif sub == "LIST":
        conn.write(server, "CAP", [target, "LIST", " ".join(sorted(conn.caps))])
    elif sub == "REQ":
        if conn.user is None:
            conn.cap_negotiating = True
        wanted = line.params[1].split() if len(line.params) > 1 else []
        names = [w.lstrip("-") for w in wanted]
        if all(name in CAPS for name in names) and wanted:
            for item in wanted:
                if item.startswith("-"):
                    conn.caps.discard(item[1:])
                else:
                    conn.caps.add(item)
            conn.write(server, "CAP", [target, "ACK", " ".join(wanted)])
        else:
            conn.write(server, "CAP", [target, "NAK", " ".join(wanted)])
    elif sub == "END":
        conn.cap_negotiating = False
        maybe_welcome(conn)
    else:
        conn.reply("410", sub or "*", "Invalid CAP command")


def authenticate(conn: Connection, line: Line) -> None:
    if "sasl" not in conn.caps or not line.params:
        conn.reply(n.ERR_SASLFAIL, "SASL authentication failed")
        return
    argument = line.params[0]
    if argument == "*":
        conn.sasl = None
        conn.reply(n.ERR_SASLABORTED, "SASL authentication aborted")
    elif conn.sasl is None:
        if argument.upper() != "PLAIN":
            conn.reply("908", "PLAIN", "are available SASL mechanisms")
            conn.reply(n.ERR_SASLFAIL, "SASL authentication failed")
            return
        conn.sasl = ""
        conn.write(None, "AUTHENTICATE", ["+"])
    else:
        conn.sasl += "" if argument == "+" else argument
        if len(argument) == 400:
            return  # more chunks follow
        data, conn.sasl = conn.sasl, None
        try:
            _, name, password = base64.b64decode(data, validate=True).decode().split("\0")
        except ValueError:
            conn.reply(n.ERR_SASLFAIL, "SASL authentication failed")
            return
        conn.spawn(_sasl_check(conn, name, password))


async def _sasl_check(conn: Connection, name: str, password: str) -> None:
    account = await check_login(conn, name, password)
    if account is None:
        conn.reply(n.ERR_SASLFAIL, "SASL authentication failed")
        return
    conn.account = account
    mask = f"{conn.nick or '*'}!{conn.ident or '*'}@{conn.host}"
    conn.reply(n.RPL_LOGGEDIN, mask, account, f"You are now logged in as {account}")
    conn.reply(n.RPL_SASLSUCCESS, "SASL authentication successful")


async def check_login(conn: Connection, name: str, password: str) -> str | None:
    """The account for a right name and password: the realm's accounts, then ``--auth``."""
    store = conn.realm.store
    if store.has_account(name):
        return name.casefold() if await conn.realm.verify(name, password) else None
    if conn.settings.login is not None:
        result: str | None = await conn.settings.login(conn.host, name, password)
        return result
    return None


def maybe_welcome(conn: Connection) -> None:
    if conn.user is not None or conn.cap_negotiating or not conn.nick or not conn.ident:
        return
    conn.spawn(_finish(conn))


async def _finish(conn: Connection) -> None:
    nick_ = conn.nick
    assert nick_ is not None
    if conn.password is not None and conn.account is None:
        conn.account = await check_login(conn, nick_, conn.password)
        if conn.account is None:
            conn.reply(n.ERR_PASSWDMISMATCH, "Password incorrect")
            conn.close("Bad password")
            return
    elif conn.settings.login is not None and conn.account is None:
        conn.reply(n.ERR_PASSWDMISMATCH, "This server needs a password: PASS or SASL")
        conn.close("No password")
        return
    if conn.closed or conn.user is not None:
        return
    if conn.realm.store.has_account(nick_) and conn.account != nick_.casefold():
        conn.reply(n.ERR_NICKNAMEINUSE, nick_,
                   "Nickname is registered: log in with SASL or PASS, or choose another")
        conn.nick = None
        return
    user_ = User(nick_, conn.deliver, ident=conn.ident or "user", host=conn.host,
                 realname=conn.realname)
    user_.account = conn.account
    if not conn.realm.add_user(user_):
        conn.reply(n.ERR_NICKNAMEINUSE, nick_, "Nickname is already in use")
        conn.nick = None
        return
    conn.user = user_
    welcome(conn)


def welcome(conn: Connection) -> None:
    server = conn.realm.server_name
    assert conn.user is not None
    conn.reply(n.RPL_WELCOME, f"Welcome to the dropins words network {conn.user.mask}")
    conn.reply(n.RPL_YOURHOST, f"Your host is {server}, running dropins words")
    conn.reply(n.RPL_CREATED, "This server was created today")
    conn.reply(n.RPL_MYINFO, server, "dropins-words", "i", "iklmnotv")
    conn.reply(n.RPL_ISUPPORT, "CASEMAPPING=ascii", "CHANTYPES=#&", "PREFIX=(ov)@+",
               "CHANMODES=,k,l,imnt", f"CHANLIMIT=#&:{conn.settings.max_channels}",
               "NICKLEN=30", "CHANNELLEN=50", "TOPICLEN=390", "NETWORK=dropins",
               "are supported by this server")
    from dropins.words.irc.commands import send_motd

    send_motd(conn)
