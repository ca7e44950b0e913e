"""``dropins -c FILE``: many services from one TOML or YAML file, end to end."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from _config_helpers import events, http_get, shop_folder, shop_toml, shop_yaml
from _runner_helpers import Dropins, assert_no_traceback, connect
from conftest import get_free_port, run_dropins, write_tree


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_file_runs_web_echo_and_factory_services(tmp_path: Path, suffix: str) -> None:
    """Every service runs in one process; paths are relative to the file's folder (the
    process runs elsewhere); services start in file order and stop in reverse."""
    shop = shop_folder(tmp_path / "shop")
    site, echo = get_free_port(), get_free_port()
    text = shop_toml(site, echo) if suffix == ".toml" else shop_yaml(site, echo)
    write_tree(shop, {f"shop{suffix}": text})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with Dropins("-c", str(shop / f"shop{suffix}"), cwd=elsewhere) as process:
        process.wait_for_line(r"ready: shop listening on ")
        assert http_get(site) == (200, b"welcome to the shop\n")
        with connect(f"tcp:127.0.0.1:{echo}") as sock:
            sock.sendall(b"ping\n")
            assert sock.recv(5) == b"ping\n"
        assert process.stop() == 0
    assert events(shop) == [["start", "first", 30], ["start", "jobs", 7],
                            ["stop", "jobs"], ["stop", "first"]]


def test_failing_start_names_the_service_and_stops_the_started(tmp_path: Path) -> None:
    shop = shop_folder(tmp_path)
    site, echo = get_free_port(), get_free_port()
    write_tree(shop, {"shop.toml": shop_toml(site, echo)})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", echo))
        taken.listen()
        result = run_dropins("-c", str(shop / "shop.toml"))
    assert result.returncode == 1, result.stderr
    assert (f"dropins: error: services.echo: cannot listen on tcp:{echo}:interface=127.0.0.1:"
            " address already in use") in result.stderr
    assert_no_traceback(result.stderr)
    assert events(shop) == []  # the binding failed before anything started


def test_set_overrides_and_environment_substitution(tmp_path: Path) -> None:
    shop = shop_folder(tmp_path)
    echo = get_free_port()
    write_tree(shop, {"app.toml": '''
        [services.echo]
        command = "echo"
        listen = "tcp:${ECHO_PORT}:interface=127.0.0.1"

        [services.jobs]
        factory = "shopjobs:make_service"
        label = "${LABEL:-cost $$5}"
        interval = 1
        '''})
    other = get_free_port()
    args = ("-c", str(shop / "app.toml"), "--set", f"services.echo.listen=tcp:{other}:"
            "interface=127.0.0.1", "--set", "services.jobs.interval=9")
    with Dropins(*args, env={"ECHO_PORT": str(echo)}) as process:
        process.wait_for_line(r"ready: ")
        with connect(f"tcp:127.0.0.1:{other}") as sock:
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
        assert process.stop() == 0
    assert events(shop)[0] == ["start", "cost $5", 9]


BAD_FILES = {
    "unknown top-level key": ("app.toml", 'servises = 1\n[services.a]\ncommand = "echo"\n',
                              "app.toml:1: servises: unknown key 'servises'"),
    "both command and factory": ("app.toml", '[services.a]\ncommand = "echo"\nfactory = "m:f"\n',
                                 "app.toml:1: services.a: has both of 'command' and 'factory'"),
    "neither command nor factory": ("app.toml", "[services.a]\nlisten = 'tcp:0'\n",
                                    "app.toml:1: services.a: has neither of 'command' and"),
    "unknown command": ("app.toml", '[services.a]\ncommand = "ecko"\n',
                        "app.toml:2: services.a.command: unknown command 'ecko' (did you mean "
                        "'echo'?)"),
    "toml syntax error": ("app.toml", '[services.a]\ncommand = "echo\n',
                          "app.toml:2: TOML syntax error: Illegal character '\\n' (column 16)"),
    "yaml anchor bomb": ("app.yaml", 'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n'
                         'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n'
                         'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n'
                         'services: {x: {command: echo, y: [*c, *c, *c, *c, *c, *c]}}\n',
                         "app.yaml:2: YAML aliases (*name) are not allowed"),
    "yaml syntax error": ("app.yaml", "services:\n  a: [\n", "app.yaml:3: YAML syntax error"),
    "bad auth type": ("app.toml", '[services.a]\ncommand = "web"\nauth = "nope:x"\n',
                      "app.toml:3: services.a.auth: unknown auth type 'nope'"),
    "bad option value": ("app.toml", '[services.a]\ncommand = "web"\nthreads = "many"\n',
                         "app.toml:3: services.a.threads: invalid positive_int value: 'many'"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    name, text, expected = BAD_FILES[case]
    (tmp_path / name).write_text(text)
    result = run_dropins("-c", name, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dropins: error: {expected}"), lines
    check = run_dropins("config", "check", name, cwd=tmp_path)
    assert check.returncode == 1 and expected in check.stderr, check.stderr
    assert_no_traceback(result.stderr, check.stderr)


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    huge = tmp_path / "app.toml"
    with huge.open("wb") as file:
        file.truncate(100 * 1024 * 1024)  # sparse: 100 MB that take no disk space
    result = run_dropins("-c", str(huge))
    assert result.returncode == 2
    assert result.stderr == f"dropins: error: {huge}: larger than 1024 KiB; an application " \
                            "file should be a few kilobytes\n"


def test_duplicate_set_and_duplicate_service_names(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text('[services.my_echo]\ncommand = "echo"\n')
    twice = run_dropins("-c", "app.toml", "--set", "services.a.command=echo",
                        "--set", "services.a.command=web", cwd=tmp_path)
    assert twice.returncode == 2
    assert twice.stderr == ("dropins: error: app.toml: services.a.command: --set gives "
                            "services.a.command twice; keep one\n")
    clash = run_dropins("-c", "app.toml", "--set", "services.my-echo.command=echo",
                        cwd=tmp_path)
    assert clash.returncode == 2
    assert clash.stderr.startswith("dropins: error: app.toml: services.my-echo: names the "
                                   "same service as services.my_echo; rename one"), clash.stderr


def test_yaml_without_the_extra_names_it(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text("services: {a: {command: echo}}\n")
    code = ("import sys; sys.modules['yaml'] = None; from dropins.runner.cli import main; "
            "sys.exit(main(['-c', 'app.yaml']))")
    import subprocess

    from conftest import clean_env

    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, env=clean_env())
    assert result.returncode == 2
    assert result.stderr == ("dropins: error: app.yaml: YAML files need the 'yaml' extra: "
                             "pip install 'dropins[yaml]'\n")


def test_config_check_lists_every_problem(tmp_path: Path) -> None:
    write_tree(tmp_path, {"shop.toml": '''
        name = "shop"
        colour = "red"

        [runner]
        log-levl = "info"

        [services.site]
        command = "web"
        paht = "public"

        [services.echo]
        command = "ecko"

        [services.chat]
        command = "echo"
        listen = "tcp:80x"

        [services.ok]
        command = "echo"
        '''})
    result = run_dropins("config", "check", "shop.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "shop.toml:2: colour: unknown key 'colour'; the keys are name, runner, services",
        "shop.toml:5: runner.log-levl: unknown runner option 'log-levl' (did you mean "
        "'log-level'?)",
        "shop.toml:9: services.site.paht: unknown option 'paht' for command 'web' (did you "
        "mean 'path'?)",
        "shop.toml:12: services.echo.command: unknown command 'ecko' (did you mean 'echo'?)",
        "shop.toml:14: services.chat: cannot make the service: EndpointError: invalid "
        "endpoint 'tcp:80x': port must be a number from 0 to 65535, got '80x'",
    ]
    fixed = "\n".join(line for line in (tmp_path / "shop.toml").read_text().splitlines()
                      if not line.startswith(("colour", "log-levl", "paht", "listen")))
    (tmp_path / "shop.toml").write_text(fixed.replace('"ecko"', '"echo"'))
    result = run_dropins("config", "check", "shop.toml", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "shop.toml: ok, 4 services\n")


def test_config_dump_prints_the_resolved_file(tmp_path: Path) -> None:
    import tomllib

    (tmp_path / "www").mkdir()
    write_tree(tmp_path, {"app.toml": '''
        [runner]
        pidfile = "run/app.pid"

        [services.site]
        command = "web"
        path = "${SITE:-public}"
        '''})
    result = run_dropins("config", "dump", "app.toml", cwd=tmp_path, env={"SITE": "www"})
    assert result.returncode == 0, result.stderr
    data = tomllib.loads(result.stdout)
    assert data["runner"]["pidfile"] == str(tmp_path / "run/app.pid")
    assert data["runner"]["log-backups"] == 5  # a default filled in
    site = data["services"]["site"]
    assert site["path"] == str(tmp_path / "www")
    assert site["listen"] == ["tcp:8080:interface=127.0.0.1"] and site["index"] == "index.html"
