"""DESIGN.md walkthroughs 5 and 11: an extension distribution ``jitter_plugin`` in dripline's
own layout, pip-installed into a fresh virtual environment; ``dropins dl-serve -c jitter.yaml``
serves its ``JitterEntity`` and ``dropins dl-agent`` reads, sets and commands it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from _rabbitmq import RabbitNode
from _runner_helpers import Dropins
from conftest import Venv, build_wheel, write_tree

JITTER = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "jitter_plugin"
        version = "1.2.3"

        [tool.setuptools]
        packages = ["dripline", "dripline.extensions", "dripline.extensions.jitter"]
        """,
    "dripline/__init__.py": "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n",
    "dripline/extensions/__init__.py":
        "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n",
    "dripline/extensions/jitter/__init__.py": '''
        """A key-value store whose value wobbles around what was set."""
        import random

        from dropins.dripline import KeyValueStore

        __all__ = ["JitterEntity"]
        version = "1.2.3"


        class JitterEntity(KeyValueStore):
            """A KeyValueStore with jitter."""

            def __init__(self, name, jitter=0.5, seed=1, **kwargs):
                super().__init__(name, **kwargs)
                self.jitter = jitter
                self._random = random.Random(seed)

            def read(self):
                return self.value + self._random.uniform(-self.jitter, self.jitter)

            def update_seed(self, seed):
                self._random.seed(seed)
                return {"seed": seed}
        ''',
}


@pytest.fixture(scope="module")
def jitter_venv(fresh_venv: Venv, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    result = fresh_venv.pip("install", "-q", "aio-pika>=9", "pyyaml>=6")
    assert result.returncode == 0, result.stderr
    root = tmp_path_factory.mktemp("jitter")
    wheel = build_wheel(write_tree(root / "jitter_plugin", JITTER), root / "wheels")
    fresh_venv.install(wheel)
    return fresh_venv


def test_jitter_entity_from_an_installed_extension(jitter_venv: Venv, rabbitmq: RabbitNode,
                                                   tmp_path: Path) -> None:
    listing = jitter_venv.run("dropins", "plugins", "list", "--package", "dripline.extensions")
    assert re.search(r"JitterEntity .*jitter.plugin 1\.2\.3", listing.stdout), listing.stdout
    config = tmp_path / "jitter.yaml"
    config.write_text(f"""name: jitter_service
module: Service
dripline_mesh:
  broker: 127.0.0.1
  broker_port: {rabbitmq.port}
endpoints:
  - name: wobbly
    module: JitterEntity
    initial_value: 10
    jitter: 0.5
""")

    def agent(*args: str) -> tuple[int, str, str]:
        result = jitter_venv.run("dropins", "dl-agent", "-b", f"127.0.0.1:{rabbitmq.port}", *args)
        return result.returncode, result.stdout, result.stderr

    with Dropins("dl-serve", "-c", str(config), executable=jitter_venv.bin("dropins")) as server:
        server.ready(timeout=60)
        code, out, err = agent("get", "wobbly", "--json")
        assert code == 0, err
        reply = json.loads(out)
        value = reply["payload"]["value_raw"]
        assert 9.5 <= value <= 10.5 and value != 10
        versions = reply["sender_info"]["versions"]
        jitter = [key for key in versions if key.replace("-", "_") == "jitter_plugin"]
        assert jitter and versions[jitter[0]]["version"] == "1.2.3", versions
        assert agent("set", "wobbly", "100")[0] == 0
        assert 99.5 <= json.loads(agent("get", "wobbly")[1])["value_raw"] <= 100.5
        code, out, _ = agent("cmd", "wobbly", "-s", "update_seed", "7")
        assert (code, json.loads(out)) == (0, {"seed": 7})
        first = json.loads(agent("get", "wobbly")[1])["value_raw"]
        agent("cmd", "wobbly", "-s", "update_seed", "seed=7")
        assert json.loads(agent("get", "wobbly")[1])["value_raw"] == first
        assert server.stop() == 0
