"""The dl-* commands end to end: YAML errors, dl-agent's exit codes and --json, dl-mon's lines,
a service name taken twice, /readyz with the broker link, and a [services.X] table."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from _rabbitmq import RabbitNode
from _runner_helpers import Dropins
from conftest import get_free_port, run_dropins, write_tree

pytest.importorskip("aio_pika")


def twin_extension(root: Path, package: str) -> Path:
    return write_tree(root, {
        "dripline/extensions/__init__.py":
            "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n",
        f"dripline/extensions/{package}/__init__.py": """
            from dropins.dripline import KeyValueStore
            __all__ = ["Twin"]
            version = "1.0"
            class Twin(KeyValueStore):
                pass
            """})


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_unknown_key_names_the_endpoint_and_the_key(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "s.yaml", "name: s\nendpoints:\n  - name: peaches\n"
                        "    module: KeyValueStore\n    initial_valu: 1\n")
    result = run_dropins("dl-serve", "-c", str(config))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().endswith("endpoint 'peaches': unknown key 'initial_valu' for "
                                          "KeyValueStore (did you mean 'initial_value'?)")
    assert "Traceback" not in result.stderr


def test_unknown_module_lists_close_matches(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "s.yaml", "name: s\nendpoints:\n  - name: peaches\n"
                        "    module: KeyValueStor\n")
    result = run_dropins("dl-serve", "-c", str(config))
    assert result.returncode == 2
    assert "unknown class 'KeyValueStor'; did you mean 'KeyValueStore'" in result.stderr


def test_a_name_exported_by_two_extensions_is_an_error(tmp_path: Path) -> None:
    first = twin_extension(tmp_path / "a", "alpha")
    second = twin_extension(tmp_path / "b", "beta")
    config = write_yaml(tmp_path / "s.yaml", "name: s\nendpoints:\n  - name: t\n"
                        "    module: Twin\n")
    result = run_dropins("dl-serve", "-c", str(config),
                         env={"PYTHONPATH": f"{first}:{second}"})
    assert result.returncode == 2, result.stderr
    assert ("'Twin' is exported by several extensions (dripline.extensions.alpha, "
            "dripline.extensions.beta)") in result.stderr


@pytest.mark.parametrize(("text", "message"), [
    ("name: [unclosed\n", "not valid YAML"),
    ("- just a list\n", "must be a mapping"),
    ("name: a.b\n", "'name' must be the service's name"),
    ("name: s\ndripline_mesh:\n  brokr: x\n", "unknown setting 'brokr' (did you mean 'broker'?)"),
    ("name: s\nendpoints:\n  - module: KeyValueStore\n", "needs a 'name'"),
])
def test_bad_yaml_is_one_line_exit_2(tmp_path: Path, text: str, message: str) -> None:
    config = write_yaml(tmp_path / "s.yaml", text)
    result = run_dropins("dl-serve", "-c", str(config))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_runtime_config_is_accepted_with_a_warning(rabbitmq: RabbitNode, tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "old.yaml", f"""runtime-config:
  name: oldstyle
dripline_mesh: {{broker: 127.0.0.1, broker_port: {rabbitmq.port}}}
endpoints: [{{name: oldkey, module: KeyValueStore, initial_value: 3}}]
""")
    with Dropins("dl-serve", "-c", str(config)) as server:
        server.ready(timeout=60)
        assert "'runtime-config:' is deprecated" in server.stderr
        assert agent(rabbitmq, "get", "oldkey").stdout.strip() == '{"value_raw": 3}'
        server.stop()


def agent(node: RabbitNode, *args: str) -> subprocess.CompletedProcess[str]:
    return run_dropins("dl-agent", "-b", f"127.0.0.1:{node.port}", *args, timeout=60)


@pytest.fixture(scope="module")
def served(rabbitmq: RabbitNode, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Dropins, Path, int]]:
    config = write_yaml(tmp_path_factory.mktemp("cli") / "cli.yaml", f"""name: cli
dripline_mesh: {{broker: 127.0.0.1, broker_port: {rabbitmq.port}}}
endpoints:
  - name: peaches
    module: KeyValueStore
    initial_value: 0.75
    calibration: "{{}}*2"
""")
    health = get_free_port()
    with Dropins("--health", f"tcp:{health}:interface=127.0.0.1", "dl-serve", "-c",
                 str(config)) as server:
        server.ready(timeout=60)
        yield server, config, health
        server.stop()


def test_agent_get_set_and_exit_codes(served: tuple[Dropins, Path, int],
                                      rabbitmq: RabbitNode) -> None:
    result = agent(rabbitmq, "get", "peaches")
    assert (result.returncode, result.stdout) == (0, '{"value_raw": 0.75, "value_cal": 1.5}\n')
    assert agent(rabbitmq, "set", "peaches", "2").returncode == 0
    result = agent(rabbitmq, "get", "peaches", "--json")
    reply = json.loads(result.stdout)
    assert reply["return_code"] == 0 and reply["payload"] == {"value_raw": 2, "value_cal": 4}
    assert reply["sender_info"]["service_name"] == "cli"
    result = agent(rabbitmq, "get", "peaches", "-s", "nothing")
    assert result.returncode == 1 and result.stderr.startswith("310: ")
    result = agent(rabbitmq, "get", "nobody_home", "-t", "5")
    assert result.returncode == 1 and result.stderr.startswith("102: ")
    result = run_dropins("dl-agent", "-b", f"127.0.0.1:{get_free_port()}", "get", "x")
    assert result.returncode == 1 and "cannot reach the broker" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_dropins("dl-agent", "frob", "x")
    assert result.returncode == 2
    agent(rabbitmq, "set", "peaches", "0.75")


def test_a_service_named_twice_is_refused(served: tuple[Dropins, Path, int]) -> None:
    _, config, _ = served
    result = run_dropins("dl-serve", "-c", str(config), timeout=90)
    assert result.returncode == 1
    assert "service name 'cli' is already in use on the broker" in result.stderr
    assert "Traceback" not in result.stderr


def test_readyz_reports_the_broker_link(served: tuple[Dropins, Path, int]) -> None:
    _, _, health = served
    with urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz", timeout=20) as response:
        assert response.status == 200


def test_dl_mon_prints_one_line_per_message(served: tuple[Dropins, Path, int],
                                            rabbitmq: RabbitNode) -> None:
    with Dropins("dl-mon", "-b", f"127.0.0.1:{rabbitmq.port}", "-r", "peaches.#",
                 "-a", "heartbeat.#") as monitor:
        monitor.ready(timeout=60)
        agent(rabbitmq, "get", "peaches", "-s", "value")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
                " request peaches get specifier='value' " in line
                for line in monitor._stdout_chunks):
            time.sleep(0.2)
        monitor.stop()
    lines = monitor.stdout.splitlines()
    assert any(re.fullmatch(r"\S+ requests request peaches get specifier='value' \{\}", line)
               for line in lines), lines


def test_the_service_as_a_config_table(rabbitmq: RabbitNode, tmp_path: Path) -> None:
    app = tmp_path / "lab.toml"
    app.write_text(f"""[services.lab]
factory = "dropins.dripline:service_from_table"
name = "lab"
dripline_mesh = {{broker = "127.0.0.1", broker_port = {rabbitmq.port}}}
endpoints = [{{name = "plums", module = "KeyValueStore", initial_value = 7}}]
""")
    with Dropins("-c", str(app)) as server:
        server.ready(timeout=60)
        assert agent(rabbitmq, "get", "plums").stdout == '{"value_raw": 7}\n'
        assert server.stop() == 0


def test_help_is_fast_and_lists_the_commands() -> None:
    result = subprocess.run([sys.executable, "-m", "dropins", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert "dl-serve" in result.stdout and "dl-agent" in result.stdout
