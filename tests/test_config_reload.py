"""Live reload of an application file: SIGHUP and ``dropins reload --pidfile``, end to end."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from _config_helpers import events, http_get, shop_folder
from _runner_helpers import Dropins, assert_no_traceback, connect
from conftest import get_free_port, run_dropins, write_tree


def _shop(site: int, echo: int, extra: str = "") -> str:
    return f'''
        name = "shop"

        [runner]
        pidfile = "shop.pid"
        shutdown-timeout = 3

        [services.echo]
        command = "echo"
        listen = "tcp:{echo}:interface=127.0.0.1"

        [services.site]
        command = "web"
        path = "public"
        listen = "tcp:{site}:interface=127.0.0.1"
        {extra}'''


def _echoes(sock: object, data: bytes) -> bool:
    sock.sendall(data)  # type: ignore[attr-defined]
    received = b""
    while len(received) < len(data):
        chunk = sock.recv(len(data) - len(received))  # type: ignore[attr-defined]
        if not chunk:
            return False
        received += chunk
    return received == data


def test_reload_restarts_the_changed_service_and_keeps_the_others(tmp_path: Path) -> None:
    shop = shop_folder(tmp_path)
    echo, site, moved = get_free_port(), get_free_port(), get_free_port()
    write_tree(shop, {"shop.toml": _shop(site, echo)})
    with Dropins("-c", "shop.toml", cwd=shop) as process:
        process.wait_for_line("ready: shop listening on ")
        with connect(f"tcp:127.0.0.1:{echo}") as sock:
            assert _echoes(sock, b"before\n")
            jobs = ('\n[services.jobs]\nfactory = "shopjobs:make_service"\n'
                    'label = "jobs"\ninterval = 2\n')
            write_tree(shop, {"shop.toml": _shop(moved, echo, jobs)})
            result = run_dropins("reload", "--pidfile", "shop.pid", cwd=shop)
            assert (result.returncode, result.stdout) == (
                0, "restarted site; started jobs; unchanged echo\n"), result.stderr
            assert _echoes(sock, b"after\n")  # the same connection, still served
        assert http_get(moved) == (200, b"welcome to the shop\n")
        try:
            http_get(site, timeout=2)
            raise AssertionError(f"the old site still answers on port {site}")
        except OSError:
            pass
        assert events(shop) == [["start", "jobs", 2]]
        assert process.stop() == 0
    assert events(shop)[-1] == ["stop", "jobs"]  # a service started by a reload is stopped


def test_a_broken_reload_changes_nothing(tmp_path: Path) -> None:
    shop = shop_folder(tmp_path)
    echo, site = get_free_port(), get_free_port()
    write_tree(shop, {"shop.toml": _shop(site, echo)})
    with Dropins("-c", "shop.toml", cwd=shop) as process:
        process.wait_for_line("ready: shop listening on ")
        with connect(f"tcp:127.0.0.1:{echo}") as sock:
            assert _echoes(sock, b"before\n")
            broken = _shop(get_free_port(), get_free_port()).replace('path = "public"',
                                                                      'paht = "public"')
            write_tree(shop, {"shop.toml": broken})
            result = run_dropins("reload", "--pidfile", "shop.pid", cwd=shop)
            assert result.returncode == 1
            assert result.stderr == (
                "dropins reload: error: refused, nothing changed: shop.toml:13: "
                "services.site.paht: unknown option 'paht' for command 'web' (did you mean "
                "'path'?)\n".replace("shop.toml", str(shop / "shop.toml")))
            assert _echoes(sock, b"after\n")
        assert http_get(site) == (200, b"welcome to the shop\n")
        errors = [line for line in process.stderr.splitlines() if "ERROR" in line]
        assert len(errors) == 1 and "reload refused, nothing changed" in errors[0], errors
        process.signal(signal.SIGHUP)  # a plain SIGHUP is refused the same way
        process.wait_for_line(r"ERROR .*reload refused.*\n?.*", timeout=10)
        assert http_get(site) == (200, b"welcome to the shop\n")
        assert process.stop() == 0
    assert_no_traceback(process.stderr)


def test_sigusr1_reopens_logs_only(tmp_path: Path) -> None:
    shop = shop_folder(tmp_path)
    echo, site = get_free_port(), get_free_port()
    write_tree(shop, {"shop.toml": _shop(site, echo)})
    log, rotated = shop / "shop.log", shop / "shop.log.1"
    with Dropins("--logfile", str(log), "-c", "shop.toml", cwd=shop) as process:
        deadline = time.monotonic() + 20
        while "ready: shop" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline and process.process.poll() is None
            time.sleep(0.05)
        write_tree(shop, {"shop.toml": _shop(get_free_port(), echo)})  # not to be read
        log.rename(rotated)
        process.signal(signal.SIGUSR1)
        while not log.exists():
            assert time.monotonic() < deadline and process.process.poll() is None
            time.sleep(0.05)
        assert http_get(site) == (200, b"welcome to the shop\n")
        assert process.stop() == 0
    assert "reload" not in log.read_text() + rotated.read_text()
    assert "stopped" in log.read_text()


def test_reload_where_nothing_runs_is_exit_2(tmp_path: Path) -> None:
    result = run_dropins("reload", "--pidfile", "none.pid", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"dropins reload: error: nothing runs there: no live instance "
                             f"holds {tmp_path / 'none.pid'}\n")


def test_reload_of_an_instance_without_a_file_is_refused(tmp_path: Path) -> None:
    port = get_free_port()
    with Dropins("--pidfile", "echo.pid", "echo", "--listen",
                 f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path) as process:
        process.ready()
        result = run_dropins("reload", "--pidfile", "echo.pid", cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr == ("dropins reload: error: not started with -c FILE; SIGHUP "
                                 "reopened the log files only\n")
        assert process.stop() == 0


def test_a_service_that_fails_to_restart_is_reported_and_retried(tmp_path: Path) -> None:
    import socket

    shop = shop_folder(tmp_path)
    echo, site, taken_port = get_free_port(), get_free_port(), get_free_port()
    write_tree(shop, {"shop.toml": _shop(site, echo)})
    with Dropins("-c", "shop.toml", cwd=shop) as process:
        process.wait_for_line("ready: shop listening on ")
        write_tree(shop, {"shop.toml": _shop(taken_port, echo)})
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", taken_port))
            taken.listen()
            result = run_dropins("reload", "--pidfile", "shop.pid", cwd=shop)
        assert result.returncode == 1
        assert result.stderr == (
            f"dropins reload: error: unchanged echo; kept the old site: new one failed: "
            f"services.site: cannot listen on tcp:{taken_port}:interface=127.0.0.1: address "
            "already in use\n")
        assert http_get(site) == (200, b"welcome to the shop\n")  # the old one still serves
        retried = run_dropins("reload", "--pidfile", "shop.pid", cwd=shop)
        assert (retried.returncode, retried.stdout) == (0, "restarted site; unchanged echo\n")
        assert http_get(taken_port) == (200, b"welcome to the shop\n")
        assert process.stop() == 0


FRAGILE_MODULE = '''
import os

from dropins.service import Service


class Fragile(Service):
    """Fails to start while a file named "broken" is beside this module."""

    async def start(self):
        if os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), "broken")):
            raise RuntimeError("broken is there")
        await super().start()


def make_service(version=1):
    return Fragile("fragile")
'''


def test_a_changed_service_whose_old_version_cannot_start_again_is_reported(
        tmp_path: Path) -> None:
    shop = shop_folder(tmp_path)
    echo, site = get_free_port(), get_free_port()

    def fragile(version: int) -> str:
        return f'\n[services.jobs]\nfactory = "fragile:make_service"\nversion = {version}\n'

    write_tree(shop, {"fragile.py": FRAGILE_MODULE, "shop.toml": _shop(site, echo, fragile(1))})
    with Dropins("-c", "shop.toml", cwd=shop) as process:
        process.wait_for_line("ready: shop listening on ")
        (shop / "broken").write_text("")
        write_tree(shop, {"shop.toml": _shop(site, echo, fragile(2))})
        result = run_dropins("reload", "--pidfile", "shop.pid", cwd=shop)
        assert result.returncode == 1
        failure = "services.jobs: service 'fragile' failed to start: broken is there"
        assert result.stderr == (f"dropins reload: error: unchanged echo, site; {failure}; "
                                 f"the old jobs could not start again either: {failure}\n")
        (shop / "broken").unlink()
        retried = run_dropins("reload", "--pidfile", "shop.pid", cwd=shop)
        assert (retried.returncode, retried.stdout) == (0, "started jobs; unchanged echo, "
                                                           "site\n"), retried.stderr
        assert process.stop() == 0
        assert_no_traceback(result.stderr, retried.stderr)
