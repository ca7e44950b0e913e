"""dripline's own layout: an extension package made a namespace package the old way
(``__path__ = __import__('pkgutil').extend_path(__path__, __name__)``), with extensions shipped
by separate distributions, installed normally and in editable mode; each extension is listed
with the distribution that provides it and that distribution's version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _plugin_helpers import build_editable_wheel, src_layout_project
from conftest import build_wheel, write_tree

EXTEND = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"


CORE = src_layout_project("pkgutilapp-core", "2.0", {
    "pkgutilapp/__init__.py": EXTEND,
    "pkgutilapp/extensions/__init__.py": EXTEND,
    "pkgutilapp/core.py": '''
        class Entity:
            def __init__(self, name):
                self.name = name
        ''',
})

WOBBLE = '''
    """Wobble: an entity that wobbles."""
    from pkgutilapp.core import Entity

    __all__ = ["WobbleEntity"]
    version = "0.0.1"

    class WobbleEntity(Entity):
        """An entity that wobbles."""
    '''


@pytest.mark.timeout(300)
def test_pkgutil_style_extension_package_installed_and_editable(fresh_venv,
                                                                tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    wheels = tmp_path / "wheels"
    fresh_venv.install(build_wheel(write_tree(tmp_path / "core", CORE), wheels))
    # Installed: the extension's folder lands in the core's pkgutilapp/extensions.  Editable,
    # dripline style: the checkout has its own pkgutil __init__.py files, found by extend_path.
    installed = write_tree(tmp_path / "wobble", src_layout_project(
        "pkgutilapp-wobble", "1.4", {"pkgutilapp/extensions/wobble/__init__.py": WOBBLE}))
    checkout = write_tree(tmp_path / "wobble-dev", src_layout_project(
        "pkgutilapp-wobble", "1.5.dev0", {"pkgutilapp/__init__.py": EXTEND,
                                          "pkgutilapp/extensions/__init__.py": EXTEND,
                                          "pkgutilapp/extensions/wobble/__init__.py": WOBBLE}))
    try:
        for editable, version in ((False, "1.4"), (True, "1.5.dev0")):
            if editable:
                fresh_venv.install(build_editable_wheel(checkout, tmp_path / "editable"))
            else:
                fresh_venv.install(build_wheel(installed, wheels))
            try:
                for _ in range(2):  # freshly scanned, then from the cache
                    listing = fresh_venv.run("dropins", "plugins", "list", "--package",
                                             "pkgutilapp.extensions", "--json", env=env)
                    assert listing.returncode == 0, listing.stderr
                    (record,) = json.loads(listing.stdout)
                    assert (record["name"], record["source"], record["state"]) == (
                        "WobbleEntity", "namespace", "ok")
                    assert record["module"] == "pkgutilapp.extensions.wobble"
                    assert (record["distribution"], record["version"]) == (
                        "pkgutilapp-wobble", version)
                    if editable:
                        assert record["path"] == str(
                            checkout / "src/pkgutilapp/extensions/wobble/__init__.py")
                table = fresh_venv.run("dropins", "plugins", "list", "-p",
                                       "pkgutilapp.extensions", env=env)
                assert f"pkgutilapp-wobble {version}" in table.stdout, table.stdout
                loaded = fresh_venv.run("python", "-c", (
                    "from dropins import iter_plugin_info\n"
                    "(info,) = iter_plugin_info(package='pkgutilapp.extensions')\n"
                    "print(info.load()('w').name)"), env=env)
                assert loaded.stdout.strip() == "w", loaded.stderr
            finally:
                fresh_venv.uninstall("pkgutilapp-wobble")
            gone = fresh_venv.run("dropins", "plugins", "list", "-p", "pkgutilapp.extensions",
                                  "--json", env=env)
            assert gone.returncode == 0 and json.loads(gone.stdout) == [], gone.stderr
    finally:
        fresh_venv.uninstall("pkgutilapp-core")
