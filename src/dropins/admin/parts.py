"""Putting the admin together for one process: its tree view, log ring and config editor."""

from __future__ import annotations

from typing import Any

__all__ = ["AdminParts", "make_admin"]


class AdminParts:
    """What the admin's API works on; the editor's reloader is set once the loop runs."""

    def __init__(self, tree: Any, ring: Any, editor: Any, workers: Any = None) -> None:
        self.tree = tree
        self.ring = ring
        self.editor = editor
        self.workers = workers


class _TreeConfig:
    """The running config as the reloader last applied it (for each service's command)."""

    def __init__(self, editor: Any, initial: Any) -> None:
        self.editor = editor
        self.initial = initial

    @property
    def services(self) -> dict[str, Any]:
        config = getattr(self.editor.reloader, "config", None) or self.initial
        return dict(getattr(config, "services", {}))


def make_admin(options: Any, application: Any, config: Any, config_path: str | None,
               supervisor: Any = None) -> Any:
    """The admin of a process (``supervisor``: of the workers of that supervisor)."""
    from dropins.admin.editing import ConfigEditor
    from dropins.admin.ring import take_ring
    from dropins.admin.server import AdminServer, check_admin_options, parse_roles
    from dropins.admin.tree import ServiceTree

    ring = take_ring()  # before the checkers: what they warn about is in the log view too
    checkers = check_admin_options(options)
    editor = ConfigEditor(config_path, None, list(options.set or ()))
    if supervisor is not None:
        from dropins.admin.workers import WorkersTree

        workers = WorkersTree(supervisor)
        parts = AdminParts(workers, ring, editor, workers.workers)
    else:
        tree = ServiceTree(application, _TreeConfig(editor, config))
        parts = AdminParts(tree, ring, editor)
    return AdminServer(options.admin, checkers, parse_roles(options.admin_role), parts)
