"""The admin's JSON API against a running ``dropins -c`` application of three services."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from _admin_helpers import Shop, request, running_shop
from _runner_helpers import assert_no_traceback
from conftest import get_free_port, run_dropins


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with running_shop(tmp_path_factory.mktemp("shop")) as running:
        yield running
        assert_no_traceback(running.process.stderr)


def _refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_services_lists_the_three_with_state_and_endpoints(shop: Shop) -> None:
    status, _, body = request(shop.admin, "GET", "/api/services", user="bob")
    assert status == 200
    services = {entry["name"]: entry for entry in body["services"]}
    assert list(services) == ["echo", "site", "jobs"]
    assert {entry["state"] for entry in services.values()} == {"running"}
    assert services["echo"]["kind"] == "echo"
    assert services["jobs"]["kind"] == "shopjobs:make_service"
    assert services["site"]["endpoints"] == [f"tcp:127.0.0.1:{shop.site}"]
    assert services["echo"]["worker"] == shop.process.process.pid


def test_an_operator_stops_and_starts_a_service_audited(shop: Shop) -> None:
    status, _, body = request(shop.admin, "POST", "/api/services/echo/stop")
    assert status == 200 and body["service"]["state"] == "stopped"
    assert _refuses(shop.echo)
    status, _, body = request(shop.admin, "POST", "/api/services/echo/start")
    assert status == 200 and body["service"]["state"] == "running"
    socket.create_connection(("127.0.0.1", shop.echo), timeout=5).close()
    shop.process.wait_for_line(r"admin: service 'echo' is running \(start by alice\)")
    status, _, body = request(shop.admin, "POST", "/api/services/site/restart")
    assert status == 200 and body["service"]["state"] == "running"


def test_refusals_each_with_a_json_error(shop: Shop) -> None:
    status, headers, body = request(shop.admin, "GET", "/api/services", user=None)
    assert status == 401 and "www-authenticate" not in headers and "log in" in body["error"]
    assert request(shop.admin, "GET", "/api/services", user="alice:wrong")[0] == 401
    status, _, body = request(shop.admin, "POST", "/api/services/echo/stop", user="bob")
    assert status == 403 and "viewer" in body["error"]
    assert not _refuses(shop.echo)
    status, _, body = request(shop.admin, "POST", "/api/services/nope/stop")
    assert status == 404 and body["error"] == "no service named 'nope' (services: echo, " \
                                              "site, jobs)"
    status, _, body = request(shop.admin, "POST", "/api/services/echo/explode")
    assert status == 404 and "stop, start or restart" in body["error"]
    status, _, body = request(shop.admin, "GET", "/api/logs?q=(unclosed")
    assert status == 400 and "invalid regular expression" in body["error"]
    status, _, body = request(shop.admin, "GET", "/api/logs?level=loud")
    assert status == 400 and "invalid level" in body["error"]
    status, _, body = request(shop.admin, "POST", "/api/config/check", raw=b"{not json")
    assert status == 400 and "not JSON" in body["error"]
    status, _, body = request(shop.admin, "GET", "/api/nothing")
    assert status == 404 and "error" in body


def test_session_cookie_csrf_and_logout(shop: Shop) -> None:
    status, headers, body = request(shop.admin, "POST", "/login", user=None,
                                    raw=b"user=alice&password=alice-secret",
                                    headers={"Content-Type":
                                             "application/x-www-form-urlencoded"})
    assert status == 200 and body["role"] == "operator"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    session = {"Cookie": cookie.split(";", 1)[0]}
    status, _, who = request(shop.admin, "GET", "/api/session", user=None, headers=session)
    assert status == 200 and who["user"] == "alice" and who["csrf"] == body["csrf"]
    status, _, forged = request(shop.admin, "POST", "/api/services/jobs/restart", user=None,
                                headers=session)
    assert status == 403 and "CSRF" in forged["error"]
    status, _, done = request(shop.admin, "POST", "/api/services/jobs/restart", user=None,
                              headers={**session, "X-CSRF-Token": body["csrf"]})
    assert status == 200 and done["service"]["state"] == "running"
    status, headers, _ = request(shop.admin, "POST", "/logout", user=None,
                                 headers={**session, "X-CSRF-Token": body["csrf"]})
    assert status == 200 and "Max-Age=0" in headers["set-cookie"]
    assert request(shop.admin, "GET", "/api/session", user=None, headers=session)[0] == 401


def test_logs_query_and_live_stream(shop: Shop) -> None:
    status, _, body = request(shop.admin, "GET", "/api/logs?level=info&q=^ready:")
    assert status == 200 and len(body["lines"]) == 1
    last = request(shop.admin, "GET", "/api/logs")[2]["lines"][-1]["seq"]
    connection = http.client.HTTPConnection("127.0.0.1", shop.admin, timeout=15)
    connection.request("GET", f"/api/logs/stream?since={last}&q=asked",
                       headers={"Authorization": "Basic Ym9iOmJvYi1zZWNyZXQ="})
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    request(shop.admin, "POST", "/api/services/jobs/restart")
    data = None
    while data is None:
        line = response.fp.readline()
        assert line, "the stream ended"
        if line.startswith(b"data: "):
            data = json.loads(line[6:])
    connection.close()
    assert data["message"] == "admin: alice asked to restart service 'jobs'"


def test_config_check_apply_and_rollback(shop: Shop) -> None:
    path = shop.folder / "shop.toml"
    before = path.read_text()
    status, _, body = request(shop.admin, "POST", "/api/config/apply",
                              {"set": {"services.echo.lisen": "tcp:1"}})
    assert status == 422 and "did you mean 'listen'" in body["problems"][0]
    assert str(path) in body["problems"][0]
    assert path.read_text() == before
    status, _, body = request(shop.admin, "GET", "/api/config", user="bob")
    assert status == 200 and body["text"] == before
    moved = get_free_port()
    change = {"set": {"services.echo.listen": f"tcp:{moved}:interface=127.0.0.1"}}
    status, _, body = request(shop.admin, "POST", "/api/config/check", change)
    assert status == 200 and body["ok"] and body["plan"] == "restarted echo; unchanged site, jobs"
    assert f"+listen = \"tcp:{moved}" in body["diff"]
    assert request(shop.admin, "POST", "/api/config/apply", change, user="bob")[0] == 403
    status, _, body = request(shop.admin, "POST", "/api/config/apply", change)
    assert status == 200 and body["reload_ok"]
    text = path.read_text()
    assert "# the echo service" in text and f"tcp:{moved}:" in text
    assert (shop.folder / "shop.toml.previous").read_text() == before
    socket.create_connection(("127.0.0.1", moved), timeout=5).close()
    assert _refuses(shop.echo)
    status, _, body = request(shop.admin, "POST", "/api/config/rollback")
    assert status == 200 and body["reload"] == "restarted echo; unchanged site, jobs"
    assert path.read_text() == before
    socket.create_connection(("127.0.0.1", shop.echo), timeout=5).close()
    status, _, body = request(shop.admin, "POST", "/api/config/rollback")
    assert status == 409 and "nothing to roll back" in body["error"]
    shop.process.wait_for_line(r"admin: alice rolled back the configuration")


def test_process_and_plugins(shop: Shop) -> None:
    status, _, body = request(shop.admin, "GET", "/api/process", user="bob")
    assert status == 200 and body["pid"] == shop.process.process.pid
    assert body["dropins"] and body["python"] and body["open_files"] > 0
    assert body["rss_kib"] > 0 and body["uptime"] > 0
    status, _, body = request(shop.admin, "GET", "/api/plugins", user="bob")
    assert status == 200 and "web" in {plugin["name"] for plugin in body["plugins"]}


def test_failed_logins_are_rate_limited(shop: Shop) -> None:
    statuses: list[int] = []

    def guess() -> None:
        statuses.append(request(shop.admin, "GET", "/api/process", user="carol:guess")[0])

    threads = [threading.Thread(target=guess) for _ in range(14)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(set(statuses)) == [401, 429] and statuses.count(401) == 10


@pytest.mark.parametrize(("args", "message"), [
    (["--admin", "tcp:0:interface=127.0.0.1"], "--admin tcp:0:interface=127.0.0.1 needs "
                                                "--admin-auth TYPE:ARGS"),
    (["--admin", "tcp:0", "--admin-auth", "memory:a:b"], "can be reached from other machines"),
    (["--admin", "tcp:0:interface=127.0.0.1", "--admin-auth", "memory:a:b", "--admin-role",
      "a=root"], "invalid --admin-role 'a=root'"),
    (["--admin-auth", "memory:a:b"], "--admin-auth goes with --admin ENDPOINT"),
    (["--admin", "nonsense:1", "--admin-auth", "memory:a:b"], "--admin nonsense:1:"),
    (["--admin", "tcp:0:interface=127.0.0.1", "--admin-auth", "nosuch:x"], "--admin-auth"),
])
def test_bad_admin_options_are_usage_errors(tmp_path: Path, args: list[str],
                                            message: str) -> None:
    result = run_dropins(*args, "echo", "--listen", "tcp:0:interface=127.0.0.1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert_no_traceback(result.stderr)


def test_unix_admin_lets_the_process_owner_in_without_password(tmp_path: Path) -> None:
    from _runner_helpers import Dropins

    sock_path = tmp_path / "admin.sock"
    with Dropins("--admin", f"unix:{sock_path}", "echo", "--listen",
                 "tcp:0:interface=127.0.0.1", cwd=tmp_path) as process:
        process.ready()
        client = socket.socket(socket.AF_UNIX)
        client.settimeout(10)
        client.connect(str(sock_path))
        client.sendall(b"GET /api/session HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
        client.close()
    assert answer.startswith(b"HTTP/1.1 200")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["role"] == "operator"


def test_tls_admin_on_every_interface_sets_a_secure_cookie(tmp_path: Path) -> None:
    import re
    import ssl

    from _runner_helpers import Dropins

    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    certificate.private_key_pem.write_to_path(str(key))
    certificate.cert_chain_pems[0].write_to_path(str(chain))
    client = ssl.create_default_context()
    authority.configure_trust(client)
    with Dropins("--admin", f"ssl:0:certKey={chain}:privateKey={key}", "--admin-auth",
                 "memory:alice:alice-secret", "echo", "--listen", "tcp:0:interface=127.0.0.1",
                 cwd=tmp_path) as process:
        process.ready()
        port = int(re.search(r"admin: serving on ssl:[^ ]*?:(\d+)", process.stderr)[1])
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=15, context=client)
        connection.request("POST", "/login", body=b'{"user": "alice", "password": '
                                                   b'"alice-secret"}',
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
    assert response.status == 200 and body["role"] == "viewer"
    cookie = response.getheader("Set-Cookie")
    assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_with_workers_the_supervisor_serves_the_admin(tmp_path: Path) -> None:
    with running_shop(tmp_path, "--workers", "2") as shop:
        status, _, body = request(shop.admin, "GET", "/api/services", user="bob")
        assert status == 200
        pids = {entry["worker"] for entry in body["services"]}
        assert len(pids) == 2 and shop.process.process.pid not in pids
        assert sorted(entry["name"] for entry in body["services"]) == \
            ["echo", "echo", "jobs", "jobs", "site", "site"]
        status, _, process = request(shop.admin, "GET", "/api/process")
        assert {worker["pid"] for worker in process["workers"]} == pids
        status, _, body = request(shop.admin, "POST", "/api/services/echo/stop")
        assert status == 409 and "inside workers" in body["error"]
        assert request(shop.admin, "POST", "/api/services/nope/stop")[0] == 404
        status, _, body = request(shop.admin, "GET", "/api/logs?q=worker%20ready")
        assert len(body["lines"]) == 2  # the workers' lines, relogged by the supervisor
        moved = get_free_port()
        status, _, body = request(shop.admin, "POST", "/api/config/apply", {
            "set": {"services.echo.listen": f"tcp:{moved}:interface=127.0.0.1"}})
        assert status == 200 and body["reload"] == "restarted 2 workers"
        socket.create_connection(("127.0.0.1", moved), timeout=5).close()
        status, _, body = request(shop.admin, "POST", "/api/config/rollback")
        assert status == 200 and body["reload_ok"]
        socket.create_connection(("127.0.0.1", shop.echo), timeout=5).close()
        assert_no_traceback(shop.process.stderr)


def test_another_sites_page_cannot_ride_on_basic_credentials_or_log_in(shop: Shop) -> None:
    """A browser holding Basic credentials for the admin's origin sends them with a form that
    another site posts; that request says where it comes from, and is refused."""
    evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    status, _, body = request(shop.admin, "POST", "/api/services/echo/stop", headers=evil)
    assert status == 403 and "CSRF" in body["error"]
    assert not _refuses(shop.echo)
    status, _, body = request(shop.admin, "POST", "/login", user=None, headers={
        **evil, "Content-Type": "application/x-www-form-urlencoded"},
        raw=b"user=alice&password=alice-secret")
    assert status == 403 and "another site" in body["error"]
    same = {"Origin": f"http://127.0.0.1:{shop.admin}", "Sec-Fetch-Site": "same-origin"}
    status, _, body = request(shop.admin, "POST", "/api/services/jobs/restart", headers=same)
    assert status == 200 and body["service"]["state"] == "running"


def test_the_log_view_has_the_lines_logged_before_the_admin_existed(shop: Shop) -> None:
    """The --admin-auth memory: warning is logged while the admin is being made."""
    status, _, body = request(shop.admin, "GET", "/api/logs?q=puts%20passwords")
    assert status == 200 and [line["level"] for line in body["lines"]] == ["warning"]


def test_a_viewer_sees_the_config_with_secrets_hidden(shop: Shop) -> None:
    status, _, viewer = request(shop.admin, "GET", "/api/config", user="bob")
    assert status == 200 and viewer["redacted"] is True and "[services.echo]" in viewer["text"]
    status, _, operator = request(shop.admin, "GET", "/api/config")
    assert status == 200 and "redacted" not in operator
    assert operator["text"] == (shop.folder / "shop.toml").read_text()


def test_apply_and_rollback_keep_the_files_permissions(shop: Shop) -> None:
    """A configuration kept private (it may hold secrets) stays private once rewritten."""
    path = shop.folder / "shop.toml"
    path.chmod(0o600)
    status, _, body = request(shop.admin, "POST", "/api/config/apply",
                              {"set": {"services.jobs.interval": 6}})
    assert status == 200 and body["reload_ok"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert (shop.folder / "shop.toml.previous").stat().st_mode & 0o777 == 0o600
    status, _, body = request(shop.admin, "POST", "/api/config/rollback")
    assert status == 200 and "interval = 5" in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_body_too_large_and_a_malformed_request_get_json_errors(shop: Shop) -> None:
    for head in (b"POST /api/config/check HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n"
                 b"Content-Type: application/json\r\n\r\n{",
                 b"GET /api/services HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", shop.admin), timeout=10) as client:
            client.sendall(head)
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        status_line, _, rest = answer.partition(b"\r\n")
        head_text, _, body = rest.partition(b"\r\n\r\n")
        assert status_line.split()[1] in (b"413", b"400")
        assert b"content-type: application/json" in head_text.lower()
        assert "error" in json.loads(body)


def test_a_json_login_with_a_non_string_user_is_a_usage_error(shop: Shop) -> None:
    status, _, body = request(shop.admin, "POST", "/login", {"user": None, "password": 1},
                              user=None)
    assert status == 400 and "as strings" in body["error"]
    assert "failed login for 'None'" not in shop.process.stderr


def test_a_search_that_would_take_forever_is_cut_short(shop: Shop) -> None:
    """Anyone logged in may search, and a failed login's user name is logged: with the
    stdlib's re, (a|aa)+b on sixty a's would hold the application's loop for ages."""
    request(shop.admin, "POST", "/login", {"user": "a" * 60, "password": "x"}, user=None)
    shop.process.wait_for_line(r"failed login for 'a{60}'")
    status, _, body = request(shop.admin, "GET", "/api/logs?q=(a|aa)%2Bb", user="bob")
    assert status == 400 and "simpler" in body["error"]
    assert request(shop.admin, "GET", "/api/services", user="bob")[0] == 200


def test_a_new_login_ends_the_browsers_previous_session(shop: Shop) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    login = b"user=alice&password=alice-secret"
    _, headers, _ = request(shop.admin, "POST", "/login", user=None, raw=login, headers=form)
    first = {"Cookie": headers["set-cookie"].split(";", 1)[0]}
    status, headers, _ = request(shop.admin, "POST", "/login", user=None, raw=login,
                                 headers={**form, **first})
    assert status == 200 and headers["set-cookie"].split(";", 1)[0] != first["Cookie"]
    assert request(shop.admin, "GET", "/api/session", user=None, headers=first)[0] == 401
