"""The cache and the Python environment around it: a broken module is retried once a missing
dependency may have been installed, and no cache file is left in site-packages by uninstalling.

Each test runs real child processes (``python -m dropins``, or a venv's interpreter), with a
user cache directory private to the test.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from _plugin_helpers import list_records, make_matsim, run_python
from conftest import build_wheel, run_dropins, write_tree

GET_PLUGINS = """
from dropins import get_plugins
from matsim import IMaterial
print(sorted(material.name for material in get_plugins(IMaterial, "matsim.plugins")))
"""


def _metals_needing_fancydep(marker: Path) -> str:
    """The tutorial's metals module, made to need a dependency that is not installed yet; it
    appends a line to ``marker`` each time it is imported."""
    return f'''
        with open({str(marker)!r}, "a") as _marker:
            _marker.write("imported\\n")
        import fancydep
        from zope.interface import implementer
        from dropins import IPlugin
        from matsim import IMaterial

        @implementer(IPlugin, IMaterial)
        class Material:
            dielectric_constant = fancydep.CONSTANT
            def __init__(self, name):
                self.name = name
            def yield_stress(self, temperature):
                return 1.0

        steel_plate = Material("steel_plate")
        brass_plate = Material("brass_plate")
        '''


@pytest.mark.parametrize("where", ["existing PYTHONPATH folder", "new sys.path entry"])
def test_broken_module_recovers_when_its_dependency_appears(tmp_path: Path, where: str) -> None:
    marker = tmp_path / "imports.log"
    app, dev = make_matsim(tmp_path, {
        "matsim/plugins/metals.py": _metals_needing_fancydep(marker)})
    deps = tmp_path / "deps"
    deps.mkdir()
    work = tmp_path / "work"  # the child's cwd, which is on its sys.path too
    work.mkdir()
    path = [app, dev, deps]
    env = {"PYTHONPATH": ":".join(map(str, path)), "XDG_CACHE_HOME": str(tmp_path / "xdg")}

    def listing() -> tuple[dict[str, str], str]:
        result = run_dropins("plugins", "list", "-p", "matsim.plugins", "--json", env=env,
                             cwd=work)
        assert result.returncode == 0, result.stderr
        return {r["name"]: r["state"] for r in json.loads(result.stdout)}, result.stderr

    states, stderr = listing()
    assert states == {"metals": "broken"}
    assert "No module named 'fancydep'" in stderr and stderr.count("\n") == 1
    # Nothing changed: the broken entry is believed, not imported again nor reported again.
    assert listing() == ({"metals": "broken"}, "")
    assert marker.read_text().count("imported") == 1

    if where == "existing PYTHONPATH folder":
        write_tree(deps, {"fancydep.py": "CONSTANT = 2.5\n"})
    else:
        write_tree(tmp_path / "more", {"fancydep.py": "CONSTANT = 2.5\n"})
        path.append(tmp_path / "more")
        env["PYTHONPATH"] = ":".join(map(str, path))

    result = run_python(GET_PLUGINS, path=path, env=env, cwd=work)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["['brass_plate', 'steel_plate']"]
    assert result.stderr == ""
    assert listing() == ({"steel_plate": "ok", "brass_plate": "ok"}, "")
    # Healthy again and cached: a warm listing imports nothing.
    assert marker.read_text().count("imported") == 2


def test_retry_in_a_changed_environment_reports_the_same_failure_once(tmp_path: Path) -> None:
    marker = tmp_path / "imports.log"
    app, dev = make_matsim(tmp_path, {
        "matsim/plugins/metals.py": _metals_needing_fancydep(marker)})
    deps = tmp_path / "deps"
    deps.mkdir()
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    records, stderr = list_records(path=[app, dev, deps], env=env, cwd=tmp_path)
    assert [r["state"] for r in records] == ["broken"]
    assert stderr.count("failed to import") == 1
    # Something unrelated is installed: the module is tried again, fails the same way, and
    # that known failure is not reported a second time.
    write_tree(deps, {"unrelated.py": ""})
    records, stderr = list_records(path=[app, dev, deps], env=env, cwd=tmp_path)
    assert [r["state"] for r in records] == ["broken"]
    assert stderr == ""
    assert marker.read_text().count("imported") == 2
    # A different failure is news, though.
    write_tree(deps, {"fancydep.py": "raise RuntimeError('fancydep needs configuring')\n"})
    records, stderr = list_records(path=[app, dev, deps], env=env, cwd=tmp_path)
    (reason,) = [r["reason"] for r in records]
    assert isinstance(reason, str) and reason.endswith("RuntimeError: fancydep needs configuring")
    assert "fancydep needs configuring" in stderr


GADGETS_PROJECT = {
    "pyproject.toml": '''
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "gadgets-kit"
        version = "1.0"

        [tool.setuptools]
        packages = ["gadgets", "gadgets.plugins"]
        ''',
    "gadgets/__init__.py": '"""An application shipping its own plugin package."""\n',
    "gadgets/plugins/__init__.py": "",
    "gadgets/plugins/widgets.py": '''
        import os
        from zope.interface import provider
        from dropins import IPlugin

        with open(os.environ["GADGETS_MARKER"], "a") as _marker:
            _marker.write("imported\\n")

        @provider(IPlugin)
        def spinner():
            """Spins."""
        ''',
}


@pytest.mark.timeout(300)
def test_uninstalled_plugin_package_leaves_nothing_in_site_packages(fresh_venv,
                                                                   tmp_path: Path) -> None:
    marker = tmp_path / "imports.log"
    xdg = tmp_path / "xdg"
    env = {"XDG_CACHE_HOME": str(xdg), "GADGETS_MARKER": str(marker)}
    purelib = fresh_venv.run("python", "-c", "import sysconfig; print(sysconfig.get_paths()"
                             "['purelib'])").stdout.strip()
    installed = Path(purelib) / "gadgets"

    def listing(*extra: str) -> subprocess.CompletedProcess[str]:
        result = fresh_venv.run("dropins", "plugins", *extra, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    fresh_venv.install(build_wheel(write_tree(tmp_path / "gadgets", GADGETS_PROJECT),
                                   tmp_path / "wheels"))
    try:
        assert "spinner" in listing("list", "-p", "gadgets.plugins").stdout
        assert "spinner" in listing("list", "-p", "gadgets.plugins").stdout
        # The cache was written where the next listing reads it: one import for two listings.
        assert marker.read_text().count("imported") == 1
        assert not (installed / "plugins" / "dropins.cache.json").exists()
        assert list((xdg / "dropins").glob("dir-plugins-*.json"))
        # Rebuilding works for an installed package, and its result is what is read back.
        listing("cache", "--rebuild", "-p", "gadgets.plugins")
        assert marker.read_text().count("imported") == 2
        assert "spinner" in listing("list", "-p", "gadgets.plugins").stdout
        assert marker.read_text().count("imported") == 2
    finally:
        fresh_venv.uninstall("gadgets-kit")
    assert not installed.exists(), sorted(map(str, installed.rglob("*")))
    result = fresh_venv.run("python", "-c", "import gadgets.plugins", env=env)
    assert result.returncode != 0
    assert "No module named 'gadgets'" in result.stderr
