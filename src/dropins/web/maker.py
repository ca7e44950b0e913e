"""``dropins web``: its options and the service tree it runs.

The tree is a MultiService holding, in start order:

1. for ``--wsgi``, a service owning the worker threads (stopped last, after the servers);
2. for ``--asgi``, the lifespan service (startup before any request, shutdown after the last);
3. one StreamServerService per ``--listen``, all sharing one ``WebServer`` (the protocol
   factory), whose connections finish their response and close when the servers stop.
"""

from __future__ import annotations

import os
import re
from typing import Any

from dropins.cred.auth_options import AuthOptions
from dropins.cred.interfaces import IAnonymous, IUsernamePassword
from dropins.options import Flag, Parameter, UsageError, path
from dropins.service.base import MultiService, Service, root_setting

__all__ = ["Options", "make_service"]

DEFAULT_LISTEN = "tcp:8080:interface=127.0.0.1"
_MISSING_EXTRA = "dropins web needs the 'web' extra: pip install 'dropins[web]'"


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise UsageError(f"expected a number of seconds above 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise UsageError(f"expected a whole number of at least 1, got {text!r}")
    return value


def seconds_or_zero(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise UsageError(f"expected a number of seconds, 0 or more, got {text!r}")
    return value


def byte_size(text: str) -> int:
    """``1048576``, ``512K``, ``10M`` or ``1G`` (powers of 1024)."""
    units = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    factor = units.get(cleaned[-1:], 1)
    number = cleaned[:-1] if cleaned[-1:] in units else cleaned
    if not number.isdigit():
        raise UsageError(f"expected a size such as 1048576, 512K or 10M, got {text!r}")
    return int(number) * factor


class Options(AuthOptions):
    """The options of ``dropins web`` (with ``--auth`` from AuthOptions)."""

    description = ("Serve a folder (the current one by default), a WSGI application or an "
                   "ASGI application over HTTP/1.1.")
    epilog = ("examples:\n"
              "  dropins web                          serve this folder on 127.0.0.1:8080\n"
              "  dropins web --path site --listen tcp:8000:interface=0.0.0.0\n"
              "  dropins web --wsgi myapp:app         a WSGI application from myapp.py\n"
              "  dropins web --asgi myapp:app         an ASGI 3 application (with lifespan)\n"
              "  dropins web --path site --cgi        run site's *.cgi files as CGI scripts\n"
              "  dropins web --userdir                /~USER/ from ~USER/public_html\n"
              "  dropins web --path site --proxy /api=http://127.0.0.1:8000\n"
              "                                       files, and /api/ from a backend\n"
              "  dropins web --wsgi myapp:app --static /assets=site/assets\n"
              "                                       the application, and files under /assets\n"
              "  dropins web --auth file:users.txt    ask for a user name and password\n"
              "                                       (make the file with 'dropins passwd')")
    supported_credential_interfaces = (IUsernamePassword, IAnonymous)

    path = Parameter(metavar="DIR", type=path, help="folder to serve (default: the current folder)")
    listen = Parameter(multiple=True, metavar="ENDPOINT", default=[DEFAULT_LISTEN],
                       help=f"where to listen, repeatable (default: {DEFAULT_LISTEN}); "
                            "e.g. tcp:8000, tcp6:8000:interface=\\:\\:1, unix:/run/web.sock")
    wsgi = Parameter(metavar="MODULE:APP", help="serve this WSGI application instead of files")
    asgi = Parameter(metavar="MODULE:APP", help="serve this ASGI 3 application instead of files")
    index = Parameter(default="index.html", metavar="NAME",
                      help="file served for a folder's URL ('' for none)")
    no_listing = Flag(help="answer 403 for folders without an index instead of listing them")
    follow_symlinks = Flag(help="serve symlinks that point outside the folder")
    dotfiles = Parameter(default="deny", choices=("allow", "deny"), metavar="allow|deny",
                         help="allow: serve and list names starting with '.' (.git, .env, "
                              ".htpasswd); deny: answer 404 for them and leave them out of "
                              "listings, except /.well-known/")
    threads = Parameter(default=10, type=positive_int, metavar="N",
                        help="worker threads for the WSGI application")
    max_body_size = Parameter(default="10M", type=byte_size, metavar="SIZE",
                              help="largest request body accepted (413 above)")
    header_timeout = Parameter(default=10.0, type=positive_float, metavar="SECONDS",
                               help="time a client has to send a request's headers, and each "
                                    "part of its body (408 after)")
    keepalive_timeout = Parameter(default=15.0, type=positive_float, metavar="SECONDS",
                                  help="idle time after which a keep-alive connection closes")
    send_timeout = Parameter(default=60.0, type=positive_float, metavar="SECONDS",
                             help="time a client may take to accept more of a response "
                                  "before it is disconnected")
    max_connections = Parameter(type=positive_int, metavar="N",
                                help="most connections open at once, over all --listen; more "
                                     "wait in the listen backlog until one closes (default: "
                                     "(ulimit -n - 32) / 2, keeping 32 descriptors for "
                                     "files and logs)")
    cgi = Flag(help="run files ending in .cgi below --path as CGI scripts (RFC 3875); "
                    "without it .cgi, .php and .rpy files are 403")
    cgi_timeout = Parameter(default=60.0, type=positive_float, metavar="SECONDS",
                            help="time a CGI script may run before it is killed (504)")
    userdir = Flag(help="serve ~USER/public_html at /~USER/ and relay /~USER.dropins/ to the "
                        "user's personal server on ~USER/.dropins-web.sock")
    userdir_min_uid = Parameter(default=1000, type=int, metavar="UID",
                                help="lowest uid whose home --userdir serves")
    personal = Flag(help="serve on ~/.dropins-web.sock (mode 0600) for a --userdir front server, "
                         "instead of --listen")
    front_user = Parameter(metavar="USER",
                           help="with --personal: let this user (the front server's, e.g. "
                                "www-data) connect, by an ACL entry on the socket")
    no_access_log = Flag(help="do not log each request (logger dropins.web.access)")
    ws_max_size = Parameter(default="1M", type=byte_size, metavar="SIZE",
                            help="largest WebSocket message accepted (--asgi; the WebSocket "
                                 "is closed with 1009 above)")
    ws_ping_interval = Parameter(default=20.0, type=seconds_or_zero, metavar="SECONDS",
                                 help="time between keep-alive pings on a WebSocket (0: none)")
    ws_ping_timeout = Parameter(default=20.0, type=positive_float, metavar="SECONDS",
                                help="time a WebSocket client has to answer a ping, or a close, "
                                     "before it is disconnected")
    no_ws_deflate = Flag(help="do not compress WebSocket messages (permessage-deflate)")
    proxy_headers = Flag(help="take the client's address, scheme and host from the proxy "
                              "headers of trusted proxies (see --forwarded-allow-ips)")
    proxy_headers_kind = Parameter(default="x-forwarded", choices=("x-forwarded", "forwarded"),
                                   metavar="x-forwarded|forwarded",
                                   help="which proxy headers to read: X-Forwarded-For/-Proto/"
                                        "-Host, or RFC 7239 Forwarded (only the kind your proxy "
                                        "sets: it passes the other on from clients)")
    forwarded_allow_ips = Parameter(metavar="LIST",
                                    help="proxies trusted with --proxy-headers: addresses, "
                                         "networks (10.0.0.0/8), 'unix' for unix sockets, or "
                                         "'*', comma-separated (default: 127.0.0.1)")
    root_path = Parameter(default="", metavar="PATH",
                          help="the path a proxy serves the application under, which it takes "
                               "off before passing requests on (WSGI SCRIPT_NAME, ASGI "
                               "root_path); e.g. /api")
    proxy = Parameter(multiple=True, metavar="PREFIX=URL",
                      help="forward requests under PREFIX to a backend, repeatable; URL is "
                           "http://HOST:PORT/PATH or unix:/PATH.sock (longest prefix wins; "
                           "the rest is served as without it); e.g. /api=http://127.0.0.1:8000")
    static = Parameter(multiple=True, metavar="PREFIX=DIR",
                       help="serve a folder under PREFIX, repeatable, beside --path, an "
                            "application or --proxy (longest prefix wins); e.g. "
                            "/assets=site/assets with --wsgi")
    proxy_timeout = Parameter(default=60.0, type=positive_float, metavar="SECONDS",
                              help="time a --proxy backend has to accept a connection, take "
                                   "the request, and send each part of its answer (504 after)")
    insecure_auth = Flag(help="allow --auth on plain TCP reachable from other machines, where "
                              "passwords cross the network in clear text")

    def validate(self) -> None:
        super().validate()
        for key in ("max_body_size", "ws_max_size"):
            if isinstance(self[key], str):
                self[key] = byte_size(self[key])
        if self["wsgi"] and self["asgi"]:
            raise UsageError("give either --wsgi or --asgi, not both")
        if self["path"] is not None and (self["wsgi"] or self["asgi"]):
            raise UsageError("--path serves files at /, where --wsgi or --asgi serves the "
                             "application; mount folders beside it with --static PREFIX=DIR")
        self._check_personal()
        if self["cgi"] and (self["wsgi"] or self["asgi"]):
            raise UsageError("--cgi runs scripts among files; it cannot be combined with "
                             "--wsgi or --asgi")
        path = self["path"] if self["path"] is not None else os.curdir
        if not os.path.isdir(path):
            what = "is not a folder" if os.path.exists(path) else "does not exist"
            raise UsageError(f"--path {path!r} {what}")
        self["path"] = path
        _check_proxy_options(self)
        if "/" in self["index"] or "\\" in self["index"] or self["index"] in (".", ".."):
            raise UsageError(f"--index {self['index']!r} must be a file name, not a path")
        from dropins.service.endpoints import parse_endpoint

        for endpoint in self["listen"]:
            try:
                parse_endpoint(endpoint)
            except ValueError as error:
                raise UsageError(str(error)) from None
        if self["auth"] and not self["insecure_auth"]:
            from dropins.web.auth import insecure_listeners

            unsafe = insecure_listeners(self["listen"])
            if unsafe:
                raise UsageError(
                    f"--auth over plain HTTP on {unsafe[0]} would send passwords in clear text "
                    "to the network; listen on 127.0.0.1, use an ssl: endpoint, or add "
                    "--insecure-auth")

    def _check_personal(self) -> None:
        """--personal, --userdir and --front-user: which go together, and a real user."""
        if self["personal"] and self["userdir"]:
            raise UsageError("--personal serves one user's site to a --userdir front server; "
                             "give one of them")
        if self["personal"] and list(self["listen"]) != [DEFAULT_LISTEN]:
            raise UsageError("--personal listens on ~/.dropins-web.sock; leave out --listen")
        if self["front_user"] is not None:
            if not self["personal"]:
                raise UsageError("--front-user goes with --personal")
            import pwd

            try:
                pwd.getpwnam(str(self["front_user"]))
            except KeyError:
                raise UsageError(f"--front-user {self['front_user']!r} is not a user on this "
                                 "machine") from None


_ROOT_PATH = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+")


def _check_proxy_options(options: Options) -> None:
    if options["forwarded_allow_ips"] is not None:
        if not options["proxy_headers"]:
            raise UsageError("--forwarded-allow-ips needs --proxy-headers")
        from dropins.web.forwarded import TrustedProxies

        try:
            TrustedProxies(options["forwarded_allow_ips"])
        except ValueError as error:
            raise UsageError(f"--forwarded-allow-ips: {error}") from None
    if options["proxy"] or options["static"]:
        from dropins.web.proxy import parse_mount, parse_proxy

        prefixes: set[bytes] = set()
        for option, parse in (("--proxy", parse_proxy), ("--static", parse_mount)):
            for text in options[option[2:]]:
                try:
                    prefix, target = parse(text)
                except ValueError as error:
                    raise UsageError(f"{option} {error}") from None
                if prefix in prefixes:
                    raise UsageError(f"{option} {text!r}: the prefix {prefix.decode()} is "
                                     "given twice; give each prefix one backend or folder")
                prefixes.add(prefix)
                if isinstance(target, str) and not os.path.isdir(target):  # a --static DIR
                    what = "is not a folder" if os.path.exists(target) else "does not exist"
                    raise UsageError(f"--static {text!r}: {target!r} {what}")
    root = options["root_path"].rstrip("/")
    if root and not (options["wsgi"] or options["asgi"]):
        raise UsageError("--root-path is for --wsgi and --asgi applications")
    if root and not _ROOT_PATH.fullmatch(root):
        raise UsageError(f"--root-path {options['root_path']!r} must be a path such as /api "
                         "(starting with '/', no spaces, '%', '?' or '#')")
    options["root_path"] = root


class _PrivilegeDropPreparation(Service):
    """Reads what serving files needs while the process still has the privileges to read it.

    The MIME table is normally read at the first file served, to keep start-up fast; but once
    ``--uid``/``--gid`` has dropped privileges, the new user may be unable to read the
    interpreter's ``mimetypes`` module or the system's ``mime.types``, and every file would fail.
    So when the tree will drop privileges, the table is loaded in ``privileged_start``.
    """

    def __init__(self) -> None:
        super().__init__("web-preload")

    def privileged_start(self) -> None:
        super().privileged_start()
        if root_setting(self, "uid") is not None or root_setting(self, "gid") is not None:
            from dropins.web.static import content_type

            content_type("preload.html")


class _ThreadPoolService(Service):
    """Owns the WSGI worker threads: releases them when the tree stops."""

    def __init__(self, pool: Any) -> None:
        super().__init__("wsgi-threads")
        self.pool = pool

    async def stop(self) -> None:
        await super().stop()
        self.pool.shutdown()


class _ProxyPoolService(Service):
    """Closes the --proxy backends' idle connections when the tree stops."""

    def __init__(self, proxy: Any) -> None:
        super().__init__("web-proxy")
        self.proxy = proxy

    async def stop(self) -> None:
        await super().stop()
        self.proxy.close()


def _static_mounts(options: Any) -> list[tuple[bytes, Any]]:
    """The ``--static`` folders as (prefix, site), served like ``--path``'s folder."""
    from dropins.web.proxy import parse_mount
    from dropins.web.static import StaticSite

    mounts = []
    for text in options["static"]:
        prefix, folder = parse_mount(text)
        mounts.append((prefix, StaticSite(folder, index=options["index"],
                                          listing=not options["no_listing"],
                                          follow_symlinks=options["follow_symlinks"],
                                          dotfiles=options["dotfiles"] == "allow",
                                          url_prefix=prefix)))
    return mounts


def make_service(options: Any) -> MultiService:
    """Build the service tree for parsed ``options`` (see the module docstring)."""
    try:
        import httptools  # noqa: F401 - only to check the extra is installed
    except ImportError:
        raise SystemExit(_MISSING_EXTRA) from None
    from dropins.service.accepting import ConnectionGate
    from dropins.service.stream import StreamServerService
    from dropins.web.server import Limits, WebServer

    root = MultiService("web")
    handler: Any
    if options["wsgi"]:
        from dropins.web.loading import load_application
        from dropins.web.threads import DaemonThreadPool
        from dropins.web.wsgi import WsgiHandler

        app = load_application(options["wsgi"], "--wsgi")
        pool = DaemonThreadPool(options["threads"])
        root.add_service(_ThreadPoolService(pool))
        handler = WsgiHandler(app, pool, options["wsgi"], root_path=options["root_path"])
    elif options["asgi"]:
        from dropins.web.asgi import AsgiHandler
        from dropins.web.lifespan import AsgiLifespan
        from dropins.web.loading import load_application
        from dropins.web.wsconnection import WebSocketSettings

        app = load_application(options["asgi"], "--asgi")
        state: dict[str, Any] = {}
        root.add_service(AsgiLifespan(app, options["asgi"], state))
        websocket = WebSocketSettings(max_size=options["ws_max_size"],
                                      ping_interval=options["ws_ping_interval"],
                                      ping_timeout=options["ws_ping_timeout"],
                                      deflate=not options["no_ws_deflate"])
        handler = AsgiHandler(app, options["asgi"], state, root_path=options["root_path"],
                              websocket=websocket)
    else:
        from dropins.web.static import StaticSite

        handler = StaticSite(options["path"], index=options["index"],
                             listing=not options["no_listing"],
                             follow_symlinks=options["follow_symlinks"],
                             dotfiles=options["dotfiles"] == "allow")
        if options["cgi"]:
            from dropins.web.cgi import CgiSite

            handler = CgiSite(handler, options["cgi_timeout"])
    if not (options["wsgi"] or options["asgi"]) or options["static"]:
        root.add_service(_PrivilegeDropPreparation())
    if options["userdir"]:
        from dropins.web.userdir import UserDirectories

        handler = UserDirectories(handler, min_uid=options["userdir_min_uid"],
                                  index=options["index"], listing=not options["no_listing"],
                                  dotfiles=options["dotfiles"] == "allow",
                                  relay_timeout=options["send_timeout"],
                                  keep_credentials=not options["auth"])
    if options["proxy"] or options["static"]:
        from dropins.web.proxy import ReverseProxy

        handler = ReverseProxy(handler, list(options["proxy"]), options["proxy_timeout"],
                               keep_credentials=not options["auth"],
                               mounts=_static_mounts(options))
        if options["proxy"]:
            root.add_service(_ProxyPoolService(handler))
    if options["auth"]:
        from dropins.web.auth import BasicAuth

        handler = BasicAuth(handler, options.make_portal())
    if options["proxy_headers"]:
        from dropins.web.forwarded import ProxyHeaders, TrustedProxies

        trusted = TrustedProxies(options["forwarded_allow_ips"] or "127.0.0.1")
        handler = ProxyHeaders(handler, trusted, options["proxy_headers_kind"])
    limits = Limits(max_body_size=options["max_body_size"],
                    header_timeout=options["header_timeout"],
                    keepalive_timeout=options["keepalive_timeout"],
                    send_timeout=options["send_timeout"])
    server = WebServer(handler, limits, access_log=not options["no_access_log"])
    from dropins.service.endpoints import parse_endpoint

    gate = ConnectionGate(options["max_connections"])
    if options["personal"]:
        from dropins.web.personal import PersonalEndpoint, PersonalServer

        front_uid = None
        if options["front_user"] is not None:
            import pwd

            front_uid = pwd.getpwnam(str(options["front_user"])).pw_uid
        root.add_service(PersonalServer(PersonalEndpoint(front_uid), server, gate=gate))
        return root
    for text in options["listen"]:
        endpoint = parse_endpoint(text)
        if getattr(endpoint, "ssl_context", None) is not None:
            # The TLS handshake comes before the request head: bound it the same way.
            endpoint.ssl_handshake_timeout = limits.header_timeout
        root.add_service(StreamServerService(endpoint, server, gate=gate))
    return root
