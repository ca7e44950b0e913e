"""``--userdir``: the spreadable web of Twisted 0.19's ``mktap web --user``.

* ``/~USER/...`` serves ``~USER/public_html`` as static files;
* ``/~USER.dropins/...`` (also ``/~USER.twistd/`` and Twisted's own ``/USER.twistd/``) is
  relayed to the user's personal server (``dropins web --personal``) on the unix socket
  ``~USER/.dropins-web.sock``;
* anything else goes to the site the command serves otherwise.

Why each guard (the front server often runs as root or www-data, and users are not trusted):

* only accounts with a uid of at least ``min_uid`` (1000, where Debian starts ordinary
  users) count, so ``/~root/`` and ``/~www-data/`` are 404 like unknown names;
* ``public_html`` must belong to the user, and the files below it are served with the rules
  of ``--path`` (no ``..``, no dotfiles, no symlink leaving the folder, scripts 403): a user
  can publish only what they own, not ``/etc`` through a symlink;
* the socket must be a socket owned by the user that nobody else can write to (mode bits and
  ACL, see ``socketaccess``), else 404 with one warning (repeated only when the problem
  changes); after connecting, the server on it must run as that user (``relay``);
* CGI scripts in ``public_html`` are never run: they would run as the front server's user.
"""

from __future__ import annotations

import logging
import os
import stat
from typing import TYPE_CHECKING, Any

from dropins.web.exchange import Exchange
from dropins.web.paths import percent_decode

if TYPE_CHECKING:
    from dropins.web.static import StaticSite

__all__ = ["SOCKET_NAME", "UserDirectories"]

logger = logging.getLogger("dropins.web")

#: the personal server's socket, in the user's home
SOCKET_NAME = ".dropins-web.sock"
PUBLIC_FOLDER = "public_html"
_PERSONAL_SUFFIXES = (".dropins", ".twistd")
_MAX_SITES = 256


class UserDirectories:
    """A handler: per-user sites under ``/~USER/``, the rest to ``fallback``."""

    def __init__(self, fallback: Any, *, min_uid: int = 1000, index: str = "index.html",
                 listing: bool = True, dotfiles: bool = False, relay_timeout: float = 60.0,
                 keep_credentials: bool = False) -> None:
        self.fallback = fallback
        self.allow = getattr(fallback, "allow", None)
        self.min_uid = min_uid
        self.site_options: dict[str, Any] = {"index": index, "listing": listing,
                                             "dotfiles": dotfiles}
        self.relay_timeout = relay_timeout
        # With the front server's --auth, Authorization carries its visitors' passwords:
        # a user's personal server must not collect them.
        self._not_relayed = frozenset() if keep_credentials else frozenset({b"authorization"})
        self._sites: dict[tuple[str, str], StaticSite] = {}
        self._warned: dict[str, str] = {}
        # Imported now, while the server is built: once --uid has dropped privileges, the
        # interpreter's own modules (h11 needs dataclasses) may no longer be readable.
        import pwd  # noqa: F401

        import h11  # noqa: F401

        import dropins.web.relay
        import dropins.web.socketaccess  # noqa: F401

    def __call__(self, exchange: Exchange) -> object:
        path = exchange.path
        end = path.find(b"/", 1)
        first, rest = (path[1:], b"") if end < 0 else (path[1:end], path[end:])
        name = os.fsdecode(percent_decode(first))
        personal = name.endswith(_PERSONAL_SUFFIXES)
        if name.startswith("~"):
            name = name[1:]
        elif not name.endswith(".twistd"):
            return self.fallback(exchange)
        if personal:
            name = name.rpartition(".")[0]
        user = self._user(name)
        if user is None:
            if not first.startswith(b"~"):
                return self.fallback(exchange)  # "/x.twistd/" of no user: an ordinary path
            exchange.respond_error(404)
            return None
        if not rest:
            location = b"/" + first + b"/" + (b"?" + exchange.query if exchange.query else b"")
            exchange.respond(301, [(b"Location", location),
                                   (b"Content-Type", b"text/plain; charset=utf-8")],
                             b"Moved to " + location + b"\n")
            return None
        prefix = b"/" + first
        if personal:
            return self._personal(exchange, user, rest, prefix)
        return self._public(exchange, user, rest, prefix)

    def _user(self, name: str) -> Any:
        import pwd

        if not name or "/" in name or "\0" in name:
            return None
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            return None
        return user if user.pw_uid >= self.min_uid else None

    def _warn_once(self, path: str, problem: str) -> None:
        """Warn about ``path`` once per problem, not once per request."""
        if self._warned.get(path) != problem:
            self._warned[path] = problem
            logger.warning("--userdir: %s", problem)

    def _public(self, exchange: Exchange, user: Any, rest: bytes, prefix: bytes) -> object:
        folder = os.path.join(user.pw_dir, PUBLIC_FOLDER)
        try:
            info = os.stat(folder)
        except OSError:
            exchange.respond_error(404)
            return None
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != user.pw_uid:
            self._warn_once(folder, f"{folder} is not a folder owned by {user.pw_name}: "
                                          "not served")
            exchange.respond_error(404)
            return None
        site = self._sites.get((user.pw_name, folder))
        if site is None:
            from dropins.web.static import StaticSite

            if len(self._sites) >= _MAX_SITES:
                self._sites.clear()
            site = self._sites[(user.pw_name, folder)] = StaticSite(
                folder, url_prefix=prefix, **self.site_options)
        exchange.path = rest
        return site(exchange)

    def _personal(self, exchange: Exchange, user: Any, rest: bytes, prefix: bytes) -> object:
        from dropins.web.socketaccess import unexpected_writers

        socket_path = os.path.join(user.pw_dir, SOCKET_NAME)
        try:
            info = os.lstat(socket_path)
        except OSError:
            exchange.respond_error(404)  # no personal server: not worth a warning
            return None
        problem = None
        if not stat.S_ISSOCK(info.st_mode):
            problem = "it is not a socket"
        elif info.st_uid != user.pw_uid:
            problem = f"it belongs to uid {info.st_uid}, not to {user.pw_name}"
        else:
            problem = unexpected_writers(socket_path, info.st_mode)
        if problem is not None:
            self._warn_once(socket_path, f"refusing {socket_path}: {problem}")
            exchange.respond_error(404)
            return None
        self._warned.pop(socket_path, None)
        from dropins.web.relay import relay_to_unix_socket

        target = rest + (b"?" + exchange.query if exchange.query else b"")
        return relay_to_unix_socket(exchange, socket_path, target, prefix, user.pw_uid,
                                    self.relay_timeout, self._not_relayed)
