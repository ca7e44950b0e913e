"""CGI scripts (RFC 3875): ``--cgi`` runs files ending in ``.cgi`` below the served folder.

Why each choice:

* The script runs as an asyncio subprocess, so a slow script holds no thread and never blocks
  the loop; its stdout is streamed to the client at the client's pace, and its stderr goes
  to the ``dropins.web.cgi`` logger line by line.
* The request body is read first (bounded by ``--max-body-size``, spooled to disk above
  1 MiB) and then written to stdin: RFC 3875 wants a ``CONTENT_LENGTH``, which a chunked
  upload does not tell until it is over.
* The environment is built from nothing but ``PATH``: the server's own environment may hold
  secrets.  Request headers become ``HTTP_*`` variables except ``Proxy`` (httpoxy: a
  ``Proxy:`` header would become ``HTTP_PROXY``, which HTTP libraries in the script would
  use as their proxy), ``Authorization`` (the password stays with the server; the user is
  ``REMOTE_USER``) and names other than letters, digits and ``-`` (``X_Forwarded_For`` and
  ``X-Forwarded-For`` would otherwise collide, letting a client overwrite a header a proxy set).
* The script's header block must be well formed (``Name: value`` lines, a valid ``Status``,
  a blank line within 64 KiB); anything else is 502, since no response can be made of it.
* A ``Location`` that is a local path, without ``Status``, is a local redirect: the server
  answers the request as if it had been a GET of that path (RFC 3875 6.2.2).
* ``--cgi-timeout`` bounds the whole run: a script past it is killed with its process group
  (504 if it had not answered yet, else the connection is aborted); so is a script whose
  client left, at once, since nobody will read what it computes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
from typing import IO, TYPE_CHECKING, Any

from dropins.web.exchange import ClientDisconnected, Exchange
from dropins.web.httputil import is_header_name
from dropins.web.paths import BadPath, PathNotFound, decode_segments, resolve_request_path

if TYPE_CHECKING:
    from dropins.web.static import StaticSite

__all__ = ["SCRIPT_SUFFIXES", "CgiSite", "is_script"]

logger = logging.getLogger("dropins.web.cgi")

#: file names that are programs, never sent as their source (403 unless --cgi runs them)
SCRIPT_SUFFIXES = (".cgi", ".php", ".rpy")
_CGI_SUFFIX = ".cgi"
_MAX_HEAD = 64 * 1024
_BLOCK = 64 * 1024
_MAX_LOCAL_REDIRECTS = 5
_DROPPED_OUTPUT = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"trailer",
                             b"upgrade", b"te", b"proxy-connection"})
_NOT_PASSED = frozenset({b"proxy", b"authorization", b"content-type", b"content-length",
                         b"connection", b"proxy-authorization"})


def is_script(file_path: str) -> bool:
    """Whether a file is a program by its name (``.cgi``, ``.php``, ``.rpy``, any case), or
    a precompressed copy of one (``.php.gz``, ``.cgi.br``), which is the same source."""
    name = file_path.lower()
    return name.removesuffix(".gz").removesuffix(".br").endswith(SCRIPT_SUFFIXES)


class BadScriptOutput(ValueError):
    """The script's header block cannot be turned into a response: 502."""


class CgiSite:
    """A handler: ``.cgi`` files below ``site.root`` are run; anything else goes to ``site``."""

    def __init__(self, site: StaticSite, timeout: float) -> None:
        self.site = site
        self.timeout = timeout

    def __call__(self, exchange: Exchange) -> object:
        try:
            segments = decode_segments(exchange.path)
        except BadPath:
            return self.site(exchange)  # answers the 400 itself
        return self._dispatch(exchange, segments, 0)

    def _dispatch(self, exchange: Exchange, segments: list[str], redirects: int) -> object:
        """Run the first ``.cgi`` segment of the path (the rest is PATH_INFO), else serve."""
        for index, segment in enumerate(segments):
            if segment.lower().endswith(_CGI_SUFFIX):
                return self._run(exchange, segments[:index + 1], segments[index + 1:],
                                 redirects)
        return self.site(exchange)

    def _run(self, exchange: Exchange, script: list[str], extra: list[str],
             redirects: int) -> object:
        site = self.site
        script_url = "/" + "/".join(script)
        try:
            script_path, info = resolve_request_path(
                site.root, os.fsencode(script_url), follow_symlinks=site.follow_symlinks,
                dotfiles=site.dotfiles)
        except (PathNotFound, OSError, ValueError):
            exchange.respond_error(404)
            return None
        if stat.S_ISDIR(info.st_mode):
            return site(exchange)
        if not stat.S_ISREG(info.st_mode):
            exchange.respond_error(404)
            return None
        if not os.access(script_path, os.X_OK):
            logger.warning("%s: not executable (chmod +x it to run it as a CGI script)",
                           script_path)
            exchange.respond_error(403, "Script is not executable")
            return None
        path_info = "/" + "/".join(extra) if extra else ""
        if exchange.path.endswith(b"/") and extra:
            path_info += "/"
        environ = self.environ(exchange, script_path, script_url, path_info)
        return self._answer(exchange, script_path, environ, redirects)

    def environ(self, exchange: Exchange, script_path: str, script_url: str,
                path_info: str) -> dict[str, str]:
        """The RFC 3875 meta-variables for a request (strings; bytes kept as latin-1)."""
        connection = exchange.connection
        transport = connection.transport
        local = transport.get_extra_info("sockname") if transport is not None else None
        host = (exchange.header(b"host") or b"").decode("latin-1")
        port = str(local[1]) if isinstance(local, tuple) and len(local) >= 2 else "0"
        server_name = host.rsplit(":", 1)[0] if host and not host.endswith("]") else host
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_SOFTWARE": "dropins",
            "SERVER_PROTOCOL": f"HTTP/{exchange.version}",
            "SERVER_NAME": server_name or (local[0] if isinstance(local, tuple) else "localhost"),
            "SERVER_PORT": port,
            "REQUEST_METHOD": exchange.method.decode("latin-1"),
            "REQUEST_URI": exchange.target.decode("latin-1"),
            "SCRIPT_NAME": script_url,
            "SCRIPT_FILENAME": script_path,
            "DOCUMENT_ROOT": self.site.root,
            "PATH_INFO": path_info,
            "QUERY_STRING": exchange.query.decode("latin-1"),
            "REMOTE_ADDR": connection.client[0],
            "REMOTE_HOST": connection.client[0],
            "REMOTE_PORT": str(connection.client[1]),
        }
        if path_info:
            env["PATH_TRANSLATED"] = os.path.join(self.site.root, path_info.lstrip("/"))
        if exchange.user is not None:
            env["AUTH_TYPE"] = "Basic"
            env["REMOTE_USER"] = exchange.user
        content_type = exchange.header(b"content-type")
        if content_type is not None:
            env["CONTENT_TYPE"] = content_type.decode("latin-1")
        for name, value in exchange.headers:
            if name in _NOT_PASSED or not all(c == 45 or 48 <= c <= 57 or 97 <= c <= 122
                                              for c in name):
                continue
            key = "HTTP_" + name.decode("ascii").upper().replace("-", "_")
            text = value.decode("latin-1")
            env[key] = env[key] + ", " + text if key in env else text
        return env

    async def _answer(self, exchange: Exchange, script_path: str, environ: dict[str, str],
                      redirects: int) -> None:
        from dropins.web.spool import spool_body

        body, size = await spool_body(exchange.body)
        with body:
            if size or exchange.body is not None:
                environ["CONTENT_LENGTH"] = str(size)
            try:
                process = await asyncio.create_subprocess_exec(
                    script_path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE, env=environ,
                    cwd=os.path.dirname(script_path), start_new_session=True)
            except OSError as error:
                logger.error("%s: cannot run it: %s", script_path, error.strerror or error)
                exchange.respond_error(502, "CGI script could not be run")
                return
            run = _ScriptRun(process, script_path, body)
            try:
                location = await self._within_bounds(exchange, run)
            finally:
                await run.close(kill=not exchange.finished or exchange.connection.client_left)
        if location is not None:
            await self._redirect_locally(exchange, location, redirects)

    async def _within_bounds(self, exchange: Exchange, run: _ScriptRun) -> bytes | None:
        """``run.respond()``, cut short by --cgi-timeout or by the client leaving."""
        responding = asyncio.ensure_future(run.respond(exchange))
        left = exchange.connection.left_future()
        waited: set[asyncio.Future[Any]] = {responding, left}
        done, _ = await asyncio.wait(waited, timeout=self.timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if responding in done:
            return responding.result()
        responding.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await responding
        if left in done:
            logger.debug("%s: the client left; script stopped", run.name)
        else:
            logger.warning("%s: killed after --cgi-timeout (%.3g s)", run.name, self.timeout)
        if exchange.head_sent or left in done:
            if not exchange.finished:
                exchange.abort()
        elif not exchange.finished:
            exchange.respond_error(504, "CGI script timed out")
        return None

    async def _redirect_locally(self, exchange: Exchange, location: bytes,
                                redirects: int) -> None:
        if redirects >= _MAX_LOCAL_REDIRECTS:
            logger.error("more than %d local redirects from CGI scripts, last to %s",
                         _MAX_LOCAL_REDIRECTS, location.decode("latin-1"))
            exchange.respond_error(502, "Too many local redirects")
            return
        path, _, query = location.partition(b"?")
        exchange.path, exchange.query = path, query
        if exchange.method != b"HEAD":
            exchange.method = b"GET"
        exchange.body = None
        try:
            segments = decode_segments(path)
        except BadPath:
            exchange.respond_error(502, "Bad local redirect")
            return
        pending: Any = self._dispatch(exchange, segments, redirects + 1)
        if pending is not None:
            await pending


class _ScriptRun:
    """One running script: feeds its stdin, logs its stderr, turns its stdout into a response."""

    def __init__(self, process: asyncio.subprocess.Process, script_path: str,
                 body: IO[bytes]) -> None:
        self.process = process
        self.name = script_path
        self.tasks = [asyncio.ensure_future(self._feed(body)),
                      asyncio.ensure_future(self._log_stderr())]

    async def respond(self, exchange: Exchange) -> bytes | None:
        """Send the script's response; return a local redirect's target instead, if any."""
        stdout = self.process.stdout
        assert stdout is not None
        try:
            status, reason, headers, location = await self._read_head(stdout)
        except BadScriptOutput as error:
            logger.error("%s: bad CGI response: %s", self.name, error)
            exchange.respond_error(502, "Bad CGI response")
            return None
        if location is not None:
            return location
        # The head waits for the first body bytes (or the end): until then a script that
        # times out can still be answered 504.
        chunk = await stdout.read(_BLOCK)
        exchange.send_head(status, headers, reason=reason)
        try:
            while chunk:
                exchange.write(chunk)
                await exchange.drain()
                chunk = await stdout.read(_BLOCK)
        except ClientDisconnected:
            exchange.abort()
            return None
        exchange.end()
        return None

    async def _read_head(self, stdout: asyncio.StreamReader
                         ) -> tuple[int, bytes | None, list[tuple[bytes, bytes]], bytes | None]:
        headers: list[tuple[bytes, bytes]] = []
        status: int | None = None
        reason: bytes | None = None
        location: bytes | None = None
        seen = 0
        while True:
            try:
                line = await stdout.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                raise BadScriptOutput("output ended before the blank line after the headers")
            except asyncio.LimitOverrunError:
                raise BadScriptOutput("a header line is too long")
            seen += len(line)
            if seen > _MAX_HEAD:
                raise BadScriptOutput("headers larger than 64 KiB")
            line = line.rstrip(b"\r\n")
            if not line:
                break
            name, colon, value = line.partition(b":")
            value = value.strip()
            if not colon or not is_header_name(name) or any(c < 32 and c != 9 for c in value):
                raise BadScriptOutput(f"not a header line: {line[:80]!r}")
            lower = name.lower()
            if lower == b"status":
                code, _, phrase = value.partition(b" ")
                if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 599:
                    raise BadScriptOutput(f"bad Status: {value[:80]!r}")
                status, reason = int(code), phrase.strip() or None
                continue
            if lower == b"location":
                location = value
            if lower not in _DROPPED_OUTPUT:
                headers.append((name, value))
        if status is None and location is not None and location.startswith(b"/") and (
                not location.startswith(b"//")):
            return 200, None, headers, location
        if status is None and location is not None:
            status = 302
        if not headers and status is None:
            raise BadScriptOutput("no Content-Type, Location or Status header")
        return status or 200, reason, headers, None

    async def _feed(self, body: IO[bytes]) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            while block := body.read(_BLOCK):
                stdin.write(block)
                await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the script did not read its whole input: allowed
        finally:
            stdin.close()

    async def _log_stderr(self) -> None:
        stderr = self.process.stderr
        assert stderr is not None
        while True:
            try:
                line = await stderr.readline()
            except (ValueError, asyncio.LimitOverrunError):
                line = await stderr.read(_BLOCK)
            if not line:
                return
            logger.warning("%s: %s", self.name,
                           line.rstrip(b"\r\n").decode("utf-8", "replace")[:1000])

    async def close(self, kill: bool) -> None:
        """Reap the script; with ``kill`` (or if it outlives its output by a second), kill its
        whole process group first, so that no child it started lives on."""
        process = self.process
        if not kill and process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 1.0)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        self.tasks[0].cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 5)
            await asyncio.wait_for(process.wait(), 5)
