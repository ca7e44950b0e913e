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


#: the distributions last indexed, and what each installed: ``(identity, [(metadata folder,
#: installed files (real paths), editable roots (real paths))])``
_index: tuple[object, list[tuple[str, set[str], list[str]]]] | None = None


def distribution_of(path: str) -> tuple[str, str | None] | None:
    """``(name, version)`` of the installed distribution that provides the file ``path``: the
    one whose RECORD lists it, else the one whose editable root holding it is the deepest."""
    target = os.path.realpath(path)
    best: tuple[int, str] | None = None
    for folder, files, roots in _installed():
        if target in files:
            return read_metadata(folder)
        for root in roots:
            if target.startswith(os.path.join(root, "")) and (best is None
                                                              or len(root) > best[0]):
                best = (len(root), folder)
    return None if best is None else read_metadata(best[1])


def _installed() -> list[tuple[str, set[str], list[str]]]:
    """What every distribution on ``sys.path`` installed, read again only when the set of
    distributions (or one's entry_points.txt) changed: a first run scanning many extensions
    reads each RECORD once."""
    global _index
    distributions, _places = find_distributions()
    identity = tuple((folder, str(key)) for folder, _normalized, key in distributions)
    if _index is None or _index[0] != identity:
        _index = (identity, [_read_record(folder) for folder, _name, _key in distributions])
    return _index[1]


def _read_record(folder: str) -> tuple[str, set[str], list[str]]:
    """``(folder, installed files, editable roots)`` from ``folder``/RECORD, whose paths are
    relative to the site directory holding ``folder``."""
    site = os.path.realpath(os.path.dirname(folder))
    try:
        with open(os.path.join(folder, "RECORD"), encoding="utf-8", errors="replace") as stream:
            files = [line.partition(",")[0] for line in stream]
    except OSError:
        return folder, set(), []
    installed = {os.path.normpath(os.path.join(site, name)) for name in files if name}
    roots = [os.path.realpath(root) for root in _editable_roots(site, files)]
    return folder, installed, roots


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
