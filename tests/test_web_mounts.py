"""``dropins web --static PREFIX=DIR``: folders, an application and proxies on one server.

The prefix routes share one table with ``--proxy``, so the longest prefix wins whatever
serves it; a mounted folder is served like ``--path``'s (confinement, dotfiles, listings,
redirects written under its prefix).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from _proxy_apps import BACKEND_APP, FRONT_APP
from _web_helpers import WebProcess
from conftest import run_dropins, write_tree


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mounts")
    write_tree(root, {"front.py": FRONT_APP, "back.py": BACKEND_APP,
                      "site/assets/app.css": "body {}\n",
                      "site/assets/img/logo.svg": "<svg/>\n",
                      "site/assets/.env": "SECRET=1\n",
                      "site/private.txt": "not mounted\n",
                      "docs/index.html": "<h1>docs</h1>\n",
                      "docs/guide/intro.txt": "the guide\n"})
    (root / "site" / "assets" / "outside").symlink_to(root / "site" / "private.txt")
    return root


@pytest.fixture(scope="module")
def backend(project: Path) -> Iterator[WebProcess]:
    with WebProcess(["--asgi", "back:app"], cwd=project) as server:
        yield server


@pytest.fixture(scope="module")
def server(project: Path, backend: WebProcess) -> Iterator[WebProcess]:
    """A WSGI application at /, two folders and a proxy beside it."""
    with WebProcess(["--wsgi", "front:app",
                     "--static", "/assets=site/assets",
                     "--proxy", f"/api=http://127.0.0.1:{backend.port}/v1",
                     "--static", "/api/docs/=docs"], cwd=project) as web:
        yield web


def test_files_application_and_proxy_share_one_server(server: WebProcess) -> None:
    css = server.get("/assets/app.css")
    assert (css.status, css.body) == (200, b"body {}\n")
    assert server.get("/assets/img/logo.svg").body == b"<svg/>\n"
    front = server.get("/shop/cart")
    assert (front.status, front.body) == (200, b"front /shop/cart")
    proxied = server.get("/api/items")
    assert proxied.status == 200
    assert json.loads(proxied.body)["path"] == "/v1/items"


def test_longest_prefix_wins_across_kinds(server: WebProcess) -> None:
    # /api goes to the backend, but /api/docs is a folder mounted inside it
    assert server.get("/api/docs/guide/intro.txt").body == b"the guide\n"
    assert server.get("/api/docs/").body == b"<h1>docs</h1>\n"
    # a prefix is a whole path segment: /assetsx belongs to the application
    assert server.get("/assetsx/app.css").body == b"front /assetsx/app.css"


def test_a_mount_redirects_and_lists_under_its_prefix(server: WebProcess) -> None:
    bare = server.get("/assets?v=1")
    assert bare.status == 301
    assert bare.headers["location"] == "/assets/?v=1"
    folder = server.get("/assets/img")
    assert folder.status == 301
    assert folder.headers["location"] == "/assets/img/"
    listing = server.get("/assets/")
    assert listing.status == 200
    assert b'href="img/"' in listing.body and b'href="app.css"' in listing.body
    assert b"outside" not in listing.body and b".env" not in listing.body


def test_a_mount_is_confined_like_path(server: WebProcess) -> None:
    assert server.get("/assets/missing.css").status == 404
    assert server.get("/assets/.env").status == 404  # dotfiles denied by default
    assert server.get("/assets/outside").status == 404  # a symlink out of the folder
    assert server.get("/assets/%2e%2e/private.txt").status in (400, 404)
    assert b"not mounted" not in server.get("/assets/../private.txt").body


@pytest.mark.parametrize(("args", "message"), [
    (["--static", "assets"], "is not PREFIX=DIR"),
    (["--static", "/=site"], "the folder at / is --path"),
    (["--static", "/a b=site"], "the prefix must be a path"),
    (["--static", "/x=nowhere"], "'nowhere' does not exist"),
    (["--static", "/x=front.py"], "'front.py' is not a folder"),
    (["--static", "/x=site", "--static", "/x/=docs"], "the prefix /x is given twice"),
    (["--static", "/x=site", "--proxy", "/x=http://127.0.0.1:9"], "the prefix /x is given"),
    (["--path", "site", "--wsgi", "front:app"], "--static PREFIX=DIR"),
])
def test_bad_mounts_are_one_line_usage_errors(project: Path, args: list[str],
                                              message: str) -> None:
    result = run_dropins("web", *args, cwd=project)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_saved_application_keeps_the_mounts(project: Path, tmp_path: Path) -> None:
    saved = tmp_path / "shop.toml"
    result = run_dropins("--save", str(saved), "web", "--wsgi", "front:app",
                         "--static", f"/assets={project / 'site' / 'assets'}",
                         "--static", f"/docs={project / 'docs'}", cwd=project)
    assert result.returncode == 0, result.stderr
    service = next(iter(tomllib.loads(saved.read_text())["services"].values()))
    assert service["static"] == [f"/assets={project / 'site' / 'assets'}",
                                 f"/docs={project / 'docs'}"]
