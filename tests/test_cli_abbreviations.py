"""No option of any command may be abbreviated: ``--ws x`` must not be read as ``--wsgi x``.

One test walks every command that ``dropins --help`` lists (service makers and built-in
commands, and the actions of ``dropins plugins``), reads each one's long options from its own
``--help``, and passes the shortest unambiguous abbreviation of every one of them at once: all
must be reported as unrecognized, with exit status 2.  Were abbreviations allowed, the first
one would be taken for its option instead (consuming a value, printing help, or starting).
"""

from __future__ import annotations

import re

from conftest import run_dropins

#: what a command needs besides its options for argparse to get as far as unknown options
_REQUIRED = {
    "dl-agent": ["get", "x"],
    "dl-serve": ["--config", "x.yaml"],
    "dns": ["--zone", "example.org=x.zone"],
    "mail": ["--maildir", "mail"],
    "nntp": ["--groups", "news"],
    "config": ["check", "app.toml"],
    "passwd": ["users.txt", "alice"],
    "plugins": ["check"],
    "plugins why": ["someplugin"],
    "portforward": ["--to", "127.0.0.1:9"],
    "reload": ["--pidfile", "missing.pid"],
    "telnet": ["--password", "x"],
    "stop": ["--pidfile", "missing.pid"],
}
_LONG_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _commands() -> list[str]:
    """Every command listed by ``dropins --help``, plus each ``dropins plugins`` action."""
    result = run_dropins("--help")
    assert result.returncode == 0, result.stderr
    commands = re.findall(r"^  ([a-z][\w-]*)\s", result.stdout.split("commands", 1)[1], re.M)
    plugins_help = run_dropins("plugins", "--help").stdout
    actions = re.findall(r"^    ([a-z]+)\s", plugins_help, re.M)
    assert {"web", "echo", "passwd", "plugins", "stop"} <= set(commands)
    assert {"list", "why", "check", "cache"} <= set(actions)
    return commands + [f"plugins {action}" for action in actions]


def _abbreviations(options: set[str]) -> list[str]:
    """The shortest prefix of each option that names no other one (if it has a shorter one)."""
    found = []
    for option in sorted(options):
        for length in range(3, len(option)):
            prefix = option[:length]
            if not any(other.startswith(prefix) for other in options - {option}):
                found.append(prefix)
                break
    return found


def test_no_command_accepts_an_abbreviated_option(tmp_path: object) -> None:
    cases = [("", "--help")] + [(command, f"{command} --help") for command in _commands()]
    checked = 0
    for command, help_args in cases:
        words = command.split()
        help_text = run_dropins(*help_args.split()).stdout
        usage_and_options = help_text.split("options:", 1)[-1]
        if command == "":  # the runner's own options, before any command
            usage_and_options = help_text.split("commands (service makers)", 1)[0]
        options = set(_LONG_OPTION.findall(usage_and_options)) - set(_REQUIRED.get(command, []))
        abbreviations = _abbreviations(options)
        assert abbreviations, f"no option to abbreviate found for {command!r}:\n{help_text}"
        if command == "":
            result = run_dropins(*abbreviations, "echo")
        else:
            result = run_dropins(*words, *abbreviations, *_REQUIRED.get(command, []))
        assert result.returncode == 2, (command, abbreviations, result.stdout, result.stderr)
        message = result.stderr.strip()
        assert len(message.splitlines()) == 1, message
        assert f"unrecognized arguments: {' '.join(abbreviations)}" in message, message
        checked += len(abbreviations)
    assert checked >= 40  # every web option alone is ~20
