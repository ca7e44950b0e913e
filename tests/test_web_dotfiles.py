"""Dotfiles (``.git``, ``.env``, ``.htpasswd``) are neither served nor listed unless allowed.

``--path`` defaults to the current folder, which is usually a checkout: ``/.git/config`` must
be a 404 exactly like a missing file, however the path is spelled, while ``/.well-known/`` (RFC
8615) stays public.  ``--dotfiles allow`` serves and lists them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from _web_helpers import WebProcess
from conftest import run_dropins, write_tree

HIDDEN = [
    "/.git/config", "/.git", "/.git/", "/%2egit/config", "/%2Egit/config", "/.%67it/config",
    "/.env", "/%2eenv", "/sub/.htpasswd", "/sub/%2ehtpasswd", "/a/.git/config",
    "/./.env", "//.env", "/sub//.htpasswd", "/.well-known/.secret", "/sub/.well-known/x.txt",
    "/.git/?x=1",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("dotsite"), {
        "visible.txt": "visible\n",
        ".env": "SECRET_KEY=hunter2\n",
        ".git/config": "[core]\n",
        "a/.git/config": "[core] nested\n",
        "sub/page.txt": "page\n",
        "sub/.htpasswd": "alice:$hash\n",
        "sub/.well-known/x.txt": "not at the root\n",
        ".well-known/security.txt": "Contact: mailto:security@example.com\n",
        ".well-known/.secret": "hidden even here\n",
    })


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[WebProcess]:
    with WebProcess(["--path", str(site)]) as process:
        yield process


def listed_names(body: bytes) -> set[str]:
    return set(re.findall(r'<a href="([^"]+)">', body.decode()))


@pytest.mark.parametrize("target", HIDDEN)
def test_dotfiles_are_404_like_missing_files(server: WebProcess, target: str) -> None:
    missing = server.get("/no-such-file")
    response = server.get(target)
    assert missing.status == 404
    assert (response.status, response.body) == (missing.status, missing.body)
    assert b"core" not in response.body and b"hunter2" not in response.body


def test_well_known_is_served(server: WebProcess) -> None:
    response = server.get("/.well-known/security.txt")
    assert response.status == 200
    assert response.body.startswith(b"Contact:")
    assert server.get("/%2ewell-known/security.txt").status == 200


def test_listings_leave_dotfiles_out(server: WebProcess) -> None:
    root = server.get("/")
    assert root.status == 200
    assert listed_names(root.body) == {"visible.txt", "a/", "sub/", ".well-known/"}
    assert listed_names(server.get("/sub/").body) == {"../", "page.txt"}
    assert listed_names(server.get("/a/").body) == {"../"}
    assert listed_names(server.get("/.well-known/").body) == {"../", "security.txt"}


def test_dotfiles_allow_serves_and_lists_them(site: Path) -> None:
    with WebProcess(["--path", str(site), "--dotfiles", "allow"]) as server:
        assert server.get("/.env").body == b"SECRET_KEY=hunter2\n"
        assert server.get("/%2egit/config").body == b"[core]\n"
        assert server.get("/sub/.htpasswd").status == 200
        assert {".env", ".git/"} <= listed_names(server.get("/").body)
        assert ".htpasswd" in listed_names(server.get("/sub/").body)


def test_dotfiles_bad_value_is_a_usage_error(site: Path) -> None:
    result = run_dropins("web", "--path", str(site), "--dotfiles", "maybe")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "--dotfiles" in result.stderr and "allow" in result.stderr
