"""NickServ: ``REGISTER password`` (with ``--allow-register``) and ``IDENTIFY [name] password``.

The 0.19 words server's "bot asks for your password", modernised: the account is the nick,
its password is hashed in the realm's store, and IDENTIFY logs the connection in (as SASL
would) so the account's reserved nick and channel operator rights become its own.
"""

from __future__ import annotations

from dropins.words.irc.connection import Connection

__all__ = ["nickserv"]

SOURCE = "NickServ!services@services"


def _say(conn: Connection, text: str) -> None:
    conn.write(SOURCE, "NOTICE", [conn.nick or "*", text])


def nickserv(conn: Connection, text: str) -> None:
    words = text.split()
    command = words[0].upper() if words else "HELP"
    if command == "REGISTER":
        conn.spawn(_register(conn, words[1:]))
    elif command == "IDENTIFY":
        conn.spawn(_identify(conn, words[1:]))
    else:
        _say(conn, "Commands: REGISTER password, IDENTIFY [account] password")


async def _register(conn: Connection, arguments: list[str]) -> None:
    if not conn.settings.allow_register:
        _say(conn, "Registration is closed on this server (it runs without --allow-register)")
        return
    if len(arguments) != 1 or len(arguments[0]) < 6:
        _say(conn, "Usage: REGISTER password (at least 6 characters)")
        return
    user = conn.user
    assert user is not None
    created = await conn.realm.register(user.nick, arguments[0])
    if not created:
        _say(conn, f"{user.nick} is already registered")
        return
    _logged_in(conn, user.nick.casefold())
    _say(conn, f"{user.nick} is now registered to you, and you are identified")


async def _identify(conn: Connection, arguments: list[str]) -> None:
    from dropins.words.irc.register import check_login

    if not arguments or len(arguments) > 2:
        _say(conn, "Usage: IDENTIFY [account] password")
        return
    user = conn.user
    assert user is not None
    name = arguments[0] if len(arguments) == 2 else user.nick
    account = await check_login(conn, name, arguments[-1])
    if account is None:
        _say(conn, "Invalid password")
        return
    _logged_in(conn, account)
    _say(conn, f"You are now identified as {account}")


def _logged_in(conn: Connection, account: str) -> None:
    from dropins.words.irc import numerics as n

    user = conn.user
    assert user is not None
    conn.account = user.account = account
    conn.reply(n.RPL_LOGGEDIN, user.mask, account, f"You are now logged in as {account}")
    conn.realm.notify_account(user)
