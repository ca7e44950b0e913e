"""``dropins plugins``: list, why, check and cache, run as the real CLI in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _plugin_helpers import make_dist, make_matsim, material_module
from conftest import run_dropins, write_tree

BAD_MATERIAL = '''
from zope.interface import implementer
from dropins import IPlugin
from matsim import IMaterial

@implementer(IPlugin, IMaterial)
class Liar:
    """Claims IMaterial, has neither yield_stress nor dielectric_constant."""

liar = Liar()
'''


@pytest.fixture
def project(tmp_path: Path) -> dict[str, str]:
    """A Materials checkout with a broken module and an installed-looking distribution;
    returns the environment that puts it on the path."""
    app, dev = make_matsim(tmp_path)
    write_tree(dev, {"matsim/plugins/cracked.py": "import os\nraise ImportError('needs nickel')\n"})
    site = tmp_path / "site"
    make_dist(site, "matsim-gold", "2.1", {"matsim.plugins": {"gold": "gold_mod:gold"}},
              {"gold_mod.py": material_module("gold")})
    make_dist(site, "matsim-steel2", "0.1", {"matsim.plugins": {"s": "steel2_mod"}},
              {"steel2_mod.py": material_module("steel_plate")})
    return {"PYTHONPATH": f"{app}:{dev}:{site}", "XDG_CACHE_HOME": str(tmp_path / "xdg"),
            "DROPINS_DISABLE": "brass_plate"}


def plugins(*args: str, env: dict[str, str]):
    return run_dropins("plugins", *args, env=env, timeout=60)


def test_list_table_shows_every_state(project) -> None:
    result = plugins("list", "-p", "matsim.plugins", env=project)
    assert result.returncode == 0, result.stderr
    rows = [line.split()[:5] for line in result.stdout.splitlines()[1:6]]
    assert rows == [
        ["cracked", "-", "directory", "-", "broken"],
        ["steel_plate", "IMaterial", "directory", "-", "ok"],
        ["brass_plate", "IMaterial", "directory", "-", "disabled"],
        ["gold", "IMaterial", "entry-point", "matsim-gold", "2.1"],
        ["steel_plate", "IMaterial", "entry-point", "matsim-steel2", "0.1"],
    ]
    notes = result.stdout.splitlines()[6:]
    assert notes[0].startswith("cracked: broken: ") and notes[0].endswith(
        "cracked.py:2: ImportError: needs nickel")
    assert notes[1] == "brass_plate: disabled: disabled by DROPINS_DISABLE"
    assert notes[2].startswith("steel_plate: shadowed: shadowed by matsim.plugins.metals:")
    # The broken module was reported once, on stderr, when first scanned.
    assert result.stderr.count("failed to import") == 1


def test_list_json_and_interface_filter(project) -> None:
    result = plugins("list", "-p", "matsim.plugins", "--json", "-i", "matsim.IMaterial",
                     env=project)
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [(r["name"], r["state"]) for r in records] == [
        ("cracked", "broken"), ("steel_plate", "ok"), ("brass_plate", "disabled"),
        ("gold", "ok"), ("steel_plate", "shadowed")]
    assert records[3]["distribution"] == "matsim-gold" and records[3]["version"] == "2.1"
    # an existing interface that no plugin provides: an empty list, not an error
    none = plugins("list", "-p", "matsim.plugins", "--json", "-i",
                   "dropins.service.interfaces.IServiceMaker", env=project)
    assert none.returncode == 0, none.stderr
    assert [r["name"] for r in json.loads(none.stdout)] == ["cracked"]


def test_why_explains_each_state(project) -> None:
    ok = plugins("why", "gold", "-p", "matsim.plugins", env=project)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0] == "gold: ok"
    assert "  object:       gold_mod:gold" in ok.stdout
    assert "  distribution: matsim-gold 2.1" in ok.stdout
    broken = plugins("why", "cracked", "-p", "matsim.plugins", env=project)
    assert broken.stdout.splitlines()[0].endswith("cracked.py:2: ImportError: needs nickel")
    assert "run 'dropins plugins cache --rebuild --package matsim.plugins'" in broken.stdout
    assert "hint:" not in ok.stdout
    disabled = plugins("why", "brass_plate", "-p", "matsim.plugins", env=project)
    assert disabled.stdout.splitlines()[0] == (
        "brass_plate: disabled: disabled by DROPINS_DISABLE")
    shadowed = plugins("why", "steel_plate", "-p", "matsim.plugins", env=project)
    first, second = (line for line in shadowed.stdout.splitlines()
                     if line.startswith("steel_plate:"))
    assert first == "steel_plate: ok"
    assert second.startswith("steel_plate: shadowed: shadowed by matsim.plugins.metals:"
                             "steel_plate from ")


@pytest.mark.parametrize(("name", "message"), [
    ("stel_plate", "dropins plugins: error: no plugin named 'stel_plate' in matsim.plugins;"
                   " did you mean 'steel_plate' or 'brass_plate'?"),
    ("zzz", "dropins plugins: error: no plugin named 'zzz' in matsim.plugins;"
            " see 'dropins plugins list --package matsim.plugins'"),
])
def test_why_a_missing_plugin_is_one_line_and_exit_1(project, name, message) -> None:
    result = plugins("why", name, "-p", "matsim.plugins", env=project)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == message and result.stdout == ""


@pytest.mark.parametrize(("args", "message"), [
    (["list", "-p", "nosuch.plugins"],
     "dropins plugins: error: no plugin package named 'nosuch.plugins'"),
    (["list", "-p", "matsim.plugins", "-i", "matsim.INothing"],
     "dropins plugins: error: unknown interface 'matsim.INothing':"
     " matsim has no interface named INothing"),
    (["list", "-p", "matsim.plugins", "-i", "IMaterial"],
     "dropins plugins: error: unknown interface 'IMaterial': give its full dotted name, e.g."
     " dropins.service.interfaces.IServiceMaker"),
    (["check", "-p", "json.decoder"],
     "dropins plugins: error: 'json.decoder' is a module, not a plugin package"),
])
def test_bad_input_is_one_line_and_exit_2(project, args, message) -> None:
    result = plugins(*args, env=project)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == message
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_unknown_action_is_a_usage_error(project) -> None:
    result = plugins("frobnicate", env=project)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "invalid choice: 'frobnicate'" in result.stderr


def test_check_reports_broken_and_unverifiable_plugins(project, tmp_path: Path) -> None:
    result = plugins("check", "-p", "matsim.plugins", env=project)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("cracked: broken: ")
    assert lines[-1] == "checked 2 plugin(s) of matsim.plugins: 1 problem(s)"
    write_tree(tmp_path / "dev", {"matsim/plugins/liar.py": BAD_MATERIAL})
    result = plugins("check", "-p", "matsim.plugins", env=project)
    assert result.returncode == 1
    liar = [line for line in result.stdout.splitlines() if line.startswith("liar:")]
    assert len(liar) == 1 and liar[0].startswith("liar: IMaterial: ")
    assert "yield_stress" in liar[0] or "dielectric_constant" in liar[0]
    (tmp_path / "dev/matsim/plugins/liar.py").unlink()
    (tmp_path / "dev/matsim/plugins/cracked.py").unlink()
    good = plugins("check", "-p", "matsim.plugins", env=project)
    assert good.returncode == 0, good.stdout
    assert good.stdout.splitlines() == ["checked 2 plugin(s) of matsim.plugins: all verified"]


def test_cache_rebuild_regenerates_caches(project, tmp_path: Path) -> None:
    cache = tmp_path / "dev/matsim/plugins/dropins.cache.json"
    assert not cache.exists()
    result = plugins("cache", "--rebuild", "-p", "matsim.plugins", env=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "rebuilt plugin caches of matsim.plugins: 5 plugin(s), 1 broken\n"
    assert json.loads(cache.read_text())["format"] == "dropins-plugin-cache"
    cache.write_text("{ damaged")
    again = plugins("cache", "--rebuild", "-p", "matsim.plugins", env=project)
    assert again.returncode == 0
    rebuilt = json.loads(cache.read_text())
    assert rebuilt["files"] == ["cracked.py", "metals.py"]
    assert rebuilt["special"]["cracked.py"][0] == "broken"
    entry_caches = list((tmp_path / "xdg/dropins").glob("entry-points-matsim.plugins-*.json"))
    assert len(entry_caches) == 1


def test_strict_mode_makes_list_fail_on_broken_module(project) -> None:
    result = plugins("list", "-p", "matsim.plugins", env={**project, "DROPINS_STRICT": "1"})
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(
        "dropins plugins: error: plugin module ")
    assert "Traceback" not in result.stderr


def test_default_package_lists_builtin_plugins(tmp_path: Path) -> None:
    result = run_dropins("plugins", "list", "--json",
                         env={"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert all(r["package"] == "dropins.plugins" for r in records)
    assert {r["state"] for r in records} <= {"ok"}


def test_why_explains_files_that_discovery_skips(tmp_path: Path) -> None:
    app, dev = make_matsim(tmp_path, {"matsim/plugins/my-plugin.py": material_module("dashed")})
    rival = write_tree(tmp_path / "rival", {"matsim/plugins/__init__.py": "",
                                            "matsim/plugins/ceramics.py": material_module("clay")})
    env = {"PYTHONPATH": f"{app}:{dev}:{rival}", "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    dashed = dev / "matsim/plugins/my-plugin.py"
    expected = (f"{dashed}: 'my-plugin' is not a Python identifier, so it cannot be"
                " imported; rename it to my_plugin.py")
    for name in ("my-plugin", "my-plugin.py", "my_plugin", "dashed"):
        result = plugins("why", name, "-p", "matsim.plugins", env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [f"{name}: skipped: {expected}"]
    folder = rival / "matsim/plugins"
    for name in ("ceramics", "clay"):
        result = plugins("why", name, "-p", "matsim.plugins", env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            f"{name}: skipped: {folder} is not searched for plugins of matsim.plugins: it has"
            " an __init__.py, so it is a rival copy of the package rather than a development"
            " folder; remove its __init__.py"]
    # Only what the skipped file defines counts, not any word in it (a docstring, a call).
    for word in ("nothing_like_it", "dielectric_constant", "Docstrings", "implementer_x"):
        unknown = plugins("why", word, "-p", "matsim.plugins", env=env)
        assert unknown.returncode == 1 and f"no plugin named {word!r}" in unknown.stderr
        assert unknown.stdout == ""
    for defined in ("Material", "implementer"):  # a class, an imported name
        found = plugins("why", defined, "-p", "matsim.plugins", env=env)
        assert found.returncode == 0 and "skipped" in found.stdout, found.stderr
