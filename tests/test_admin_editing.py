"""The admin's config editor (``dropins.admin.editing``): edits never overlap.

The reloader here stands for the runner's: its first reload is held until the test lets it go,
which a real reload of a real application cannot be made to do on cue.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from dropins.admin.editing import ConfigEditor, EditError

APP = '[services.echo]\ncommand = "echo"\nlisten = "tcp:0:interface=127.0.0.1"\n'


class HeldReloader:
    """Refuses the first reload once released; accepts the others at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls = 0
        self.config = None

    async def reload(self) -> tuple[bool, str]:
        self.calls += 1
        if self.calls == 1:
            await self.release.wait()
            return False, "refused: the test says no"
        return True, "restarted echo"


def test_an_apply_while_another_is_reloading_waits_for_it(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text(APP)
    first, second = APP.replace("tcp:0", "tcp:1"), APP.replace("tcp:0", "tcp:2")

    async def scenario() -> tuple[object, dict[str, object], str, str | None]:
        reloader = HeldReloader()
        editor = ConfigEditor(str(path), reloader, [])
        refused = asyncio.ensure_future(editor.apply(first, "alice"))
        while reloader.calls == 0:
            await asyncio.sleep(0)
        applied = asyncio.ensure_future(editor.apply(second, "bob"))
        for _ in range(20):
            await asyncio.sleep(0)
        during = path.read_text()
        reloader.release.set()
        outcome = await asyncio.wait_for(asyncio.gather(refused, applied,
                                                        return_exceptions=True), 10)
        return outcome[0], outcome[1], during, editor.previous  # type: ignore[return-value]

    error, applied, during, previous = asyncio.run(scenario())
    assert during == first  # bob's edit did not start while alice's reload ran
    assert isinstance(error, EditError) and error.status == 422
    assert applied["reload_ok"] is True
    assert path.read_text() == second and previous == APP
