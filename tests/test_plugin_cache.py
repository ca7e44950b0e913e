"""The discovery cache: what it saves (no imports), and every way it can go wrong.

The fault matrix: corrupt, truncated, foreign-format and malformed files; a read-only plugin
directory; eight processes rebuilding at once; an older-mtime replacement; a deleted module; a
syntax error reported once and found again once fixed.  Each case checks the listing is right,
nothing is printed (cache trouble is DEBUG only), and the cache ends valid.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from _plugin_helpers import list_records, make_dist, make_matsim, material_module, run_python
from conftest import clean_env, write_tree

LIGHT_APP = {
    "lightapp/__init__.py": "",
    "lightapp/interfaces.py": '''
        import os
        with open(os.environ["MARKER"], "a") as f:
            f.write(__name__ + "\\n")
        from zope.interface import Interface

        class ILight(Interface):
            """Something that shines."""
        ''',
    "lightapp/plugins/__init__.py": '''
        from dropins.plugin import plugin_package_paths
        __path__.extend(plugin_package_paths(__name__))
        ''',
}


def light_module(name: str) -> str:
    return f'''
import os
with open(os.environ["MARKER"], "a") as f:
    f.write(__name__ + "\\n")
from zope.interface import implementer
from dropins.plugin.interfaces import IPlugin
from lightapp.interfaces import ILight

@implementer(IPlugin, ILight)
class Lamp:
    description = "lamp {name}"

{name} = Lamp()
'''


@pytest.fixture
def cache_env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache"), "MARKER": str(tmp_path / "marker")}


@pytest.fixture
def matsim(tmp_path: Path) -> tuple[Path, Path]:
    return make_matsim(tmp_path)


def cache_file(dev: Path) -> Path:
    return dev / "matsim" / "plugins" / "dropins.cache.json"


def assert_valid_cache(path: Path, modules: set[str]) -> dict[str, object]:
    data = json.loads(path.read_text())
    assert data["format"] == "dropins-plugin-cache" and data["version"] == 2
    assert set(data["files"]) == modules
    return data


METAL_INTERFACES = ["dropins.plugin.interfaces.IPlugin", "matsim.IMaterial"]


def names(records: list[dict[str, object]]) -> list[object]:
    return [r["name"] for r in records]


# json is imported only after the listing, as in a program that never uses it: the C scanner
# that reads caches depends on json.decoder to report errors.
LIST_WITH_DEBUG = '''
import logging
logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(message)s")
from dropins.plugin import iter_plugin_info
records = [[r.name, r.state, r.description, list(r.interfaces)]
           for r in iter_plugin_info(package="matsim.plugins")]
import json
print(json.dumps(records))
'''


def test_valid_cache_imports_no_plugin_and_no_interface_module(tmp_path: Path,
                                                                cache_env) -> None:
    app = write_tree(tmp_path / "app", LIGHT_APP)
    dev = write_tree(tmp_path / "dev", {f"lightapp/plugins/lamp{i}.py": light_module(f"lamp{i}")
                                        for i in range(3)})
    site = tmp_path / "site"
    make_dist(site, "lamp-dist", "1.0", {"lightapp.plugins": {"ep_lamp": "ep_lamp_mod"}},
              {"ep_lamp_mod.py": light_module("ep_lamp")})
    code = '''
        import json, sys
        from dropins.plugin import iter_plugin_info
        records = list(iter_plugin_info("lightapp.interfaces.ILight", "lightapp.plugins"))
        heavy = sorted(m for m in ("zope.interface", "importlib.metadata", "platformdirs",
                                   "asyncio", "logging", "lightapp.interfaces") if m in sys.modules)
        print(json.dumps({"names": [r.name for r in records], "heavy": heavy,
                          "descriptions": [r.description for r in records]}))
        '''
    marker = Path(cache_env["MARKER"])
    cold = run_python(code, path=[app, dev, site], env=cache_env)
    assert cold.returncode == 0, cold.stderr
    assert sorted(marker.read_text().split()) == [
        "ep_lamp_mod", "lightapp.interfaces", *[f"lightapp.plugins.lamp{i}" for i in range(3)]]
    marker.unlink()
    warm = run_python(code, path=[app, dev, site], env=cache_env)
    assert warm.returncode == 0, warm.stderr
    result = json.loads(warm.stdout)
    assert result["names"] == ["lamp0", "lamp1", "lamp2", "ep_lamp"]
    assert result["descriptions"] == ["lamp lamp0", "lamp lamp1", "lamp lamp2", "lamp ep_lamp"]
    assert result["heavy"] == []
    assert not marker.exists(), marker.read_text()


def test_importing_dropins_plugin_is_light() -> None:
    result = run_python('''
        import sys
        import dropins.plugin, dropins.plugins
        print(sorted(m for m in ("zope.interface", "importlib.metadata", "platformdirs",
                                 "asyncio", "logging", "fcntl", "pwd") if m in sys.modules))
        ''')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _garbage(data: bytes) -> bytes:
    return b"\x80\x04\x95 not json at all \xff"


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _foreign_version(data: bytes) -> bytes:
    parsed = json.loads(data)
    parsed["version"] = 999
    return json.dumps(parsed).encode()


def _foreign_format(data: bytes) -> bytes:
    return json.dumps(["twisted", "dropin.cache", {"metals.py": 1}]).encode()


def _malformed_entry(data: bytes) -> bytes:
    parsed = json.loads(data)
    parsed["plugins"]["name"] = 5   # the right file keys, nonsense plugins
    return json.dumps(parsed).encode()


def _other_directory(data: bytes) -> bytes:
    parsed = json.loads(data)
    parsed["identity"] = "/somewhere/else"
    return json.dumps(parsed).encode()


def _edited(**changes: object):
    """A damage that sets ``plugins`` columns (``plugins_name=...``) or other table fields."""
    def damage(data: bytes) -> bytes:
        parsed = json.loads(data)
        for field, value in changes.items():
            if field.startswith("plugins_"):
                parsed["plugins"][field.removeprefix("plugins_")] = value
            else:
                parsed[field] = value
        return json.dumps(parsed).encode()
    damage.__name__ = "_" + "_and_".join(changes)
    return damage


# Values of the wrong type in the right places, on the warm path and (with a stale file key)
# on the module-by-module one: none may raise out of discovery or come out as a record.
TYPE_DAMAGE = [
    _edited(plugins_name=[["steel_plate"], "brass_plate"]),
    _edited(plugins_description=[{"no": 1}, "Brass plate"]),
    _edited(plugins_file=[-1, 0]),
    _edited(plugins_interfaces=True),
    _edited(plugins_attribute=[None, 7]),
    _edited(interfaces=[[["matsim.IMaterial"]]]),
    _edited(interfaces=[[["matsim.IMaterial"]]], mtimes=[0]),
    _edited(interfaces=["matsim.IMaterial"], mtimes=[0]),
    _edited(special={"metals.py": ["broken", {"reason": 1}, None, None]}),
    _edited(special={"metals.py": "broken"}, mtimes=[0]),
    _edited(special={"metals.py": ["ok", "x", None, None, [7, None]]}),
    _edited(special={"metals.py": ["ok", "x", None, None, ["x"]]}),
    _edited(special={"metals.py": ["ok", None, [1, "2.0"], None, None]}),
]


@pytest.mark.parametrize("damage", [_garbage, _truncated, _foreign_version, _foreign_format,
                                    _malformed_entry, _other_directory, *TYPE_DAMAGE])
def test_damaged_cache_is_rebuilt_quietly(matsim, cache_env, damage) -> None:
    app, dev = matsim
    list_records(path=[app, dev], env=cache_env)
    path = cache_file(dev)
    path.write_bytes(damage(path.read_bytes()))
    result = run_python(LIST_WITH_DEBUG, path=[app, dev], env=cache_env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [["steel_plate", "ok", "Steel plate", METAL_INTERFACES],
                                         ["brass_plate", "ok", "Brass plate", METAL_INTERFACES]]
    assert "WARNING" not in result.stderr and "Traceback" not in result.stderr
    cache_lines = [line for line in result.stderr.splitlines() if "cache" in line]
    assert len(cache_lines) <= 1, result.stderr
    assert_valid_cache(path, {"metals.py"})
    # and without DEBUG logging nothing at all is printed
    records, stderr = list_records(path=[app, dev], env=cache_env)
    assert names(records) == ["steel_plate", "brass_plate"] and stderr == ""


def test_damaged_entry_of_a_module_that_did_not_change(matsim, cache_env) -> None:
    # Another module changed, so the directory is rescanned module by module, and the damaged
    # entry of metals.py is current: it must be dropped, not carried into the new cache.
    app, dev = matsim
    list_records(path=[app, dev], env=cache_env)
    path = cache_file(dev)
    parsed = json.loads(path.read_text())
    parsed["interfaces"] = [[["matsim.IMaterial"]]]
    path.write_text(json.dumps(parsed))
    (dev / "matsim/plugins/gold.py").write_text(material_module("gold"))
    result = run_python(LIST_WITH_DEBUG, path=[app, dev], env=cache_env)
    assert result.returncode == 0, result.stderr
    assert [record[:2] for record in json.loads(result.stdout)] == [
        ["gold", "ok"], ["steel_plate", "ok"], ["brass_plate", "ok"]]
    assert "WARNING" not in result.stderr and "Traceback" not in result.stderr
    assert_valid_cache(path, {"gold.py", "metals.py"})


def _read_only_prefix(directory: Path) -> list[str] | None:
    """A command prefix running a child with ``directory`` read-only, even for root."""
    if os.name != "posix" or os.geteuid() != 0:
        return []
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    prefix = [unshare, "--mount", "--propagation", "private", "sh", "-c",
              'mount --bind -o ro "$0" "$0" && exec "$@"', str(directory)]
    probe = subprocess.run([*prefix, "sh", "-c", f'! touch "{directory}/.probe" 2>/dev/null'],
                           capture_output=True, timeout=30)
    return prefix if probe.returncode == 0 else None


def test_read_only_plugin_directory_uses_user_cache_without_warning(matsim, cache_env,
                                                                    tmp_path: Path) -> None:
    app, dev = matsim
    plugins = dev / "matsim" / "plugins"
    write_tree(plugins, {"marked.py": material_module("marked", marker=cache_env["MARKER"])})
    prefix = _read_only_prefix(plugins)
    if prefix is None:
        pytest.skip("cannot make a directory read-only for root here (no unshare/mount)")
    if not prefix:
        plugins.chmod(0o555)
    try:
        for _round in range(2):
            result = run_python(LIST_WITH_DEBUG.replace("DEBUG", "WARNING"), path=[app, dev],
                                env=cache_env, prefix=prefix)
            assert result.returncode == 0, result.stderr
            assert [record[:2] for record in json.loads(result.stdout)] == [
                ["marked", "ok"], ["steel_plate", "ok"], ["brass_plate", "ok"]]
            assert result.stderr == ""
    finally:
        plugins.chmod(0o755)
    assert not cache_file(dev).exists()
    private = list((tmp_path / "xdg-cache" / "dropins").glob("dir-plugins-*.json"))
    assert len(private) == 1
    assert_valid_cache(private[0], {"marked.py", "metals.py"})
    # Imported while building the private cache, then never again.
    assert Path(cache_env["MARKER"]).read_text().split() == ["matsim.plugins.marked"]


def test_eight_processes_rebuilding_at_once(tmp_path: Path, cache_env) -> None:
    app, dev = make_matsim(tmp_path, {f"matsim/plugins/m{i:02}.py": material_module(f"m{i:02}")
                                      for i in range(40)})
    go = tmp_path / "go"
    code = f'''
        import json, os, time
        deadline = time.monotonic() + 30
        while not os.path.exists({str(go)!r}) and time.monotonic() < deadline:
            time.sleep(0.005)
        from dropins.plugin import iter_plugin_info
        print(json.dumps([[r.name, r.state] for r in iter_plugin_info(package="matsim.plugins")]))
        '''
    env = clean_env({**cache_env, "PYTHONPATH": f"{app}:{dev}"})
    children = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(8)]
    try:
        time.sleep(0.3)
        go.touch()
        outputs = [child.communicate(timeout=90) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    expected = [[f"m{i:02}", "ok"] for i in range(40)]
    for (stdout, stderr), child in zip(outputs, children, strict=True):
        assert child.returncode == 0, stderr
        assert stderr == ""
        assert json.loads(stdout) == expected
    assert_valid_cache(cache_file(dev), {f"m{i:02}.py" for i in range(40)})
    assert [p.name for p in (dev / "matsim/plugins").iterdir() if p.suffix == ".tmp"] == []


def test_older_mtime_replacement_with_same_size_is_noticed(tmp_path: Path, cache_env) -> None:
    app, dev = make_matsim(tmp_path, {"matsim/plugins/swap.py": material_module("aaaa")})
    swap = dev / "matsim/plugins/swap.py"
    records, _ = list_records(path=[app, dev], env=cache_env)
    assert names(records) == ["aaaa"]
    before = swap.stat()
    write_tree(dev, {"matsim/plugins/swap.py": material_module("bbbb")})  # same size
    assert swap.stat().st_size == before.st_size
    older = before.st_mtime_ns - 3_600 * 10**9          # like `cp -p` of an older file
    os.utime(swap, ns=(older, older))
    records, _ = list_records(path=[app, dev], env=cache_env)
    assert names(records) == ["bbbb"]


def test_deleted_module_disappears(matsim, cache_env) -> None:
    app, dev = matsim
    write_tree(dev, {"matsim/plugins/extra.py": material_module("extra")})
    records, _ = list_records(path=[app, dev], env=cache_env)
    assert names(records) == ["extra", "steel_plate", "brass_plate"]
    (dev / "matsim/plugins/extra.py").unlink()
    records, _ = list_records(path=[app, dev], env=cache_env)
    assert names(records) == ["steel_plate", "brass_plate"]
    assert_valid_cache(cache_file(dev), {"metals.py"})


def test_syntax_error_warned_once_then_found_once_fixed(matsim, cache_env) -> None:
    app, dev = matsim
    broken = dev / "matsim/plugins/fresh.py"
    broken.write_text("import os\n\ndef oops(:\n    pass\n")
    twice = '''
        import json
        from dropins.plugin import iter_plugin_info
        for _ in range(2):
            print(json.dumps([[r.name, r.state, r.reason]
                              for r in iter_plugin_info(package="matsim.plugins")]))
        '''
    first = run_python(twice, path=[app, dev], env=cache_env)
    assert first.returncode == 0, first.stderr
    expected_reason = f"{broken}:3: SyntaxError: invalid syntax"
    assert first.stderr.splitlines() == [f"plugin module {broken} failed to import: "
                                         f"{expected_reason}"]
    one, two = (json.loads(line) for line in first.stdout.splitlines())
    assert one == two
    assert one[0] == ["fresh", "broken", expected_reason]
    second = run_python(twice, path=[app, dev], env=cache_env)
    assert second.stderr == ""                         # unchanged file: not reported again
    broken.write_text(material_module("fresh_material"))
    records, stderr = list_records(path=[app, dev], env=cache_env)
    assert stderr == ""
    assert [(r["name"], r["state"]) for r in records] == [
        ("fresh_material", "ok"), ("steel_plate", "ok"), ("brass_plate", "ok")]


def test_no_cache_and_cache_dir_overrides(matsim, cache_env, tmp_path: Path) -> None:
    app, dev = matsim
    records, _ = list_records(path=[app, dev], env={**cache_env, "DROPINS_NO_CACHE": "1"})
    assert names(records) == ["steel_plate", "brass_plate"]
    assert not cache_file(dev).exists() and not (tmp_path / "xdg-cache").exists()
    elsewhere = tmp_path / "elsewhere"
    records, _ = list_records(path=[app, dev],
                              env={**cache_env, "DROPINS_CACHE_DIR": str(elsewhere)})
    assert names(records) == ["steel_plate", "brass_plate"]
    assert not cache_file(dev).exists()
    (private,) = elsewhere.glob("dir-plugins-*.json")
    assert_valid_cache(private, {"metals.py"})
    assert list(elsewhere.glob("entry-points-matsim.plugins-*.json"))


def test_cache_is_json_readable_by_everyone(matsim, cache_env) -> None:
    app, dev = matsim
    list_records(path=[app, dev], env=cache_env)
    path = cache_file(dev)
    data = assert_valid_cache(path, {"metals.py"})
    assert data["layout"] == {
        "table": ["package", "files", "mtimes", "sizes", "interfaces", "plugins", "special"],
        "plugin": ["file", "name", "attribute", "description", "interfaces"],
        "special": ["state", "reason", "version", "environment", "problems"]}
    metals = dev / "matsim/plugins/metals.py"
    assert (data["package"], data["files"], data["mtimes"], data["sizes"]) == (
        "matsim.plugins", ["metals.py"], [metals.stat().st_mtime_ns], [metals.stat().st_size])
    assert data["interfaces"] == [["dropins.plugin.interfaces.IPlugin", "matsim.IMaterial"]]
    # Columns that hold one value in every row are stored as that value.
    assert data["plugins"] == {"file": [0, 0], "name": ["steel_plate", "brass_plate"],
                               "attribute": None,
                               "description": ["Steel plate", "Brass plate"],
                               "interfaces": 0}
    assert data["special"] == {}
    assert path.stat().st_mode & 0o044 == 0o044   # not mkstemp's 0600: users read root's cache


def test_user_cache_directory_matches_platformdirs(monkeypatch, tmp_path: Path) -> None:
    import platformdirs

    from dropins.plugin import cache

    for xdg in (str(tmp_path / "xdg"), ""):
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
        monkeypatch.setattr(cache, "_user_cache_dir", None)
        assert cache._user_directory() == platformdirs.user_cache_dir("dropins", appauthor=False)


def test_module_loaded_by_a_record_then_changed_does_not_poison_the_cache(tmp_path: Path,
                                                                          cache_env) -> None:
    # A long-lived process loads a plugin through PluginInfo.load(), the file changes, and the
    # process lists again: it must describe the new file, and so must every other process.
    app, dev = make_matsim(tmp_path, {"matsim/plugins/gold.py": material_module("gold")})
    gold = dev / "matsim/plugins/gold.py"
    list_records(path=[app, dev], env=cache_env)  # a warm cache: the next listing imports nothing
    result = run_python(f'''
        import pathlib
        from dropins import iter_plugin_info
        from _plugin_helpers import material_module
        (record,) = iter_plugin_info(package="matsim.plugins")
        print(record.load().name)
        pathlib.Path({str(gold)!r}).write_text(material_module("platinum") + "# longer")
        print([r.name for r in iter_plugin_info(package="matsim.plugins")])
        ''', path=[app, dev, Path(__file__).parent], env=cache_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["gold", "['platinum']"]
    records, stderr = list_records(path=[app, dev], env=cache_env)
    assert names(records) == ["platinum"] and stderr == ""


def test_module_imported_by_application_code_then_changed_does_not_poison_the_cache(
        tmp_path: Path, cache_env) -> None:
    # Application code (not discovery, not load()) imported the plugin module before its file
    # changed: the listing must describe the file as it is now, in this process and others.
    app, dev = make_matsim(tmp_path, {"matsim/plugins/gold.py": material_module("gold")})
    gold = dev / "matsim/plugins/gold.py"
    result = run_python(f'''
        import pathlib
        import matsim.plugins.gold
        from dropins import iter_plugin_info
        from _plugin_helpers import material_module
        pathlib.Path({str(gold)!r}).write_text(material_module("platinum") + "# longer")
        print([r.name for r in iter_plugin_info(package="matsim.plugins")])
        ''', path=[app, dev, Path(__file__).parent], env=cache_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["['platinum']"]
    records, stderr = list_records(path=[app, dev], env=cache_env)
    assert names(records) == ["platinum"] and stderr == ""


def test_same_size_edit_within_the_same_second_is_not_read_from_stale_byte_code(
        tmp_path: Path, cache_env) -> None:
    # A .pyc records its source's mtime in whole seconds and its size only: an edit keeping
    # both must still be compiled afresh, or the old names are cached under the new key.
    app, dev = make_matsim(tmp_path, {"matsim/plugins/swap.py": material_module("aaaaaa")})
    swap = dev / "matsim/plugins/swap.py"
    second = (swap.stat().st_mtime_ns // 10**9 + 10) * 10**9  # any whole second will do
    os.utime(swap, ns=(second + 100_000_000, second + 100_000_000))
    env = {**cache_env, "PYTHONDONTWRITEBYTECODE": ""}  # empty: byte-code is written
    records, _ = list_records(path=[app, dev], env=env)
    assert names(records) == ["aaaaaa"]
    assert list((swap.parent / "__pycache__").glob("swap.*.pyc"))  # byte-code was written
    write_tree(dev, {"matsim/plugins/swap.py": material_module("bbbbbb")})  # same size
    os.utime(swap, ns=(second + 600_000_000, second + 600_000_000))
    for _ in range(2):  # rescanned, then from the cache, in other processes
        records, _ = list_records(path=[app, dev], env=env)
        assert names(records) == ["bbbbbb"]


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _huge(path: Path) -> None:
    with open(path, "wb") as stream:  # sparse: 4 GiB that use no disk
        stream.truncate(4 << 30)


@pytest.mark.skipif(os.name != "posix", reason="FIFOs and /dev/zero are POSIX")
@pytest.mark.parametrize("plant", [_fifo, _dev_zero, _huge])
def test_hostile_files_at_cache_paths_are_refused(tmp_path: Path, plant) -> None:
    # Someone who can write the shared cache folder puts a FIFO, /dev/zero or a huge file where
    # each cache and remembered listing goes: discovery must neither hang nor eat memory.
    app, dev = make_matsim(tmp_path)
    site = tmp_path / "site"
    make_dist(site, "copper", "1.0", {"matsim.plugins": {"copper": "copper_mod:copper"}},
              {"copper_mod.py": material_module("copper")})
    shared = tmp_path / "shared-cache"
    env = {"DROPINS_CACHE_DIR": str(shared)}
    list_records(path=[app, dev, site], env=env)
    planted = sorted(shared.glob("*.json"))
    assert len(planted) >= 3  # the directory's cache, its listing, the entry points' cache
    for path in planted:
        path.unlink()
        plant(path)
    result = run_python('''
        import json, resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from dropins.plugin import iter_plugin_info
        print(json.dumps(sorted(r.name for r in iter_plugin_info(package="matsim.plugins"))))
        ''', path=[app, dev, site], env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["brass_plate", "copper", "steel_plate"]
    assert result.stderr == ""
