"""``dropins words``: a chat server (the Twisted 0.19 ``mktap words``) with an IRC gateway.

``realm`` holds users, accounts and groups (channels), persisted in SQLite; ``irc`` is the
IRC front-end; ``maker`` holds the ``dropins words`` options and service.
"""
