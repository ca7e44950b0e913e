"""``--userdir`` and ``--personal`` end to end, as root: two real users made with useradd.

User A runs its personal server with ``dropins --uid A web --personal`` (started as root,
bound as A); user B runs a WSGI echo application with ``runuser -u B`` and lets www-data in
with ``--front-user``.  One front server runs as root, a second as www-data.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from _web_helpers import WebProcess, raw_exchange, status_of
from conftest import REPO, run_dropins

pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("useradd") is None
    or shutil.which("runuser") is None, reason="needs root, useradd and runuser")

ECHO_APP = '''
import hashlib, json, os, pwd, time

def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(6)  # longer than the www-data front's --send-timeout
    if environ["PATH_INFO"] == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (bytes([n]) * 65536 for n in range(32))  # streamed: 2 MiB, no length
    body = environ["wsgi.input"].read()
    answer = {"path": environ["PATH_INFO"], "query": environ["QUERY_STRING"],
              "method": environ["REQUEST_METHOD"], "length": len(body),
              "sha256": hashlib.sha256(body).hexdigest(),
              "user": pwd.getpwuid(os.geteuid()).pw_name,
              "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")}}
    start_response("201 Made", [("Content-Type", "application/json"),
                                ("Keep-Alive", "timeout=99"), ("X-Personal", "yes")])
    return [json.dumps(answer).encode()]
'''


class User:
    def __init__(self, name: str) -> None:
        entry = pwd.getpwnam(name)
        self.name, self.uid, self.gid, self.home = name, entry.pw_uid, entry.pw_gid, Path(
            entry.pw_dir)
        self.socket = self.home / ".dropins-web.sock"


class PersonalProcess(WebProcess):
    """A ``dropins web --personal`` process: ready once it listens on its unix socket."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        super().__init__([], env=env, cwd=cwd)
        self.args = command

    def _read_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            with self._lock:
                self.lines.append(line)
            if "ready: web listening on unix:" in line:
                self.port = -1
                self._ready.set()
        self._ready.set()


def python_for(user: User) -> tuple[str, dict[str, str]]:
    """An interpreter ``user`` can run, and the environment that finds dropins with it.

    The test session's own interpreter may live where other users cannot read (under
    /root/.pyenv, say); then the system's python of the same version is used, with this
    checkout and the session's site-packages on PYTHONPATH.
    """
    probe = subprocess.run(["runuser", "-u", user.name, "--", sys.executable, "-c", "pass"],
                           capture_output=True, timeout=30)
    if probe.returncode == 0:
        return sys.executable, {}
    system = f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"
    if not os.access(system, os.X_OK):
        pytest.skip(f"no interpreter that {user.name} may run")
    paths = [str(REPO / "src"), *(entry for entry in sys.path if entry.endswith("site-packages"))]
    return system, {"PYTHONPATH": os.pathsep.join(paths)}


@pytest.fixture(scope="module")
def users() -> Iterator[tuple[User, User]]:
    names = [f"dwx{os.getpid() % 100000}{letter}" for letter in "ab"]
    created: list[str] = []
    try:
        for name in names:
            subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True,
                           capture_output=True, timeout=30)
            created.append(name)
        a, b = User(names[0]), User(names[1])
        for user in (a, b):
            user.home.chmod(0o711)  # others may go through, not list: what public_html needs
        public = a.home / "public_html"
        (public / "sub").mkdir(parents=True)
        (public / "index.html").write_text(f"<p>public page of {a.name}</p>")
        (public / "sub" / "note.txt").write_text("a note\n")
        (public / ".secret").write_text("hidden\n")
        (public / "script.php").write_text("<?php $password = 'hunter2'; ?>")
        (public / "passwd").symlink_to("/etc/passwd")
        (a.home / "site").mkdir()
        (a.home / "site" / "file.txt").write_text(f"personal file of {a.name}\n")
        (b.home / "echo_app.py").write_text(textwrap.dedent(ECHO_APP))
        (b.home / "public_html").symlink_to("/etc")  # not B's: must not be served
        for user in (a, b):
            subprocess.run(["chown", "-R", "-h", f"{user.name}:", str(user.home)], check=True,
                           timeout=30)
        yield a, b
    finally:
        for name in created:
            subprocess.run(["userdel", "-r", name], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def personal(users: tuple[User, User]) -> Iterator[tuple[PersonalProcess, PersonalProcess]]:
    a, b = users
    python, extra_env = python_for(b)
    by_uid = PersonalProcess([sys.executable, "-m", "dropins", "--uid", a.name, "web",
                              "--personal", "--path", str(a.home / "site")])
    by_runuser = PersonalProcess(
        ["runuser", "-u", b.name, "--", python, "-m", "dropins", "web", "--personal",
         "--wsgi", "echo_app:app", "--front-user", "www-data"],
        env={**extra_env, "HOME": str(b.home)}, cwd=b.home)
    with by_uid, by_runuser:
        yield by_uid, by_runuser


@pytest.fixture(scope="module")
def front(personal: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    site = tmp_path_factory.mktemp("front")
    (site / "plain.txt").write_text("front page\n")
    with WebProcess(["--userdir", "--path", str(site)]) as process:
        yield process


def test_personal_sockets_belong_to_their_users(users: tuple[User, User],
                                                personal: object) -> None:
    for user in users:
        info = user.socket.lstat()
        assert (info.st_uid, info.st_mode & 0o777) == (user.uid, 0o600) or (
            user is users[1] and info.st_uid == user.uid and info.st_mode & 0o007 == 0)


def test_public_html(front: WebProcess, users: tuple[User, User]) -> None:
    a, b = users
    page = front.get(f"/~{a.name}/")
    assert (page.status, page.body) == (200, f"<p>public page of {a.name}</p>".encode())
    assert front.get(f"/~{a.name}").headers["location"] == f"/~{a.name}/"
    assert front.get(f"/~{a.name}/sub").headers["location"] == f"/~{a.name}/sub/"
    listing = front.get(f"/~{a.name}/sub/")
    assert f"Index of /~{a.name}/sub/".encode() in listing.body
    assert b'href="note.txt"' in listing.body
    assert front.get(f"/~{a.name}/sub/note.txt").body == b"a note\n"
    assert front.get(f"/~{a.name}/.secret").status == 404
    assert front.get(f"/~{a.name}/passwd").status == 404  # symlink out of public_html
    assert front.get(f"/~{a.name}/script.php").status == 403
    assert front.get(f"/~{a.name}/%2e%2e/{b.name}/echo_app.py").status == 400
    assert front.get(f"/~{a.name}/../{b.name}/echo_app.py").status == 400
    assert front.get(f"/~{b.name}/passwd").status == 404  # public_html -> /etc: not B's
    front.wait_for_log(rf"--userdir: {b.home}/public_html is not a folder owned by {b.name}")
    for other in ("root", "www-data", "nosuchuserhere", "%2e%2e", f"{a.name}%2Fx"):
        assert front.get(f"/~{other}/").status == 404, other
    assert front.get("/plain.txt").body == b"front page\n"  # the rest is the --path site


def test_personal_server_relay(front: WebProcess, users: tuple[User, User]) -> None:
    a, b = users
    expected = f"personal file of {a.name}\n".encode()
    for prefix in (f"/~{a.name}.dropins", f"/~{a.name}.twistd", f"/{a.name}.twistd"):
        response = front.get(prefix + "/file.txt")
        assert (response.status, response.body) == (200, expected), prefix
    assert front.get(f"/~{a.name}.dropins").headers["location"] == f"/~{a.name}.dropins/"
    assert front.get("/nosuchuserhere.twistd/").status == 404  # an ordinary missing path

    payload = os.urandom(1024 * 1024 + 7)
    response = front.request("POST", f"/~{b.name}.dropins/echo?x=1", {
        "Connection": "keep-alive, X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5",
        "X-End": "2"}, body=payload)
    assert response.status == 201
    answer = json.loads(response.body)
    assert (answer["path"], answer["query"], answer["method"]) == ("/echo", "x=1", "POST")
    assert answer["user"] == b.name
    assert (answer["length"], answer["sha256"]) == (len(payload),
                                                   hashlib.sha256(payload).hexdigest())
    headers = answer["headers"]
    assert headers["HTTP_X_END"] == "2"
    assert "HTTP_X_HOP" not in headers and "HTTP_KEEP_ALIVE" not in headers
    assert headers["HTTP_X_FORWARDED_PREFIX"] == f"/~{b.name}.dropins"
    assert headers["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
    assert response.headers["x-personal"] == "yes"
    assert "keep-alive" not in response.headers  # hop-by-hop, dropped on the way back
    assert [name.lower() for name, _ in response.header_list].count("date") == 1

    chunked = raw_exchange(front.port, f"PUT /~{b.name}.dropins/up HTTP/1.1\r\nHost: x\r\n"
                           "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                           "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".encode())
    assert status_of(chunked) == 201
    assert json.loads(chunked.partition(b"\r\n\r\n")[2])["length"] == 11

    big = front.get(f"/~{b.name}.dropins/big")
    assert big.body == b"".join(bytes([n]) * 65536 for n in range(32))


def test_tampered_socket_is_refused_with_one_warning(front: WebProcess,
                                                     users: tuple[User, User]) -> None:
    a, b = users
    url = f"/~{a.name}.dropins/file.txt"
    warning = rf"--userdir: refusing {a.socket}: "
    try:
        os.chmod(a.socket, 0o666)
        assert [front.get(url).status for _ in range(3)] == [404, 404, 404]
        front.wait_for_log(warning + "it is group- or world-writable")
        assert len([line for line in front.stderr.splitlines()
                    if "world-writable" in line]) == 1
        os.chmod(a.socket, 0o600)
        assert front.get(url).status == 200
        os.chown(a.socket, b.uid, b.gid)
        assert front.get(url).status == 404
        front.wait_for_log(warning + f"it belongs to uid {b.uid}, not to {a.name}")
    finally:
        os.chown(a.socket, a.uid, a.gid)
        os.chmod(a.socket, 0o600)
    assert front.get(url).status == 200


def test_front_server_as_www_data_with_auth(front: WebProcess,
                                            users: tuple[User, User]) -> None:
    a, b = users
    login = {"Authorization": "Basic " + base64.b64encode(b"visitor:pw").decode()}
    with WebProcess(["--userdir", "--path", str(a.home / "public_html"),
                     "--auth", "memory:visitor:pw", "--send-timeout", "2"],
                    runner_args=["--uid", "www-data"]) as unprivileged:
        # B's socket has an ACL entry for www-data (--front-user); A's is 0600: root only.
        echo = unprivileged.request("POST", f"/~{b.name}.dropins/x", login, body=b"abc")
        assert echo.status == 201, unprivileged.stderr
        answer = json.loads(echo.body)
        assert answer["length"] == 3
        assert "HTTP_AUTHORIZATION" not in answer["headers"]  # the front's visitors' password
        assert unprivileged.get(f"/~{b.name}.dropins/x").status == 401
        assert unprivileged.get(f"/~{a.name}.dropins/file.txt", login).status == 502
        unprivileged.wait_for_log(rf"{a.socket}: no personal server answers: .*ermission")
        assert unprivileged.get(f"/~{a.name}/sub/note.txt", login).body == b"a note\n"
        assert unprivileged.get(f"/~{b.name}.dropins/slow", login).status == 504
        unprivileged.wait_for_log(r"sent no answer in time")
    # Without --auth on the front, Authorization is the personal server's business.
    relayed = front.request("GET", f"/~{b.name}.dropins/x", {"Authorization": "Bearer t0k"})
    assert json.loads(relayed.body)["headers"]["HTTP_AUTHORIZATION"] == "Bearer t0k"


def test_personal_server_gone_or_impostor(front: WebProcess, users: tuple[User, User],
                                          personal: tuple[PersonalProcess, PersonalProcess]
                                          ) -> None:
    a, _ = users
    url = f"/~{a.name}.dropins/file.txt"
    assert personal[0].stop() == 0
    assert not a.socket.exists()  # removed on stop
    assert front.get(url).status == 404
    # A socket of A's that root listens on (as if swapped in after the checks): refused by
    # its peer credentials.
    impostor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        impostor.bind(str(a.socket))
        os.chown(a.socket, a.uid, a.gid)
        os.chmod(a.socket, 0o600)
        impostor.listen(8)
        accepting = threading.Thread(target=lambda: impostor.accept()[0].close(), daemon=True)
        accepting.start()
        assert front.get(url).status == 404
        front.wait_for_log(rf"{a.socket}: refused: the server on it runs as uid 0")
    finally:
        impostor.close()  # the file stays: a stale socket nobody listens on
    assert front.get(url).status == 502
    front.wait_for_log(rf"{a.socket}: no personal server answers")


def test_usage_errors() -> None:
    for args, message in [
        (["--personal", "--listen", "tcp:0"], "--personal listens on ~/.dropins-web.sock"),
        (["--personal", "--front-user", "nosuchuserhere"], "--front-user 'nosuchuserhere' is "
                                                            "not a user"),
        (["--front-user", "www-data"], "--front-user goes with --personal"),
        (["--personal", "--userdir"], "give one of them"),
    ]:
        result = run_dropins("web", *args)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
