"""The HTML index of a folder.

Every name comes from the file system, so every name is untrusted: it is HTML-escaped for
display and percent-quoted (from its file-system bytes) for the link, so that a file called
``<script>.html`` or ``a"b`` or ``50%.txt`` shows and links correctly and runs nothing.
Symlinks that leave the served root are not listed unless symlinks may be followed, and
names the server would not serve (dotfiles, by default) are not listed either.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from urllib.parse import quote

from dropins.web.paths import is_inside
from dropins.web.precompressed import is_variant_of

__all__ = ["render_listing"]

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Index of {title}</title>
<style>body{{font-family:sans-serif;margin:2em}}td{{padding:0 1em 0 0}}
td.size{{text-align:right}}</style></head>
<body><h1>Index of {title}</h1>
<table>
<tr><th>Name</th><th>Size</th><th>Modified</th></tr>
{rows}
</table>
</body>
</html>
"""


def escape_html(text: str) -> str:
    """Text made safe inside HTML elements and quoted attributes (as html.escape does)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#x27;"))


def _row(href: str, label: str, size: str, modified: str) -> str:
    return (f'<tr><td><a href="{escape_html(href)}">{escape_html(label)}</a></td>'
            f'<td class="size">{size}</td><td>{modified}</td></tr>')


def render_listing(folder: str, url_path: str, root: str, follow_symlinks: bool,
                   shown: Callable[[str], bool] | None = None,
                   hide_variants: bool = False) -> bytes:
    """The listing page of ``folder`` (a resolved path) shown at ``url_path`` (decoded).

    ``shown(name)``, when given, says whether an entry may be listed at all; with
    ``hide_variants``, ``x.gz`` and ``x.br`` beside ``x`` are not listed (they are ``x``).
    """
    rows = []
    if url_path != "/":
        rows.append(_row("../", "../", "", ""))
    entries = []
    with os.scandir(folder) as iterator:
        found = list(iterator)
    names = {entry.name for entry in found} if hide_variants else set()
    for entry in found:
        if (shown is not None and not shown(entry.name)) or (
                hide_variants and is_variant_of(entry.name, names)):
            continue
        try:
            if entry.is_symlink() and not follow_symlinks and not is_inside(
                    os.path.realpath(entry.path), root):
                continue
            is_dir = entry.is_dir()
            stat = entry.stat()
        except OSError:
            continue  # vanished or unreadable: leave it out
        entries.append((not is_dir, entry.name, is_dir, stat.st_size, stat.st_mtime))
    entries.sort()
    for _, name, is_dir, size, mtime in entries:
        href = quote(os.fsencode(name)) + ("/" if is_dir else "")
        label = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        modified = time.strftime("%Y-%m-%d %H:%M", time.gmtime(mtime))
        rows.append(_row(href, label + ("/" if is_dir else ""), "" if is_dir else str(size),
                         modified))
    title = escape_html(url_path)
    return _PAGE.format(title=title, rows="\n".join(rows)).encode("utf-8")
