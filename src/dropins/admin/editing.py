"""The application file, edited from the admin: check, diff, apply (as a reload), rollback.

A proposed file is checked exactly as ``dropins config check`` would (every command's service
made, not started) from a temporary copy beside the real file, so relative paths mean the
same; the problems name the real file.  Applying writes the text as given (the operator's own
comments stay), atomically, keeps the previous text for a rollback (in memory and in
``FILE.previous``), and reloads as SIGHUP would; a reload that is refused puts the previous
file back, so the file on disk always says what runs.  ``set_values`` changes single keys
with tomlkit, which keeps the rest of the file, comments included, as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
import os
import stat
from typing import Any

__all__ = ["ConfigEditor", "EditError"]

log = logging.getLogger("dropins.admin")


class EditError(Exception):
    """A change that cannot be made: an HTTP status, a message and the problems found."""

    def __init__(self, status: int, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []


class ConfigEditor:
    """Edits the application file at ``path``, reloading through ``reloader``."""

    def __init__(self, path: str | None, reloader: Any, sets: list[str]) -> None:
        self.path = path
        self.reloader = reloader
        self.sets = sets
        self.previous: str | None = None
        #: one apply or rollback at a time: the second reads what the first left, and a
        #: refused first cannot restore its "before" over the second's file
        self._editing = asyncio.Lock()

    def _require_file(self) -> str:
        if self.path is None:
            raise EditError(409, "this application was not started with -c FILE: there is no "
                                 "configuration file to edit")
        return self.path

    def read(self) -> dict[str, Any]:
        path = self._require_file()
        with open(path, encoding="utf-8") as file:
            text = file.read()
        return {"path": path, "text": text, "rollback": self.previous is not None}

    def check(self, text: str) -> dict[str, Any]:
        """The problems of ``text`` and how it differs from the running file."""
        from dropins.config.reload import Plan
        from dropins.config.resolve import load_config
        from dropins.runner.config_app import config_context

        path = self._require_file()
        folder, name = os.path.split(path)
        suffix = os.path.splitext(name)[1]
        temporary = os.path.join(folder, f".{name}.admin-check{suffix}")
        try:
            with open(temporary, "w", encoding="utf-8") as file:
                file.write(text)
            config, problems = load_config(temporary, config_context(), self.sets,
                                           try_make=True)
        finally:
            try:
                os.unlink(temporary)
            except OSError:
                pass
        problems = [problem.replace(temporary, path) for problem in problems]
        current = self.read()["text"]
        diff = "".join(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                            f"{name} (running)", f"{name} (proposed)"))
        plan = None
        running = getattr(self.reloader, "config", None)
        if config is not None and not problems and running is not None:
            plan = Plan(running, config).summary()
        return {"ok": not problems, "problems": problems, "diff": diff, "plan": plan}

    async def apply(self, text: str, user: str) -> dict[str, Any]:
        async with self._editing:
            return await self._apply(text, user)

    async def rollback(self, user: str) -> dict[str, Any]:
        async with self._editing:
            return await self._rollback(user)

    async def _apply(self, text: str, user: str) -> dict[str, Any]:
        checked = self.check(text)
        if not checked["ok"]:
            raise EditError(422, "the configuration has problems; nothing was applied",
                            checked["problems"])
        current = self.read()["text"]
        outcome = await self._write_and_reload(text, current, user, "applied")
        self.previous = current
        self._write(f"{self.path}.previous", current, like=self.path)
        return {**checked, **outcome}

    async def _rollback(self, user: str) -> dict[str, Any]:
        if self.previous is None:
            raise EditError(409, "nothing to roll back: no configuration was applied from the "
                                 "admin since dropins started")
        current = self.read()["text"]
        outcome = await self._write_and_reload(self.previous, current, user, "rolled back")
        self.previous = None
        return outcome

    def set_values(self, text: str, values: dict[str, Any]) -> str:
        """``text`` with each dotted key of ``values`` set, comments and layout kept."""
        try:
            import tomlkit
            from tomlkit.exceptions import TOMLKitError
        except ImportError:
            raise EditError(501, "setting single keys needs tomlkit: pip install "
                                 "'dropins[admin]'")
        try:
            document = tomlkit.parse(text)
        except TOMLKitError as error:
            raise EditError(422, f"the file is not valid TOML: {error}")
        for dotted, value in values.items():
            keys = [key for key in str(dotted).split(".") if key]
            if not keys:
                raise EditError(400, f"invalid key {dotted!r}: give a dotted key, e.g. "
                                     "services.site.listen")
            table: Any = document
            for key in keys[:-1]:
                if key not in table:
                    table[key] = tomlkit.table()
                table = table[key]
                if not hasattr(table, "__setitem__"):
                    raise EditError(400, f"invalid key {dotted!r}: {key} is not a table")
            table[keys[-1]] = value
        return tomlkit.dumps(document)

    async def _write_and_reload(self, text: str, current: str, user: str,
                                verb: str) -> dict[str, Any]:
        path = self._require_file()
        self._write(path, text)
        ok, message = await self.reloader.reload()
        if not ok and message.startswith(("refused", "aborted")):
            self._write(path, current)  # nothing changed: the file says what runs
            log.warning("admin: %s's configuration was refused; %s restored", user, path)
            raise EditError(422, message, [message])
        log.info("admin: %s %s the configuration of %s: %s", user, verb, path, message)
        return {"applied": True, "reload": message, "reload_ok": ok}

    @staticmethod
    def _write(path: str, text: str, like: str | None = None) -> None:
        """Write ``text`` to ``path`` atomically (temp file, fsync, rename), with the
        permissions of ``like`` (or of ``path`` itself): a private file stays private."""
        try:
            mode = stat.S_IMODE(os.stat(like or path).st_mode)
        except OSError:
            mode = None
        temporary = f"{path}.{os.getpid()}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with open(descriptor, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            if mode is not None:
                os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
