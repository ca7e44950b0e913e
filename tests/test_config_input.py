"""Hostile or odd application files: not a regular file, deep nesting, odd keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _runner_helpers import Dropins, assert_no_traceback
from conftest import run_dropins


def _refused(tmp_path: Path, name: str, expected: str, *extra: str) -> None:
    """``-c`` and ``config dump`` exit 2, ``config check`` 1, each with the one-line error."""
    for args, code, prefix in ((("-c", name, *extra), 2, "dropins: error: "),
                               (("config", "dump", name, *extra), 2, ""),
                               (("config", "check", name, *extra), 1, "")):
        result = run_dropins(*args, cwd=tmp_path, timeout=30)
        assert result.returncode == code, (args, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(prefix) and expected in lines[0], \
            (args, lines)
        assert_no_traceback(result.stderr)


def test_a_fifo_or_directory_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "f.toml")
    (tmp_path / "d.toml").mkdir()
    _refused(tmp_path, "f.toml", "f.toml: is not a regular file; give the path of a .toml")
    _refused(tmp_path, "d.toml", "d.toml: is a directory; give the path of a .toml")


@pytest.mark.parametrize("name, text", [("deep.toml", "a = " + "[" * 5000 + "\n"),
                                        ("deep.yaml", "a: " + "[" * 5000 + "\n")])
def test_deep_nesting_is_refused(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    _refused(tmp_path, name, f"{name}: nested too deeply")


def test_deeply_nested_set_value_is_refused(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text('[services.e]\ncommand = "echo"\n')
    _refused(tmp_path, "app.toml", "--set services.e.listen: the value is nested too deeply",
             "--set", "services.e.listen=" + "[" * 3000)


@pytest.mark.parametrize("text, expected", [
    ("services: {1: {command: echo}}\n", "k.yaml:1: keys must be strings; quote '1'"),
    ("services:\n  a: {command: echo, 2: x}\n", "k.yaml:2: keys must be strings; quote '2'"),
    ("runner: {3: x}\nservices: {a: {command: echo}}\n", "k.yaml:1: keys must be strings"),
    ("services: {a: {command: echo}}\n1: x\n", "k.yaml:2: keys must be strings; quote '1'"),
    ("services: {a: {command: echo, listen: [{5: x}]}}\n", "k.yaml:1: keys must be strings"),
    ("services:\n  a: {command: echo}\n  a: {command: web}\n",
     "k.yaml:3: services.a is given twice; keep one"),
])
def test_yaml_keys_must_be_unique_strings(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "k.yaml").write_text(text)
    _refused(tmp_path, "k.yaml", expected)


@pytest.mark.parametrize("text, expected", [
    ("services = {}\n", "app.toml:1: services: is empty; add at least one [services.NAME]"),
    ('[services.a]\ncommand = "echo"\nlisten = "tcp:${PORT"\n',
     "app.toml:3: services.a.listen: '${' at character 5 starts no ${NAME} or "
     "${NAME:-default} (unclosed or not a name); write $${ for a literal ${"),
    ('[services.a]\ncommand = "echo"\nlisten = ["tcp:0", "tcp:${1:-0}"]\n',
     "app.toml:3: services.a.listen: '${' at character 5 starts no ${NAME}"),
])
def test_more_bad_files(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "app.toml").write_text(text)
    _refused(tmp_path, "app.toml", expected)


def test_a_bad_reference_does_not_echo_the_rest_of_the_value(tmp_path: Path) -> None:
    """The value may be a secret (an --auth string): the error quotes only a little of it."""
    (tmp_path / "app.toml").write_text(
        '[services.a]\ncommand = "echo"\nlisten = "tcp:0"\n'
        'auth = "memory:alice:${ s3cr3t-passw0rd"\n')
    result = run_dropins("config", "check", "app.toml", cwd=tmp_path)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "services.a.auth: '${' at character 14 starts no ${NAME}" in output
    assert "s3cr3t" not in output


def test_set_reads_its_key_with_toml_key_rules(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text('[services.e]\ncommand = "echo"\n')
    result = run_dropins("config", "dump", "app.toml", "--set", 'services."a.b".command=echo',
                         "--set", "services.'x=y'.command=echo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '[services."a.b"]\ncommand = "echo"' in result.stdout
    assert '[services."x=y"]\ncommand = "echo"' in result.stdout
    assert "[services.a]" not in result.stdout


def test_memory_auth_from_a_file_does_not_warn_about_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text('[services.w]\ncommand = "web"\npath = "."\n'
                                       'auth = "memory:alice:secret"\n')
    from_file = run_dropins("config", "check", "app.toml", cwd=tmp_path)
    assert from_file.returncode == 0, from_file.stderr
    assert "command line" not in from_file.stderr
    with Dropins("web", "--path", ".", "--auth", "memory:alice:secret", "--listen",
                 "tcp:0:interface=127.0.0.1", cwd=tmp_path) as process:  # where it is true
        process.wait_for_line("--auth memory: puts passwords on the command line")
        process.wait_for_line("ready: ")
        assert process.stop() == 0
