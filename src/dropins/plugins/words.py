"""``dropins words`` (implemented in ``dropins.words.maker``, imported only when used)."""

from dropins.service.maker import ServiceMaker

words = ServiceMaker("words", "dropins.words.maker:words",
                     "A chat server with an IRC gateway, accounts and channels in SQLite")
