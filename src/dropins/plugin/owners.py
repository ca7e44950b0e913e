"""Which installed distribution a file belongs to: the DISTRIBUTION of a namespace extension.

An entry point names its distribution; a namespace extension (``app.extensions.jitter``) is just
a folder, which any distribution may have installed.  It belongs to the distribution whose
``RECORD`` lists its file (a regular install), or lists the ``.pth`` file or setuptools editable
finder that puts a folder holding the file on the import path (an editable install).  Asked
only when an extension is scanned (a cache miss); the answer is cached with its entry.
"""

from __future__ import annotations

import os

from dropins.plugin.entrypoints import find_distributions, read_metadata

__all__ = ["distribution_of"]


def distribution_of(path: str) -> tuple[str, str | None] | None:
    """``(name, version)`` of the installed distribution that provides the file ``path``."""
    target = os.path.realpath(path)
    distributions, _places = find_distributions()
    for folder, _normalized, _key in distributions:
        if _recorded(folder, target):
            return read_metadata(folder)
    return None


def _recorded(folder: str, target: str) -> bool:
    """Whether the distribution of metadata ``folder`` installed ``target``: its RECORD lists
    it, or lists the ``.pth`` file or editable finder that makes a folder holding it
    importable (an editable install)."""
    site = os.path.realpath(os.path.dirname(folder))
    try:
        with open(os.path.join(folder, "RECORD"), encoding="utf-8", errors="replace") as stream:
            files = [line.partition(",")[0] for line in stream]
    except OSError:
        return False
    if target.startswith(os.path.join(site, "")) \
            and os.path.relpath(target, site).replace(os.sep, "/") in files:
        return True
    return any(target.startswith(os.path.join(os.path.realpath(root), ""))
               for root in _editable_roots(site, files))


def _editable_roots(site: str, files: list[str]) -> list[str]:
    """The folders an editable install makes importable: the directory lines of its ``.pth``
    files, and the package folders of a setuptools editable finder's ``MAPPING``."""
    roots: list[str] = []
    for name in files:
        if "/" in name or not name.endswith((".pth", "_finder.py")):
            continue
        try:
            with open(os.path.join(site, name), encoding="utf-8", errors="replace") as stream:
                text = stream.read(1 << 20)
        except OSError:
            continue
        if name.endswith(".pth"):
            roots += [os.path.join(site, line.strip()) for line in text.splitlines()
                      if line.strip() and not line.startswith(("#", "import ", "import\t"))]
        else:
            roots += _finder_mapping(text)
    return roots


def _finder_mapping(source: str) -> list[str]:
    """The paths of the ``MAPPING = {...}`` literal in a setuptools editable finder."""
    import ast

    for line in source.splitlines():
        if line.startswith("MAPPING") and "=" in line:
            try:
                mapping = ast.literal_eval(line.partition("=")[2].strip())
            except (ValueError, SyntaxError):
                return []
            if isinstance(mapping, dict):
                return [path for path in mapping.values() if isinstance(path, str)]
    return []
