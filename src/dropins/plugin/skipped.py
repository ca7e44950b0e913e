"""Files that discovery passes over on purpose, and why: the answers of ``dropins plugins why``.

Discovery skips, without a word, a module whose file name is not an identifier
(``my-plugin.py`` cannot be imported) and a folder named like the plugin package that has an
``__init__.py`` (a rival copy of the package, not a development folder, see
``plugin_package_paths``).  Saying so on every listing would be noise; when someone asks why a
plugin is missing, these are the likely answers.  Only used by that command, never on a listing.
"""

from __future__ import annotations

import ast
import os
import re
import sys

from dropins.plugin.cache import read_regular_file
from dropins.plugin.discovery import resolve_package

__all__ = ["Skipped", "skipped_files"]

#: the largest skipped file searched for the name asked about
_READ_LIMIT = 1 << 20


class Skipped:
    """One skipped file: its ``path``, the ``reason`` (one line saying how to fix it) and the
    ``stem`` it would be imported under."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        self.stem = os.path.splitext(os.path.basename(path))[0]

    def mentions(self, name: str) -> bool:
        """Whether ``name`` is this file's name or a plugin it would define: a name it binds at
        module level, or a string it assigns to ``name`` (``name = "web"`` in a class)."""
        if name in (self.stem, os.path.basename(self.path), _identifier(self.stem)):
            return True
        try:  # a regular file only: a FIFO named like a module must not hang the answer
            source = read_regular_file(self.path, _READ_LIMIT)
        except OSError:
            return False
        return name in _defined_names(source)


def _defined_names(source: bytes) -> set[str]:
    """The names a module's ``source`` binds at module level (also inside ``if``/``try``/
    ``with`` blocks there), plus the strings it assigns to a variable or attribute ``name``
    anywhere; none if it does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    found: set[str] = set()
    pending: list[ast.AST] = list(tree.body)
    while pending:
        statement = pending.pop()
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(statement.name)
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            found.update((alias.asname or alias.name).partition(".")[0]
                         for alias in statement.names)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) \
                else [statement.target]
            found.update(node.id for target in targets for node in ast.walk(target)
                         if isinstance(node, ast.Name))
        elif isinstance(statement, (ast.If, ast.Try, ast.With, ast.ExceptHandler)):
            for block in ("body", "orelse", "finalbody", "handlers"):  # still module level
                pending += getattr(statement, block, [])
    for node in ast.walk(tree):  # name = "web": the plugin's own name
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str) \
                and any(_target_name(target) == "name" for target in node.targets):
            found.add(node.value.value)
    return found


def _target_name(target: ast.expr) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    return target.attr if isinstance(target, ast.Attribute) else None


def _identifier(stem: str) -> str:
    """``my-plugin`` -> ``my_plugin``: the nearest importable module name."""
    name = re.sub(r"\W", "_", stem)
    return f"_{name}" if name[:1].isdigit() else name


def _module_files(folder: str) -> list[str]:
    try:
        return sorted(name for name in os.listdir(folder) if name.endswith(".py"))
    except OSError:
        return []


def skipped_files(package: str) -> list[Skipped]:
    """The files of plugin package ``package`` that discovery skips, each with its reason."""
    directories, _namespace = resolve_package(package)
    folders = [os.path.abspath(directory) for directory in directories]
    found: list[Skipped] = []
    for folder in folders:
        for name in _module_files(folder):
            stem = name[:-3]
            if not stem.isidentifier():
                found.append(Skipped(os.path.join(folder, name), (
                    f"{os.path.join(folder, name)}: {stem!r} is not a Python"
                    f" identifier, so it cannot be imported; rename it to"
                    f" {_identifier(stem)}.py")))
    parts = package.split(".")
    seen = set(folders)
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        folder = os.path.abspath(os.path.join(entry or os.curdir, *parts))
        if folder in seen or not os.path.isfile(os.path.join(folder, "__init__.py")):
            continue
        seen.add(folder)
        reason = (f"{folder} is not searched for plugins of {package}: it has an __init__.py,"
                  " so it is a rival copy of the package rather than a development folder;"
                  " remove its __init__.py")
        found += [Skipped(os.path.join(folder, name), reason)
                  for name in _module_files(folder) if name != "__init__.py"]
    return found
