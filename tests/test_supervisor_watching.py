"""What ``--reload`` watches (the user's own files, never the stdlib, site-packages or editor
litter) and the watcher itself, on real files in a temporary folder."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from types import ModuleType

import pytest

from dropins.supervisor.devreload import DevReload
from dropins.supervisor.watching import (
    WatchError,
    WatchTargets,
    build_targets,
    describe_changes,
    require_watchfiles,
    user_source_files,
    watch_changes,
)

#: How long a test waits for the watcher to report a change: generous, on a loaded machine.
REPORT_BOUND = 15.0


def import_file(path: Path, name: str) -> ModuleType:
    """Import ``path`` as module ``name`` the way an application's import would."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An application folder: a module, a package with a submodule, an app and config file."""
    root = tmp_path / "project"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "views.py").write_text("ANSWER = 1\n")
    (root / "helpers.py").write_text("")
    (root / "app.py").write_text("application = None\n")
    (root / "shop.toml").write_text("[services]\n")
    return root


def project_modules(root: Path) -> list[ModuleType]:
    return [import_file(root / "helpers.py", "watching_helpers"),
            import_file(root / "shop" / "__init__.py", "watching_shop"),
            import_file(root / "shop" / "views.py", "watching_shop_views")]


def test_only_the_users_own_modules_are_sources(project: Path) -> None:
    installed = [json, pytest, importlib.util, sys.modules["dropins.supervisor.watching"]]
    sources = user_source_files([*project_modules(project), *installed, sys])
    assert sources == {project / "helpers.py", project / "shop" / "__init__.py",
                       project / "shop" / "views.py"}


def test_the_default_is_every_imported_module(project: Path) -> None:
    for module in project_modules(project):
        sys.modules[module.__name__] = module
    try:
        assert project / "shop" / "views.py" in user_source_files()
    finally:
        for name in ("watching_helpers", "watching_shop", "watching_shop_views"):
            del sys.modules[name]


def test_targets_hold_the_application_files_and_module_folders(project: Path) -> None:
    targets = build_targets(config=str(project / "shop.toml"), app=str(project / "app.py"),
                            modules=project_modules(project))
    assert {project / "shop.toml", project / "app.py", project / "shop" / "views.py"} \
        <= targets.files
    assert targets.folders == {project, project / "shop"}
    assert targets.trees == frozenset()
    assert targets.describe() == "5 files in 2 folders"
    with_tree = build_targets(modules=[], reload_dirs=[str(project / "shop")])
    assert with_tree.describe() == f"0 files in 0 folders, and every *.py below {project}/shop"


def test_which_changes_count(project: Path, tmp_path: Path) -> None:
    (tmp_path / "extra" / "deep").mkdir(parents=True)
    targets = build_targets(config=str(project / "shop.toml"), modules=project_modules(project),
                            reload_dirs=[str(tmp_path / "extra")])
    counted = [
        project / "shop.toml",  # the application file, whatever its suffix
        project / "shop" / "views.py",
        project / "shop" / "orders.py",  # a module added beside the imported ones
        tmp_path / "extra" / "deep" / "module.py",  # anywhere in a --reload-dir
    ]
    ignored = [
        project / "notes.txt",
        project / "shop" / ".views.py.swp",  # vim
        project / "shop" / "views.py~",  # emacs backup
        project / "shop" / ".#views.py",  # emacs lock
        project / "shop" / "__pycache__" / "views.cpython-311.pyc",
        project / "shop" / "sub" / "module.py",  # module folders are not recursive
        project / ".git" / "HEAD",
        tmp_path / "extra" / ".venv" / "lib" / "module.py",
        tmp_path / "extra" / "deep" / "data.json",
        tmp_path / "elsewhere.py",
    ]
    assert [path for path in counted if not targets.counts(path)] == []
    assert [path for path in ignored if targets.counts(path)] == []


def test_a_missing_reload_dir_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(WatchError, match=r"--reload-dir .*nowhere: no such directory"):
        build_targets(reload_dirs=[str(tmp_path / "nowhere")], modules=[])


def test_missing_watchfiles_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    require_watchfiles()  # installed here
    monkeypatch.setitem(sys.modules, "watchfiles", None)  # what an absent package imports as
    with pytest.raises(WatchError, match=r"pip install 'dropins\[reload\]'"):
        require_watchfiles()


def test_changes_are_described_relative_to_the_current_directory(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert describe_changes([project / "shop" / "views.py"]) == os.path.join("shop", "views.py")
    outside = project.parent / "other.py"
    assert describe_changes([outside, project / "app.py"]) == f"{outside} and 1 more"


async def next_batch(changes: AsyncGenerator[list[Path], None]) -> list[Path]:
    return await asyncio.wait_for(anext(changes), REPORT_BOUND)


def save_like_an_editor(path: Path, text: str) -> None:
    """Write a temporary file beside ``path`` and rename it over ``path`` (vim, most IDEs)."""
    temporary = path.with_name(f".{path.name}.swp")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_the_watcher_reports_saves_and_ends_on_stop(project: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    targets = build_targets(config=str(project / "shop.toml"), modules=project_modules(project),
                            reload_dirs=[str(tree)])

    async def scenario() -> None:
        stop = asyncio.Event()
        changes = watch_changes(targets, stop, quiet_ms=50)
        first = asyncio.ensure_future(next_batch(changes))
        await asyncio.sleep(0.5)  # the watchers are set up in threads
        (project / "notes.txt").write_text("ignored")
        (project / "shop" / "views.py~").write_text("ignored")
        save_like_an_editor(project / "shop" / "views.py", "ANSWER = 2\n")
        assert await first == [project / "shop" / "views.py"]

        (tree / "pkg" / "new.py").write_text("")  # recursive, and a new file
        assert await next_batch(changes) == [tree / "pkg" / "new.py"]

        (project / "shop.toml").write_text("[services.web]\n")
        assert await next_batch(changes) == [project / "shop.toml"]

        stop.set()
        with pytest.raises(StopAsyncIteration):
            await next_batch(changes)

    asyncio.run(scenario())


def test_changes_made_while_the_consumer_is_busy_come_as_one_batch(project: Path) -> None:
    targets = build_targets(modules=project_modules(project))

    async def scenario() -> None:
        stop = asyncio.Event()
        changes = watch_changes(targets, stop, quiet_ms=50)
        first = asyncio.ensure_future(next_batch(changes))
        await asyncio.sleep(0.5)
        (project / "helpers.py").write_text("X = 1\n")
        assert await first == [project / "helpers.py"]
        # Busy (restarting workers): two saves a while apart, then one batch holds both.
        (project / "shop" / "views.py").write_text("ANSWER = 3\n")
        await asyncio.sleep(0.6)
        (project / "helpers.py").write_text("X = 2\n")
        await asyncio.sleep(2)
        assert await next_batch(changes) == sorted([project / "helpers.py",
                                                    project / "shop" / "views.py"])
        await changes.aclose()  # the consumer leaving ends the watchers too

    asyncio.run(scenario())


def test_targets_are_resolved_paths(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "shop.toml").write_text("")
    link = tmp_path / "link"
    link.symlink_to(real)
    targets = build_targets(config=str(link / "shop.toml"), modules=[])
    assert targets == WatchTargets(frozenset({real / "shop.toml"}), frozenset(), frozenset())


def test_dev_reload_restarts_once_per_batch_and_survives_a_failing_restart(
        project: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The loop between watcher and supervisor: one restart per batch, however many saves
    came while one ran; a restart that raises is logged and watching goes on."""
    targets = build_targets(modules=project_modules(project))
    reasons: list[str] = []

    async def scenario() -> None:
        called = asyncio.Event()

        async def restart(reason: str) -> bool:
            reasons.append(reason)
            called.set()
            if len(reasons) == 1:
                await asyncio.sleep(2)  # saves meanwhile: one more restart afterwards
                return True
            raise RuntimeError("supervisor bug")

        reload = DevReload(targets, restart)
        reload.start()
        await asyncio.sleep(0.5)
        (project / "helpers.py").write_text("X = 1\n")
        await asyncio.wait_for(called.wait(), REPORT_BOUND)
        called.clear()
        (project / "shop" / "views.py").write_text("ANSWER = 4\n")
        await asyncio.sleep(0.5)
        (project / "helpers.py").write_text("X = 2\n")
        await asyncio.wait_for(called.wait(), REPORT_BOUND)
        called.clear()
        (project / "helpers.py").write_text("X = 3\n")  # still watching after the failure
        await asyncio.wait_for(called.wait(), REPORT_BOUND)
        await reload.stop()

    with caplog.at_level(logging.INFO, "dropins.supervisor"):
        asyncio.run(scenario())
    helpers = project / "helpers.py"
    assert reasons == [f"{helpers} changed", f"{helpers} and 1 more changed",
                       f"{helpers} changed"]
    assert [record.getMessage() for record in caplog.records][1:] == [
        "reload: restarting the workers failed: RuntimeError: supervisor bug"] * 2


def test_dev_reload_with_nothing_to_watch_says_what_to_give(
        caplog: pytest.LogCaptureFixture) -> None:
    async def never(reason: str) -> bool:
        raise AssertionError("nothing should change")

    async def scenario() -> None:
        reload = DevReload(build_targets(modules=[]), never)
        reload.start()
        await asyncio.sleep(0.1)
        await reload.stop()

    with caplog.at_level(logging.INFO, "dropins.supervisor"):
        asyncio.run(scenario())
    assert [record.getMessage() for record in caplog.records] == [
        "reload: nothing to watch: the application imported no module of its own; give "
        "--reload-dir DIR"]
