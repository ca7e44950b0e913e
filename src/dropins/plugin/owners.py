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


#: the distributions last seen (their identity); what each of those already read installed:
#: metadata folder -> (installed files (real paths), editable roots (real paths)); and their
#: top-level names read so far: metadata folder -> names (None: not known)
_index: tuple[object, dict[str, tuple[set[str], list[str]]],
              dict[str, list[str] | None]] | None = None


def distribution_of(path: str, module: str | None = None) -> tuple[str, str | None] | None:
    """``(name, version)`` of the installed distribution that provides the file ``path`` (of
    ``module``, if known): the one whose RECORD lists it, else the one whose editable root
    holding it is the deepest.

    Only distributions that may hold ``module``'s top-level package are read (see
    ``_top_level_names``): a RECORD costs a file read and a set of paths, and a site-packages
    folder holds hundreds of them.
    """
    target = os.path.realpath(path)
    top = None if module is None else module.partition(".")[0]
    best: tuple[int, str] | None = None
    for folder, (files, roots) in _installed(top):
        if target in files:
            return read_metadata(folder)
        for root in roots:
            if target.startswith(os.path.join(root, "")) and (best is None
                                                              or len(root) > best[0]):
                best = (len(root), folder)
    return None if best is None else read_metadata(best[1])


def _installed(top: str | None) -> list[tuple[str, tuple[set[str], list[str]]]]:
    """What each distribution on ``sys.path`` that may provide the top-level package ``top``
    (any, for None) installed.  Each RECORD is read once while the set of distributions (and
    their entry_points.txt) stays the same: a first run scanning many extensions reads it
    once."""
    global _index
    distributions, _places = find_distributions()
    identity = tuple((folder, str(key)) for folder, _normalized, key in distributions)
    if _index is None or _index[0] != identity:
        _index = (identity, {}, {})
    _identity, known, tops = _index
    found = []
    for folder, _name, _key in distributions:
        if top is not None:
            if folder not in tops:
                tops[folder] = _top_level_names(folder)
            names = tops[folder]
            if names and top not in names:
                continue
        if folder not in known:
            known[folder] = _read_record(folder)
        found.append((folder, known[folder]))
    return found


def _top_level_names(folder: str) -> list[str] | None:
    """The top-level packages the distribution whose metadata is ``folder`` installs, from its
    ``top_level.txt``; None when it has none (only setuptools writes one; its editable
    installs too), so it may install anything."""
    try:
        with open(os.path.join(folder, "top_level.txt"), encoding="utf-8",
                  errors="replace") as stream:
            return stream.read(1 << 16).split() or None
    except OSError:
        return None


def _read_record(folder: str) -> tuple[set[str], list[str]]:
    """``(installed files, editable roots)`` from ``folder``/RECORD, whose paths are relative
    to the site directory holding ``folder``."""
    site = os.path.realpath(os.path.dirname(folder))
    try:
        with open(os.path.join(folder, "RECORD"), encoding="utf-8", errors="replace") as stream:
            files = [line.partition(",")[0] for line in stream]
    except OSError:
        return set(), []
    installed = {os.path.normpath(os.path.join(site, name)) for name in files if name}
    roots = [os.path.realpath(root) for root in _editable_roots(site, files)]
    return installed, roots


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
