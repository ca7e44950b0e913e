"""Discovery: records, naming, order, shadowing, disabling, strict mode, sources, re-discovery.

Each test runs discovery in a child interpreter (fresh module and cache state, like a real
process) with its own user cache directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from _plugin_helpers import (
    by_name,
    list_records,
    make_dist,
    make_matsim,
    material_module,
    run_python,
)
from conftest import write_tree


@pytest.fixture
def cache_env(tmp_path: Path) -> dict[str, str]:
    """Child environment whose user cache directory is private to the test."""
    return {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}


def test_records_describe_plugins_without_loading_them(tmp_path: Path, cache_env) -> None:
    app, dev = make_matsim(tmp_path)
    records, stderr = list_records(path=[app, dev], env=cache_env)
    assert [r["name"] for r in records] == ["steel_plate", "brass_plate"]
    steel = by_name(records)["steel_plate"]
    assert steel["description"] == "Steel plate"
    assert steel["interfaces"] == ["dropins.plugin.interfaces.IPlugin", "matsim.IMaterial"]
    assert steel["module"] == "matsim.plugins.metals"
    assert steel["attribute"] == "steel_plate"
    assert steel["source"] == "directory"
    assert steel["path"] == str(dev / "matsim" / "plugins" / "metals.py")
    assert steel["state"] == "ok" and steel["reason"] is None
    assert steel["distribution"] is None and steel["package"] == "matsim.plugins"
    assert stderr == ""


def test_naming_and_description_rules(tmp_path: Path, cache_env) -> None:
    app, dev = make_matsim(tmp_path, {
        "matsim/plugins/shapes.py": '''
            from zope.interface import implementer, provider
            from dropins import IPlugin
            from matsim import IMaterial

            @implementer(IPlugin, IMaterial)
            class Plate:
                """Describes the class, not each plate."""
                dielectric_constant = 1.0
                def yield_stress(self, temperature):
                    return 1.0

            plain_plate = Plate()          # no name attribute: the variable name
            named = Plate()
            named.name = "custom_name"     # a str name attribute wins
            numbered = Plate()
            numbered.name = 42             # not a str: the variable name

            @provider(IPlugin, IMaterial)
            class FactoryMaterial:
                """A class that is itself a plugin.

                More text that is not the first line.
                """

            @provider(IPlugin)
            def helper_function():
                """Functions can be plugins too."""
            ''',
        "matsim/plugins/imports.py": '''
            from matsim.plugins.shapes import FactoryMaterial, plain_plate, Plate
            ''',
    })
    records, _ = list_records(path=[app, dev], env=cache_env)
    names = [r["name"] for r in records]
    # imports.py re-imports a class (skipped: defined elsewhere) and an instance (counted: an
    # instance does not record where it was made); "imports" sorts first, so it wins the name.
    found = by_name(records)
    assert set(names) == {"plain_plate", "custom_name", "numbered", "FactoryMaterial",
                          "helper_function"}
    assert names.count("plain_plate") == 2
    assert found["FactoryMaterial"]["description"] == "A class that is itself a plugin."
    assert found["helper_function"]["description"] == "Functions can be plugins too."
    assert found["custom_name"]["attribute"] == "named"
    assert found["custom_name"]["description"] == ""   # the class docstring is not used
    assert found["numbered"]["attribute"] == "numbered"
    imported = [r for r in records if r["name"] == "plain_plate"]
    assert [r["module"] for r in imported] == ["matsim.plugins.imports", "matsim.plugins.shapes"]
    assert [r["state"] for r in imported] == ["ok", "shadowed"]


def test_order_is_directories_then_entry_points_by_distribution(tmp_path: Path,
                                                                 cache_env) -> None:
    app, dev = make_matsim(tmp_path, {
        "matsim/plugins/zinc.py": material_module("zinc"),
        "matsim/plugins/alum.py": material_module("alum"),
    })
    dev2 = write_tree(tmp_path / "dev2", {"matsim/plugins/boron.py": material_module("boron")})
    site = tmp_path / "site"
    make_dist(site, "zeta-materials", "2.0", {"matsim.plugins": {"b": "zeta_mat:b_mat",
                                                                  "a": "zeta_mat:a_mat"}},
              {"zeta_mat.py": material_module("a_mat") + "\nb_mat = Material('b_mat', 2)\n"})
    make_dist(site, "Alpha_Materials", "1.0", {"matsim.plugins": {"x": "alpha_mat"}},
              {"alpha_mat.py": material_module("x_mat")})
    records, _ = list_records(path=[app, dev, dev2, site], env=cache_env)
    assert [r["name"] for r in records] == ["alum", "zinc", "boron", "x_mat", "a_mat", "b_mat"]
    alpha = by_name(records)["x_mat"]
    assert alpha["source"] == "entry-point"
    assert (alpha["distribution"], alpha["version"]) == ("Alpha_Materials", "1.0")
    assert alpha["path"] == str(site / "alpha_mat.py")


def test_shadowed_name_first_wins_and_warning_names_both(tmp_path: Path, cache_env) -> None:
    app, dev = make_matsim(tmp_path, {"matsim/plugins/first.py": material_module("steel")})
    site = tmp_path / "site"
    make_dist(site, "steel-dist", "3.1", {"matsim.plugins": {"steel": "steel_mod:steel"}},
              {"steel_mod.py": material_module("steel", stress=99)})
    result = run_python('''
        from dropins import get_plugins, iter_plugin_info
        from matsim import IMaterial
        print([m.yield_stress(0) for m in get_plugins(IMaterial, "matsim.plugins")])
        for r in iter_plugin_info(package="matsim.plugins"):
            print(r.name, r.state, r.reason)
        ''', path=[app, dev, site], env=cache_env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[1.0]"
    assert lines[1] == "steel ok None"
    assert lines[2].startswith("steel shadowed shadowed by matsim.plugins.first:steel from ")
    warnings = [line for line in result.stderr.splitlines() if "provided twice" in line]
    assert len(warnings) == 1, result.stderr   # once per process, not per call
    assert str(dev / "matsim/plugins/first.py") in warnings[0]
    assert str(site / "steel_mod.py") in warnings[0]


def test_disable_by_name(tmp_path: Path, cache_env) -> None:
    app, dev = make_matsim(tmp_path)
    env = {**cache_env, "DROPINS_DISABLE": " brass_plate ,nothing"}
    result = run_python('''
        from dropins import get_plugins, iter_plugin_info
        from matsim import IMaterial
        print(sorted(m.name for m in get_plugins(IMaterial, "matsim.plugins")))
        print({r.name: (r.state, r.reason) for r in iter_plugin_info(package="matsim.plugins")})
        ''', path=[app, dev], env=env)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first == "['steel_plate']"
    assert "'brass_plate': ('disabled', 'disabled by DROPINS_DISABLE')" in second
    assert "'steel_plate': ('ok', None)" in second


def test_broken_module_is_isolated_reported_and_listed(tmp_path: Path, cache_env) -> None:
    app, dev = make_matsim(tmp_path, {
        **{"matsim/plugins/alpha.py": material_module("alpha")},
        "matsim/plugins/broken.py": "import os\nimport does_not_exist_anywhere\n",
        "matsim/plugins/raising.py": "x = 1\n\nraise RuntimeError('boom\\nsecond line')\n",
        "matsim/plugins/zulu.py": material_module("zulu"),
    })
    result = run_python('''
        from dropins import get_plugins, iter_plugin_info
        from matsim import IMaterial
        print(sorted(m.name for m in get_plugins(IMaterial, "matsim.plugins")))
        for r in iter_plugin_info("matsim.IMaterial", "matsim.plugins"):
            print(r.name, r.state, r.interfaces, r.reason)
        ''', path=[app, dev], env=cache_env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "['alpha', 'zulu']"
    broken = str(dev / "matsim/plugins/broken.py")
    raising = str(dev / "matsim/plugins/raising.py")
    assert lines[2] == (f"broken broken () {broken}:2: ModuleNotFoundError:"
                        " No module named 'does_not_exist_anywhere'")
    assert lines[3] == f"raising broken () {raising}:3: RuntimeError: boom"
    warnings = result.stderr.splitlines()
    assert warnings == [
        f"plugin module {broken} failed to import: {broken}:2: ModuleNotFoundError:"
        " No module named 'does_not_exist_anywhere'",
        f"plugin module {raising} failed to import: {raising}:3: RuntimeError: boom",
    ]


def test_strict_mode_raises_for_plugin_authors(tmp_path: Path, cache_env) -> None:
    app, dev = make_matsim(tmp_path, {"matsim/plugins/bad.py": "def broken(:\n"})
    code = '''
        from dropins import PluginError, get_plugins
        from matsim import IMaterial
        try:
            list(get_plugins(IMaterial, "matsim.plugins"{extra}))
        except PluginError as error:
            print("raised:", error)
        else:
            print("no error")
        '''
    strict = run_python(code.format(extra=""), path=[app, dev],
                        env={**cache_env, "DROPINS_STRICT": "1"})
    assert strict.stdout.startswith("raised: plugin module "), strict.stderr
    assert "bad.py:1: SyntaxError" in strict.stdout
    # The cached broken entry raises too (a second process), and so does strict=True.
    again = run_python(code.format(extra=", strict=True"), path=[app, dev], env=cache_env)
    assert again.stdout.startswith("raised: plugin module "), again.stderr
    lenient = run_python(code.format(extra=""), path=[app, dev], env=cache_env)
    assert lenient.stdout.strip() == "no error"


def test_broken_module_keeps_its_last_known_plugins(tmp_path: Path, cache_env) -> None:
    app, dev = make_matsim(tmp_path)
    list_records(path=[app, dev], env=cache_env)
    metals = dev / "matsim/plugins/metals.py"
    metals.write_text(metals.read_text() + "\nundefined_name_here\n")
    records, stderr = list_records(path=[app, dev], env=cache_env)
    assert [(r["name"], r["state"]) for r in records] == [("steel_plate", "broken"),
                                                          ("brass_plate", "broken")]
    assert "NameError: name 'undefined_name_here' is not defined" in str(records[0]["reason"])
    assert records[0]["interfaces"] == ["dropins.plugin.interfaces.IPlugin", "matsim.IMaterial"]
    assert stderr.count("failed to import") == 1


def test_rediscovery_within_a_running_process(tmp_path: Path, cache_env) -> None:
    app, dev = make_matsim(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    result = run_python(f'''
        import pathlib, sys, textwrap
        sys.path.append({str(site)!r})
        from dropins import get_plugins
        from matsim import IMaterial
        from _plugin_helpers import make_dist, material_module
        names = lambda: sorted(m.name for m in get_plugins(IMaterial, "matsim.plugins"))
        print(names())
        plugins = pathlib.Path({str(dev / "matsim/plugins")!r})
        (plugins / "gold.py").write_text(material_module("gold"))
        print(names())
        make_dist(pathlib.Path({str(site)!r}), "copper", "1.0",
                  {{"matsim.plugins": {{"copper": "copper_mod:copper"}}}},
                  {{"copper_mod.py": material_module("copper")}})
        print(names())
        (plugins / "gold.py").write_text(material_module("gold", stress=7.5) + "# longer")
        print([m.yield_stress(0) for m in get_plugins(IMaterial, "matsim.plugins")
               if m.name == "gold"])
        ''', path=[app, dev, Path(__file__).parent], env=cache_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "['brass_plate', 'steel_plate']",
        "['brass_plate', 'gold', 'steel_plate']",
        "['brass_plate', 'copper', 'gold', 'steel_plate']",
        "[7.5]",
    ]


def test_entry_point_forms_and_duplicate_distributions(tmp_path: Path, cache_env) -> None:
    app, dev = make_matsim(tmp_path, {})
    first, second = tmp_path / "site1", tmp_path / "site2"
    make_dist(first, "copper-plugin", "1.0", {
        "matsim.plugins": {"copper": "copper_mod:Copper", "mixed": "mixed_mod"},
        "other.group": {"ignored": "nothing_here"},
    }, {
        "copper_mod.py": '''
            from matsim import IMaterial
            from zope.interface import implementer

            @implementer(IMaterial)
            class Copper:
                """Copper, named explicitly: no IPlugin needed."""
            ''',
        "mixed_mod.py": material_module("mixed_one") + "\nhelper = 'not a plugin'\n",
    })
    # The same distribution again, later on sys.path (an editable install left behind, say).
    make_dist(second, "Copper_Plugin", "0.9", {"matsim.plugins": {"old": "old_mod:old"}},
              {"old_mod.py": material_module("old")})
    records, _ = list_records(path=[app, dev, first, second], env=cache_env)
    # An object named by an entry point takes the entry point's name (it has no str name).
    assert [(r["name"], r["attribute"]) for r in records] == [("copper", "Copper"),
                                                              ("mixed_one", "mixed_one")]
    copper = records[0]
    assert copper["interfaces"] == ["matsim.IMaterial"]
    assert copper["description"] == "Copper, named explicitly: no IPlugin needed."
    assert (copper["distribution"], copper["version"]) == ("copper-plugin", "1.0")


def test_broken_entry_point_is_listed_under_its_name(tmp_path: Path, cache_env) -> None:
    app, dev = make_matsim(tmp_path, {})
    site = tmp_path / "site"
    make_dist(site, "ghost", "1.0", {"matsim.plugins": {"ghost": "ghost_missing_mod:thing",
                                                         "attr": "attr_mod:missing"}},
              {"attr_mod.py": "present = 1\n"})
    records, stderr = list_records(path=[app, dev, site], env=cache_env)
    states = {r["name"]: (r["state"], r["reason"]) for r in records}
    assert states["ghost"][0] == "broken"
    assert "ModuleNotFoundError: No module named 'ghost_missing_mod'" in str(states["ghost"][1])
    assert states["attr"][0] == "broken"
    assert "AttributeError" in str(states["attr"][1]) and "missing" in str(states["attr"][1])
    assert stderr.count("failed to import") == 2
    # Reported once per change: a second process reads the broken entries from the cache.
    _, stderr = list_records(path=[app, dev, site], env=cache_env)
    assert stderr == ""


def test_entry_point_module_change_without_metadata_change(tmp_path: Path, cache_env) -> None:
    """Editable installs change the module, not the metadata: the cache must notice."""
    app, dev = make_matsim(tmp_path, {})
    site, checkout = tmp_path / "site", tmp_path / "checkout"
    # The metadata in site-packages, the module in the developer's checkout (as a .pth adds).
    make_dist(site, "editable-mat", "0.1", {"matsim.plugins": {"m": "edit_mod"}})
    write_tree(checkout, {"edit_mod.py": material_module("first_name")})
    records, _ = list_records(path=[app, dev, site, checkout], env=cache_env)
    assert [r["name"] for r in records] == ["first_name"]
    write_tree(checkout, {"edit_mod.py": material_module("second_name") + "\n# grown\n"})
    records, _ = list_records(path=[app, dev, site, checkout], env=cache_env)
    assert [r["name"] for r in records] == ["second_name"]
    assert records[0]["path"] == str(checkout / "edit_mod.py")


def test_unknown_package_and_non_package(tmp_path: Path, cache_env) -> None:
    result = run_python('''
        from dropins import PluginError, iter_plugin_info
        for name in ("no_such_package_xyz.plugins", "json.decoder", "bad..name"):
            try:
                list(iter_plugin_info(package=name))
            except PluginError as error:
                print(error)
        ''', env=cache_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "no plugin package named 'no_such_package_xyz.plugins'",
        "'json.decoder' is a module, not a plugin package",
        "no plugin package named 'bad..name'",
    ]


def test_plugin_package_paths(tmp_path: Path) -> None:
    one = write_tree(tmp_path / "one", {"app/plugins/a.py": ""})
    two = write_tree(tmp_path / "two", {"app/plugins/__init__.py": ""})   # the package itself
    three = write_tree(tmp_path / "three", {"app/plugins/b.py": ""})
    result = run_python('''
        import json
        from dropins import plugin_package_paths
        print(json.dumps(plugin_package_paths("app.plugins")))
        ''', path=[one, two, three, one])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [str(one / "app/plugins"), str(three / "app/plugins")]


def test_module_names_that_cannot_be_imported_are_skipped(tmp_path: Path, cache_env) -> None:
    app, dev = make_matsim(tmp_path, {
        "matsim/plugins/not-a-name.py": material_module("dash"),
        "matsim/plugins/_private.py": material_module("private"),
        "matsim/plugins/notes.txt": "text",
    })
    records, _ = list_records(path=[app, dev], env=cache_env)
    assert [r["name"] for r in records] == ["private"]
    assert os.path.exists(dev / "matsim/plugins/dropins.cache.json")


def test_module_hidden_by_an_earlier_directory_is_reported_once(tmp_path: Path,
                                                                cache_env) -> None:
    # A development file named like a module of the package's own folder can never be
    # imported (Python takes the first); its author hears it instead of losing it silently.
    app, dev = make_matsim(tmp_path, {"matsim/plugins/metals.py": material_module("copper")})
    write_tree(app, {"matsim/plugins/metals.py": material_module("steel")})
    result = run_python('''
        from dropins import get_plugins, iter_plugin_info
        from matsim import IMaterial
        for _ in range(3):
            names = sorted(r.name for r in iter_plugin_info(package="matsim.plugins"))
        print(names, len(list(get_plugins(IMaterial, "matsim.plugins"))))
        ''', path=[app, dev], env=cache_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['steel'] 1"
    warnings = [line for line in result.stderr.splitlines() if "is ignored" in line]
    assert len(warnings) == 1, result.stderr
    assert str(dev / "matsim/plugins/metals.py") in warnings[0]
    assert "rename the file" in warnings[0]


def test_plugin_package_given_as_a_module_object(tmp_path: Path, cache_env) -> None:
    # As twisted.plugin.getPlugins(IMaterial, matsim.plugins) takes it.
    app, dev = make_matsim(tmp_path)
    result = run_python('''
        import matsim.plugins
        from dropins import get_plugins, iter_plugin_info
        from dropins.plugin import rebuild_cache
        from matsim import IMaterial
        print(sorted(m.name for m in get_plugins(IMaterial, matsim.plugins)))
        print(sorted(r.name for r in iter_plugin_info(None, matsim.plugins)))
        print(len(rebuild_cache(matsim.plugins)))
        try:
            list(iter_plugin_info(None, 42))
        except TypeError as error:
            print(error)
        ''', path=[app, dev], env=cache_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "['brass_plate', 'steel_plate']", "['brass_plate', 'steel_plate']", "2",
        "expected a plugin package (its dotted name or the module), got 42"]


@pytest.mark.parametrize("declaration", [
    "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n",
    "try:\n    __path__ = __import__('pkgutil').extend_path(__path__, __name__)  # old style\n"
    "except ImportError:\n    pass\n",
])
def test_an_old_style_namespace_declaration_makes_subpackages_extensions(
        tmp_path: Path, cache_env, declaration: str) -> None:
    app = write_tree(tmp_path / "app", {
        "matsim/__init__.py": "from zope.interface import Interface\n"
                              "class IMaterial(Interface):\n    pass\n",
        "matsim/plugins/__init__.py": declaration,
        "matsim/plugins/loose.py": material_module("loose"),
        "matsim/plugins/packed/__init__.py": material_module("packed"),
    })
    records, _ = list_records(path=[app], env=cache_env)
    assert [(r["name"], r["source"]) for r in records] == [("loose", "directory"),
                                                           ("packed", "namespace")]


def test_a_plugin_package_merely_mentioning_extend_path_is_not_a_namespace(
        tmp_path: Path, cache_env) -> None:
    # Only the __path__ assignment counts: not a comment, a docstring or an import, even with
    # pkgutil imported; so the package's subpackages are not imported as extensions.
    marker = tmp_path / "imported"
    app, dev = make_matsim(tmp_path, {"matsim/plugins/loose.py": material_module("loose")})
    write_tree(app, {
        "matsim/plugins/__init__.py": '''
            """Plugins; see pkgutil.extend_path(__path__, __name__) for why we do not use it."""
            from pkgutil import extend_path  # __path__ = extend_path(__path__, __name__)
            from dropins import plugin_package_paths
            __path__.extend(plugin_package_paths(__name__))
            assert extend_path
            ''',
        "matsim/plugins/helpers/__init__.py": f'''
            import pathlib
            pathlib.Path({str(marker)!r}).write_text("imported")
            ''',
    })
    for _ in range(2):
        records, _ = list_records(path=[app, dev], env=cache_env)
        assert [(r["name"], r["source"]) for r in records][-1] == ("loose", "directory")
        assert "namespace" not in {r["source"] for r in records}
        assert not marker.exists()
        assert os.path.exists(dev / "matsim/plugins/dropins.cache.json")


def test_namespace_extension_owner_is_looked_up_only_among_its_top_level(
        tmp_path: Path, cache_env) -> None:
    # A distribution whose top_level.txt names other packages is not read at all: its RECORD
    # (here claiming the extension's file) cannot make it the owner.
    jitter = "nsx/extensions/jitter/__init__.py"
    site = write_tree(tmp_path / "site", {
        "nsx/extensions/jitter/__init__.py": '''
            from zope.interface import implementer
            from dropins import IPlugin

            @implementer(IPlugin)
            class Jitter:
                """Wobbles."""

            __all__ = ["Jitter"]
            ''',
        "aaa_unrelated-9.9.dist-info/METADATA": "Name: aaa-unrelated\nVersion: 9.9\n",
        "aaa_unrelated-9.9.dist-info/top_level.txt": "unrelated\n",
        "aaa_unrelated-9.9.dist-info/RECORD": f"{jitter},,\nunrelated/__init__.py,,\n",
        "nsx_jitter-1.0.dist-info/METADATA": "Name: nsx-jitter\nVersion: 1.0\n",
        "nsx_jitter-1.0.dist-info/top_level.txt": "nsx\n",
        "nsx_jitter-1.0.dist-info/RECORD": f"{jitter},,\nnsx_jitter-1.0.dist-info/RECORD,,\n",
    })
    records, _ = list_records(path=[site], env=cache_env, package="nsx.extensions")
    assert [(r["name"], r["distribution"], r["version"]) for r in records] == [
        ("Jitter", "nsx-jitter", "1.0")]
