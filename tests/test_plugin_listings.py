"""Remembered directory listings: a settled folder is not listed again, any change is seen.

The child processes shorten the settling time from two seconds to 0.2 s so that the tests
need not wait; they count ``os.listdir`` calls made by discovery (the import system uses its
own reference to the function, so imports are not counted).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from _plugin_helpers import METALS, make_matsim, material_module, run_python

CHILD_PRELUDE = '''
import os, pathlib, sys, time
import dropins.plugin.listings as listings
listings.SETTLED_NS = 200_000_000
from dropins import iter_plugin_info
listed = []
real_listdir = os.listdir
def counting_listdir(*args):
    where = args[0] if args else "."
    if isinstance(where, int):  # a descriptor: which folder is it?
        where = os.readlink(f"/proc/self/fd/{where}")
    listed.append(where)
    return real_listdir(*args)
os.supports_fd.add(counting_listdir)  # still the descriptor-taking os.listdir
os.listdir = counting_listdir
def names():
    del listed[:]
    return sorted(r.name for r in iter_plugin_info(package="matsim.plugins"))
'''


def memo_of(cache: Path, folder: Path) -> Path | None:
    """The remembered listing of plugin folder ``folder`` in ``cache``, if any."""
    for path in cache.glob("listing-*.json"):
        if json.loads(path.read_text()).get("identity") == str(folder):
            return path
    return None


@pytest.fixture
def cache_env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}


def test_settled_folder_is_not_listed_again_until_a_file_comes_or_goes(tmp_path: Path,
                                                                        cache_env) -> None:
    app, dev = make_matsim(tmp_path)
    plugins = dev / "matsim/plugins"
    result = run_python(CHILD_PRELUDE + f'''
plugins = pathlib.Path({str(plugins)!r})
print(names())
time.sleep(0.3)       # every folder is settled now
print(names(), len(listed) > 0)    # listed, and remembered
print(names(), len(listed))        # recalled: nothing listed
(plugins / "gold.py").write_text({material_module("gold")!r})
print(names())
(plugins / "metals.py").unlink()
print(names())
''', path=[app, dev], env=cache_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "['brass_plate', 'steel_plate']",
        "['brass_plate', 'steel_plate'] True",
        "['brass_plate', 'steel_plate'] 0",
        "['brass_plate', 'gold', 'steel_plate']",
        "['gold']",
    ]
    assert result.stderr == ""
    memo = memo_of(tmp_path / "xdg-cache/dropins", plugins)
    data = json.loads(memo.read_text())
    assert data["directories"][str(plugins)][1] in {"metals.py", "gold.py/metals.py", "gold.py"}


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_recently_changed_folder_is_listed_every_time(tmp_path: Path, cache_env) -> None:
    app, dev = make_matsim(tmp_path)
    plugins = dev / "matsim/plugins"
    result = run_python(CHILD_PRELUDE.replace("200_000_000", "2_000_000_000") + f'''
plugins = {str(plugins)!r}
for _ in range(3):
    print(names(), listed.count(plugins))
''', path=[app, dev], env=cache_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["['brass_plate', 'steel_plate'] 1"] * 3
    assert memo_of(tmp_path / "xdg-cache/dropins", plugins) is None


def test_distribution_added_to_a_remembered_folder_is_found(tmp_path: Path, cache_env) -> None:
    app, dev = make_matsim(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    result = run_python(CHILD_PRELUDE + f'''
from _plugin_helpers import make_dist, material_module
site = pathlib.Path({str(site)!r})
sys.path.append(str(site))
names()
time.sleep(0.3)
names()                 # remembers every sys.path folder
print(names(), len(listed))
make_dist(site, "copper", "1.0", {{"matsim.plugins": {{"copper": "copper_mod:copper"}}}},
          {{"copper_mod.py": material_module("copper")}})
print(names())
''', path=[app, dev, Path(__file__).parent], env=cache_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "['brass_plate', 'steel_plate'] 0",
        "['brass_plate', 'copper', 'steel_plate']",
    ]
    (memo,) = (tmp_path / "xdg-cache/dropins").glob("path-listings-*.json")
    assert str(site) in json.loads(memo.read_text())["directories"]


@pytest.mark.parametrize("damage", [
    b"{ not json",
    b'{"format": "dropins-plugin-cache", "version": 2}',
    None,  # the right header, a listing that claims an unchanged folder is empty
])
def test_damaged_listing_is_ignored(tmp_path: Path, cache_env, damage: bytes | None) -> None:
    app, dev = make_matsim(tmp_path)
    plugins = dev / "matsim/plugins"
    script = CHILD_PRELUDE + '''
names(); time.sleep(0.3); print(names())
'''
    first = run_python(script, path=[app, dev], env=cache_env)
    assert first.returncode == 0, first.stderr
    memo = memo_of(tmp_path / "xdg-cache/dropins", plugins)
    assert memo is not None
    if damage is None:
        data = json.loads(memo.read_text())
        data["directories"][str(plugins)][1] = 5
        memo.write_text(json.dumps(data))
    else:
        memo.write_bytes(damage)
    again = run_python(CHILD_PRELUDE + "print(names())", path=[app, dev], env=cache_env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout == "['brass_plate', 'steel_plate']\n"
    assert again.stderr == ""


def test_saving_keeps_other_folders_that_still_exist(tmp_path: Path, monkeypatch) -> None:
    from dropins.plugin import listings

    monkeypatch.setenv("DROPINS_CACHE_DIR", str(tmp_path / "cache"))
    folders = [tmp_path / name for name in ("one", "two", "gone")]
    for folder in folders:
        folder.mkdir()
    now = os.stat(folders[-1]).st_ctime_ns + listings.SETTLED_NS  # all of them settled
    for folder in folders:
        memo = listings.Listings("path-listings", "env")
        memo.remember(str(folder), os.stat(folder), [folder.name + ".dist-info"], now)
        memo.save()
    folders[2].rmdir()
    memo = listings.Listings("path-listings", "env")
    assert memo.recall(str(folders[0]), os.stat(folders[0]), now) == ["one.dist-info"]
    assert memo.recall(str(folders[1]), os.stat(folders[1]), now) == ["two.dist-info"]
    (folders[1] / "new").mkdir()
    assert memo.recall(str(folders[1]), os.stat(folders[1]), now) is None  # it changed
    later = os.stat(folders[1]).st_ctime_ns + listings.SETTLED_NS
    memo.remember(str(folders[1]), os.stat(folders[1]), [], later)
    memo.save()
    data = json.loads(next((tmp_path / "cache").glob("path-listings-*.json")).read_text())
    assert data["directories"] == {
        str(folders[0]): [_status(folders[0]), "one.dist-info", now],
        str(folders[1]): [_status(folders[1]), "", later],
    }


def test_listing_is_remembered_once_settled_and_for_a_minute(tmp_path: Path,
                                                             monkeypatch) -> None:
    from dropins.plugin import listings

    monkeypatch.setenv("DROPINS_CACHE_DIR", str(tmp_path / "cache"))
    status = os.stat(tmp_path)
    settled = status.st_ctime_ns + listings.SETTLED_NS

    def remembered_at(when: int) -> None:
        memo = listings.Listings("listing", str(tmp_path))
        memo.remember(str(tmp_path), status, ["a.py"], when)
        memo.save()

    remembered_at(settled - 1)  # changed too recently: not remembered
    assert not (tmp_path / "cache").exists()
    remembered_at(settled)
    memo = listings.Listings("listing", str(tmp_path))
    assert memo.recall(str(tmp_path), status, settled) == ["a.py"]
    assert memo.recall(str(tmp_path), status, settled + listings.MAX_AGE_NS - 1) == ["a.py"]
    assert memo.recall(str(tmp_path), status, settled + listings.MAX_AGE_NS) is None
    assert memo.recall(str(tmp_path), status, settled - 1) is None  # the clock went back
    assert listings.Listings("listing", str(tmp_path), trusted=False).recall(
        str(tmp_path), status, settled) is None


def _status(folder: Path) -> list[int]:
    status = os.stat(folder)
    return [status.st_dev, status.st_ino, status.st_mtime_ns, status.st_ctime_ns,
            status.st_size, status.st_nlink]


def test_rebuild_lists_every_folder_again(tmp_path: Path) -> None:
    app, dev = make_matsim(tmp_path, {**METALS, "matsim/plugins/gold.py": material_module("gold")})
    plugins = dev / "matsim/plugins"
    # Every cache file in one folder, none beside the modules: nothing here changes the
    # plugin folder, whose remembered listing is doctored below.
    cache = tmp_path / "caches"
    env = {"DROPINS_CACHE_DIR": str(cache)}
    settle = run_python(CHILD_PRELUDE + "names(); time.sleep(0.3); print(names())",
                        path=[app, dev], env=env)
    assert settle.stdout == "['brass_plate', 'gold', 'steel_plate']\n", settle.stderr
    # A listing is believed while the folder's status is unchanged: doctor it to show that ...
    memo = memo_of(cache, plugins)
    assert memo is not None
    data = json.loads(memo.read_text())
    assert data["directories"][str(plugins)][1] == "gold.py/metals.py"
    data["directories"][str(plugins)][1] = "metals.py"
    memo.write_text(json.dumps(data))
    believed = run_python(CHILD_PRELUDE + "print(names())", path=[app, dev], env=env)
    assert believed.stdout == "['brass_plate', 'steel_plate']\n", believed.stderr
    # ... and that a rebuild does not believe it, and puts it right.
    rebuilt = run_python(CHILD_PRELUDE + '''
from dropins.plugin import rebuild_cache
print(sorted(r.name for r in rebuild_cache("matsim.plugins")))
print(names())
''', path=[app, dev], env=env)
    assert rebuilt.stdout.splitlines() == ["['brass_plate', 'gold', 'steel_plate']"] * 2, \
        rebuilt.stderr
