"""Plugin modules that end the import abnormally: BaseException subclasses, os._exit(), and a
real Ctrl-C arriving while a plugin module is imported.  Each runs the real CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _plugin_helpers import make_matsim, material_module
from conftest import clean_env, run_dropins, write_tree


def _environment(tmp_path: Path, modules: dict[str, str]) -> dict[str, str]:
    app, dev = make_matsim(tmp_path, {"matsim/plugins/alpha.py": material_module("alpha"),
                                      **modules})
    return {"PYTHONPATH": f"{app}:{dev}", "XDG_CACHE_HOME": str(tmp_path / "xdg")}


def _listing(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_dropins("plugins", "list", "--package", "matsim.plugins", env=env, timeout=60)


def test_base_exceptions_at_import_list_the_module_as_broken(tmp_path: Path) -> None:
    env = _environment(tmp_path, {
        "matsim/plugins/bare.py": "raise BaseException('bare')\n",
        "matsim/plugins/generator.py": "raise GeneratorExit\n",
        "matsim/plugins/interrupt.py": "x = 1\nraise KeyboardInterrupt\n",
    })
    for _ in range(2):  # freshly scanned, then read back from the cache
        result = _listing(env)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        notes = {line.partition(":")[0]: line for line in result.stdout.splitlines()
                 if ": broken: " in line}
        assert sorted(notes) == ["bare", "generator", "interrupt"], result.stdout
        assert notes["bare"].endswith("bare.py:1: BaseException: bare")
        assert notes["generator"].endswith("generator.py:1: GeneratorExit")
        assert notes["interrupt"].endswith("interrupt.py:2: KeyboardInterrupt")
        assert any(line.split()[:5] == ["alpha", "IMaterial", "directory", "-", "ok"]
                   for line in result.stdout.splitlines())


def test_module_ending_the_process_is_listed_as_broken_by_the_next_run(tmp_path: Path) -> None:
    marker = tmp_path / "imports.txt"
    env = _environment(tmp_path, {"matsim/plugins/exits.py": f'''
        import os
        with open({str(marker)!r}, "a") as stream:
            stream.write("imported\\n")
        os._exit(7)
        '''})
    first = _listing(env)
    assert first.returncode == 7  # nothing can survive os._exit() in the process itself
    # Another run, importing other plugin modules, leaves the dead run's marker alone.
    other = run_dropins("plugins", "cache", "--rebuild", env=env)
    assert other.returncode == 0, other.stderr
    # The process may have been killed for other reasons: the module is tried once more.
    assert _listing(env).returncode == 7
    exits = tmp_path / "dev/matsim/plugins/exits.py"
    reason = f"{exits}: the last 2 imports of matsim.plugins.exits ended (or were killed)"
    for _ in range(2):
        result = _listing(env)
        assert result.returncode == 0, result.stderr
        assert f"exits: broken: {reason}" in result.stdout.splitlines()
        assert "alpha" in result.stdout
    assert marker.read_text() == "imported\n" * 2  # never imported again
    assert reason in run_dropins("plugins", "why", "exits", "-p", "matsim.plugins",
                                 env=env).stdout
    # once the file changes, it is tried again
    exits.write_text(material_module("fixed"))
    fixed = _listing(env)
    assert fixed.returncode == 0 and "broken" not in fixed.stdout, fixed.stdout
    assert not list((tmp_path / "xdg").rglob("importing-*"))  # clean exits leave no marker


@pytest.mark.skipif(os.name != "posix", reason="SIGINT delivery is POSIX")
@pytest.mark.parametrize("command", [["--help"], ["plugins", "list"]])
def test_real_ctrl_c_during_a_plugin_import_still_interrupts(tmp_path: Path,
                                                             command: list[str]) -> None:
    started = tmp_path / "started"
    dev = write_tree(tmp_path / "dev", {"dropins/plugins/slowpoke.py": f'''
        import pathlib, time
        pathlib.Path({str(started)!r}).write_text("yes")
        time.sleep(60)
        '''})
    env = clean_env({"PYTHONPATH": str(dev), "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    child = subprocess.Popen([sys.executable, "-m", "dropins", *command], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the plugin module was never imported"
        child.send_signal(signal.SIGINT)
        _out, err = child.communicate(timeout=20)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 130, err
    assert err.strip() == "dropins: interrupted"


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_a_kill_during_a_slow_import_does_not_make_the_module_broken(tmp_path: Path) -> None:
    slow_flag, started = tmp_path / "slow", tmp_path / "started"
    slow_flag.write_text("yes")
    env = _environment(tmp_path, {"matsim/plugins/slow.py": (
        "import pathlib, time\n"
        f"if pathlib.Path({str(slow_flag)!r}).exists():\n"
        f"    pathlib.Path({str(started)!r}).write_text('yes')\n"
        "    time.sleep(60)\n") + material_module("slow")})
    command = [sys.executable, "-m", "dropins", "plugins", "list", "-p", "matsim.plugins"]
    child = subprocess.Popen(command, env=clean_env(env), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the plugin module was never imported"
    finally:
        child.kill()  # SIGKILL: what timeout -s KILL, the OOM killer or systemd do
        child.wait()
    slow_flag.unlink()
    for _ in range(2):
        result = _listing(env)
        assert result.returncode == 0, result.stderr
        assert "broken" not in result.stdout, result.stdout
        assert any(line.split()[:5] == ["slow", "IMaterial", "directory", "-", "ok"]
                   for line in result.stdout.splitlines()), result.stdout


def test_a_marker_for_a_file_that_changed_or_vanished_is_removed(tmp_path: Path) -> None:
    env = _environment(tmp_path, {"matsim/plugins/exits.py": "import os\nos._exit(7)\n",
                                  "matsim/plugins/gone.py": "import os\nos._exit(7)\n"})
    assert _listing(env).returncode == 7  # ends importing exits.py, the first in order
    exits = tmp_path / "dev/matsim/plugins/exits.py"
    exits.unlink()
    assert _listing(env).returncode == 7  # now ends importing gone.py
    (tmp_path / "dev/matsim/plugins/gone.py").write_text(material_module("fixed"))
    for name, text in (("number", "7"), ("cut", '["matsim.plugins.gone", '), ("old", "[1, 2]")):
        (tmp_path / f"xdg/dropins/importing-{name}").write_text(text)  # foreign or damaged
    fixed = _listing(env)
    assert fixed.returncode == 0 and "broken" not in fixed.stdout, fixed.stdout
    assert not list((tmp_path / "xdg").rglob("importing-*"))


def test_a_swallowed_ctrl_c_does_not_turn_a_later_keyboard_interrupt_real(
        tmp_path: Path) -> None:
    env = _environment(tmp_path, {
        "matsim/plugins/a_swallows.py": '''
            import os, signal, time
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            except KeyboardInterrupt:
                pass
            ''',
        "matsim/plugins/b_raises.py": "raise KeyboardInterrupt\n"})
    result = _listing(env)
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("b_raises: broken: ") and line.endswith("KeyboardInterrupt")
               for line in result.stdout.splitlines()), result.stdout
