"""Shared pieces of the plugin-system tests: the Materials project and subprocess helpers.

Most plugin tests run discovery in a child interpreter, so that each one starts with empty
module and cache state exactly like a real process, and so that import side effects (which
modules got imported) can be observed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from conftest import clean_env, write_tree

#: The application side of the twisted.plugin tutorial: an interface and a plugin package.
MATSIM_APP = {
    "matsim/__init__.py": '''
        """A materials simulation application."""
        from zope.interface import Attribute, Interface

        class IMaterial(Interface):
            """An object with specific physical properties."""

            def yield_stress(temperature):
                """Return the pressure this material can withstand at the given temperature."""

            dielectric_constant = Attribute("The permittivity of the material.")
        ''',
    "matsim/plugins/__init__.py": '''
        from dropins import plugin_package_paths
        __path__.extend(plugin_package_paths(__name__))
        ''',
    "matsim/display.py": '''
        from dropins import get_plugins
        from matsim import IMaterial

        def display_all_known_materials():
            for material in get_plugins(IMaterial, "matsim.plugins"):
                print(material.name, material.yield_stress(300), material.dielectric_constant)
        ''',
}

#: A development folder (no __init__.py) holding two materials, as in the tutorial.
METALS = {
    "matsim/plugins/metals.py": '''
        from zope.interface import implementer
        from dropins import IPlugin
        from matsim import IMaterial

        @implementer(IPlugin, IMaterial)
        class SimpleMaterial:
            def __init__(self, name, yield_stress, dielectric_constant, description):
                self.name = name
                self._yield_stress = yield_stress
                self.dielectric_constant = dielectric_constant
                self.description = description

            def yield_stress(self, temperature):
                return self._yield_stress

        steel_plate = SimpleMaterial("steel_plate", 2.06842719e11, 2.7, "Steel plate")
        brass_plate = SimpleMaterial("brass_plate", 1.03421359e11, 1.4, "Brass plate")
        ''',
}


def material_module(name: str, stress: float = 1.0, marker: str | None = None) -> str:
    """Source of a plugin module with one material; ``marker`` is a file the module appends
    its name to when imported, so a test can tell whether it was imported."""
    record = ""
    if marker:
        record = f"with open({marker!r}, 'a') as _f:\n    _f.write(__name__ + '\\n')\n"
    return record + textwrap.dedent(f'''
        from zope.interface import implementer
        from dropins import IPlugin
        from matsim import IMaterial

        @implementer(IPlugin, IMaterial)
        class Material:
            """Docstrings of a plugin's class do not describe the instance."""
            dielectric_constant = 1.0
            def __init__(self, name, stress):
                self.name, self.stress = name, stress
            def yield_stress(self, temperature):
                return self.stress

        {name} = Material({name!r}, {stress})
        ''')


def make_matsim(root: Path, dev: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Write the Materials application under ``root/app`` and a development folder under
    ``root/dev`` (the metals by default); return both paths (put them on PYTHONPATH)."""
    app = write_tree(root / "app", MATSIM_APP)
    devdir = write_tree(root / "dev", METALS if dev is None else dev)
    (devdir / "matsim" / "plugins").mkdir(parents=True, exist_ok=True)
    return app, devdir


def run_python(code: str, *, path: Sequence[Path | str] = (), env: Mapping[str, str] | None = None,
               cwd: Path | str | None = None, timeout: float = 60,
               python: str | Path = sys.executable,
               prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with ``path`` on PYTHONPATH."""
    extra = dict(env or {})
    if path:
        extra["PYTHONPATH"] = ":".join(str(p) for p in path)
    return subprocess.run([*prefix, str(python), "-c", textwrap.dedent(code)],
                          env=clean_env(extra), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def list_records(*, path: Sequence[Path | str], env: Mapping[str, str] | None = None,
                 package: str = "matsim.plugins", interface: str | None = None,
                 **kwargs: object) -> tuple[list[dict[str, object]], str]:
    """Records of ``package`` listed by a child process, and its stderr."""
    code = (
        "import json\n"
        "from dropins.plugin import iter_plugin_info\n"
        f"print(json.dumps([r.as_dict() for r in iter_plugin_info({interface!r},"
        f" package={package!r})]))\n"
    )
    result = run_python(code, path=path, env=env, **kwargs)  # type: ignore[arg-type]
    if result.returncode != 0:
        raise AssertionError(f"listing failed ({result.returncode}):\n{result.stderr}")
    return json.loads(result.stdout), result.stderr


def by_name(records: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(record["name"]): record for record in records}


def make_dist(site: Path, name: str, version: str, entry_points: Mapping[str, Mapping[str, str]],
              modules: Mapping[str, str] | None = None) -> Path:
    """A fake installed distribution in ``site``: ``name-version.dist-info`` with METADATA and
    entry_points.txt (``{group: {name: value}}``), plus its modules; return the dist-info."""
    folder = site / f"{name.replace('-', '_')}-{version}.dist-info"
    lines = []
    for group, points in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{key} = {value}" for key, value in points.items()]
        lines.append("")
    write_tree(site, {
        f"{folder.name}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{folder.name}/entry_points.txt": "\n".join(lines),
        **(modules or {}),
    })
    return folder


def build_editable_wheel(project: Path, out: Path) -> Path:
    """Build the PEP 660 editable wheel of ``project`` with this interpreter's setuptools.

    This is what ``pip install -e`` builds and installs; doing the build here lets the test venv
    (which has no setuptools) install it without network or build isolation.
    """
    out.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", "import sys, setuptools.build_meta as backend;"
                               " print(backend.build_editable(sys.argv[1]))", str(out)],
        cwd=project, capture_output=True, text=True, timeout=120, env=clean_env())
    if result.returncode != 0:
        raise AssertionError(f"editable build failed:\n{result.stdout}\n{result.stderr}")
    return out / result.stdout.strip().splitlines()[-1]


def src_layout_project(name: str, version: str, files: dict[str, str]) -> dict[str, str]:
    """The files of a setuptools project ``name`` with its packages under ``src/`` (namespace
    packages included), for ``build_wheel`` / ``build_editable_wheel``."""
    return {
        "pyproject.toml": f'''
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{name}"
            version = "{version}"

            [tool.setuptools.packages.find]
            where = ["src"]
            namespaces = true
            ''',
        **{f"src/{path}": text for path, text in files.items()},
    }
