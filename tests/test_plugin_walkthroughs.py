"""The Materials and Extensions walkthroughs of DESIGN.md, end to end.

Materials: the twisted.plugin tutorial, plus a third material shipped as a wheel with an entry
point, pip-installed into a real virtual environment, found with no other step, then uninstalled
and gone.  Extensions: the dripline tutorial's discovery part, with an extension distribution
installed normally and in editable mode, listed with its version, and built from a config file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _plugin_helpers import build_editable_wheel, make_matsim, src_layout_project
from conftest import build_wheel, run_dropins, write_tree

DISPLAY = "from matsim.display import display_all_known_materials; display_all_known_materials()"

COPPER_PROJECT = {
    "pyproject.toml": '''
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "matsim-copper"
        version = "4.5.6"

        [project.entry-points."matsim.plugins"]
        copper = "matsim_copper"

        [tool.setuptools]
        py-modules = ["matsim_copper"]
        ''',
    "matsim_copper.py": '''
        """Copper for matsim, shipped as its own distribution."""
        from zope.interface import implementer
        from dropins import IPlugin
        from matsim import IMaterial

        @implementer(IPlugin, IMaterial)
        class Copper:
            name = "copper_plate"
            description = "Copper plate"
            dielectric_constant = 3.3
            def yield_stress(self, temperature):
                return 7.0e10

        copper_plate = Copper()
        ''',
}


@pytest.mark.timeout(300)
def test_materials_walkthrough_with_an_installed_wheel(fresh_venv, tmp_path: Path) -> None:
    app, dev = make_matsim(tmp_path)
    env = {"PYTHONPATH": f"{app}:{dev}", "XDG_CACHE_HOME": str(tmp_path / "xdg")}

    def display() -> list[str]:
        result = fresh_venv.run("python", "-c", DISPLAY, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        return result.stdout.splitlines()

    assert display() == ["steel_plate 206842719000.0 2.7", "brass_plate 103421359000.0 1.4"]
    wheel = build_wheel(write_tree(tmp_path / "copper", COPPER_PROJECT), tmp_path / "wheels")
    fresh_venv.install(wheel)
    try:
        assert display()[2:] == ["copper_plate 70000000000.0 3.3"]
        listing = fresh_venv.run("dropins", "plugins", "list", "--package", "matsim.plugins",
                                 "--json", env=env)
        assert listing.returncode == 0, listing.stderr
        copper = json.loads(listing.stdout)[2]
        assert (copper["name"], copper["source"]) == ("copper_plate", "entry-point")
        assert (copper["distribution"], copper["version"]) == ("matsim-copper", "4.5.6")
    finally:
        fresh_venv.uninstall("matsim-copper")
    assert display() == ["steel_plate 206842719000.0 2.7", "brass_plate 103421359000.0 1.4"]
    check = fresh_venv.run("dropins", "plugins", "check", "--package", "matsim.plugins", env=env)
    assert check.returncode == 0, check.stdout + check.stderr


KVAPP_CORE = src_layout_project("kvapp-core", "1.0", {
    "kvapp/core/__init__.py": '''
        """The application: key-value stores, and building them from a config file."""
        import json

        from dropins import iter_plugin_info

        class KeyValueStore:
            def __init__(self, name, value=0):
                self.name, self.value = name, value

            def get(self):
                return self.value

        def build_from_config(path):
            """Build every entity a JSON config names, from the kvapp.extensions classes."""
            classes = {info.name: info for info in iter_plugin_info(package="kvapp.extensions")}
            built = []
            for spec in json.load(open(path)):
                spec = dict(spec)
                info = classes[spec.pop("class")]
                built.append(info.load()(**spec))
            return built
        ''',
})

JITTER = src_layout_project("kvapp-jitter", "0.3.0", {
    "kvapp/extensions/jitter/__init__.py": '''
        """Jitter: a key-value store whose value wobbles."""
        from kvapp.core import KeyValueStore

        __all__ = ["JitterEntity"]
        version = "0.3.0"

        class JitterEntity(KeyValueStore):
            """A store that adds jitter to its value."""

            def __init__(self, name, value=0, jitter=0.5):
                super().__init__(name, value)
                self.jitter = jitter

            def get(self):
                return self.value + self.jitter
        ''',
})

BUILD = ("from kvapp.core import build_from_config; import sys\n"
         "for entity in build_from_config(sys.argv[1]):\n"
         "    print(type(entity).__name__, entity.name, entity.get())")


@pytest.mark.timeout(300)
def test_extensions_walkthrough_installed_and_editable(fresh_venv, tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    wheels = tmp_path / "wheels"
    core = build_wheel(write_tree(tmp_path / "core", KVAPP_CORE), wheels)
    jitter_dir = write_tree(tmp_path / "jitter", JITTER)
    config = tmp_path / "config.json"
    config.write_text(json.dumps([{"class": "JitterEntity", "name": "wobbly", "value": 2,
                                   "jitter": 0.25}]))
    fresh_venv.install(core)
    try:
        for editable in (False, True):
            if editable:
                fresh_venv.install(build_editable_wheel(jitter_dir, tmp_path / "editable"))
            else:
                fresh_venv.install(build_wheel(jitter_dir, wheels))
            try:
                listing = fresh_venv.run("dropins", "plugins", "list", "--package",
                                         "kvapp.extensions", "--json", env=env)
                assert listing.returncode == 0, listing.stderr
                (record,) = json.loads(listing.stdout)
                assert record["name"] == "JitterEntity"
                assert record["source"] == "namespace"
                assert record["version"] == "0.3.0"
                assert record["distribution"] == "kvapp-jitter"
                assert record["module"] == "kvapp.extensions.jitter"
                assert record["description"] == "A store that adds jitter to its value."
                if editable:
                    assert record["path"] == str(jitter_dir / "src/kvapp/extensions/jitter"
                                                 / "__init__.py")
                table = fresh_venv.run("dropins", "plugins", "list", "-p", "kvapp.extensions",
                                       env=env)
                assert "JitterEntity" in table.stdout and "kvapp-jitter 0.3.0" in table.stdout
                built = fresh_venv.run("python", "-c", BUILD, str(config), env=env)
                assert built.returncode == 0, built.stderr
                assert built.stdout.splitlines() == ["JitterEntity wobbly 2.25"]
            finally:
                fresh_venv.uninstall("kvapp-jitter")
            gone = fresh_venv.run("dropins", "plugins", "list", "-p", "kvapp.extensions",
                                  "--json", env=env)
            assert gone.returncode == 0 and json.loads(gone.stdout) == [], gone.stderr
    finally:
        fresh_venv.uninstall("kvapp-core")


def test_materials_walkthrough_from_a_checkout(tmp_path: Path) -> None:
    """The tutorial without installing anything: the dev folder on PYTHONPATH is enough."""
    app, dev = make_matsim(tmp_path)
    result = run_dropins("plugins", "list", "--package", "matsim.plugins",
                         "--interface", "matsim.IMaterial",
                         env={"PYTHONPATH": f"{app}:{dev}",
                              "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "INTERFACES", "SOURCE", "DISTRIBUTION", "STATE",
                                "DESCRIPTION"]
    assert lines[1].split() == ["steel_plate", "IMaterial", "directory", "-", "ok", "Steel",
                                "plate"]
    assert lines[2].split() == ["brass_plate", "IMaterial", "directory", "-", "ok", "Brass",
                                "plate"]
