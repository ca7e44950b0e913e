"""The service tree: start order, reverse stop order, roll-back on failure, settings lookup."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from zope.interface.verify import verifyObject

from _service_helpers import run
from conftest import clean_env
from dropins.service import (
    Application,
    IService,
    ListenError,
    MultiService,
    Service,
    ServiceStartError,
    StreamServerService,
)
from dropins.service.base import root_setting


class Recorder(Service):
    """A real service that writes what happens to it into a shared journal."""

    def __init__(self, name: str, journal: list[str], *, fail_start: bool = False,
                 fail_stop: bool = False) -> None:
        super().__init__(name)
        self.journal = journal
        self.fail_start = fail_start
        self.fail_stop = fail_stop

    def privileged_start(self) -> None:
        self.journal.append(f"privileged {self.name}")

    async def start(self) -> None:
        self.journal.append(f"start {self.name}")
        if self.fail_start:
            raise RuntimeError(f"{self.name} is broken")
        await super().start()

    async def stop(self) -> None:
        self.journal.append(f"stop {self.name}")
        await super().stop()
        if self.fail_stop:
            raise RuntimeError(f"{self.name} cannot stop")


def tree(journal: list[str], *specs: str, **flags: set[str]) -> Application:
    app = Application("app")
    for name in specs:
        Recorder(name, journal, fail_start=name in flags.get("fail_start", set()),
                 fail_stop=name in flags.get("fail_stop", set())).set_parent(app)
    return app


def test_services_provide_the_interface() -> None:
    for service in (Service(), MultiService(), Application()):
        assert verifyObject(IService, service)


def test_children_start_in_order_and_stop_in_reverse() -> None:
    journal: list[str] = []
    app = tree(journal, "a", "b", "c")
    app.privileged_start()
    run(app.start())
    assert app.running and all(child.running for child in app)
    run(app.stop())
    assert not app.running and not any(child.running for child in app)
    assert journal == ["privileged a", "privileged b", "privileged c",
                       "start a", "start b", "start c",
                       "stop c", "stop b", "stop a"]


def test_failed_start_stops_started_children_in_reverse_and_names_the_culprit() -> None:
    journal: list[str] = []
    app = tree(journal, "a", "b", "c", "d", fail_start={"c"})
    with pytest.raises(ServiceStartError) as caught:
        run(app.start())
    assert journal == ["start a", "start b", "start c", "stop b", "stop a"]
    assert str(caught.value) == "service 'c' failed to start: c is broken"
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert caught.value.service is app.get_service("c")
    assert not app.running and not any(child.running for child in app)


def test_nested_failure_is_reported_once_and_rolls_back_every_level() -> None:
    journal: list[str] = []
    app = Application("app")
    Recorder("first", journal).set_parent(app)
    inner = MultiService("inner")
    inner.set_parent(app)
    Recorder("ok", journal).set_parent(inner)
    Recorder("bad", journal, fail_start=True).set_parent(inner)
    with pytest.raises(ServiceStartError) as caught:
        run(app.start())
    assert str(caught.value) == "service 'bad' failed to start: bad is broken"
    assert journal == ["start first", "start ok", "start bad", "stop ok", "stop first"]


def test_listen_error_message_stays_verbatim(free_port: int) -> None:
    endpoint = f"tcp:{free_port}:interface=127.0.0.1"
    app = Application()
    first = StreamServerService(endpoint, lambda: None, name="first")
    first.set_parent(app)
    second = StreamServerService(endpoint, lambda: None, name="second")
    second.set_parent(app)
    with pytest.raises(ServiceStartError) as caught:
        app.privileged_start()
    assert str(caught.value) == (
        f"service 'second' failed to start: cannot listen on {endpoint}: address already in use")
    assert isinstance(caught.value.__cause__, ListenError)
    assert str(caught.value.__cause__) == f"cannot listen on {endpoint}: address already in use"
    run(first.stop())  # releases the socket bound by privileged_start


def test_a_failing_stop_is_logged_and_the_others_still_stop(
        caplog: pytest.LogCaptureFixture) -> None:
    journal: list[str] = []
    app = tree(journal, "a", "b", "c", fail_stop={"b"})
    run(app.start())
    with caplog.at_level(logging.ERROR, logger="dropins.service"):
        run(app.stop())
    assert journal[-3:] == ["stop c", "stop b", "stop a"]
    assert not app.get_service("a").running
    [record] = [r for r in caplog.records if r.name == "dropins.service"]
    assert "'b'" in record.getMessage() and record.exc_info is not None


def test_tree_editing() -> None:
    journal: list[str] = []
    parent = MultiService("parent")
    other = MultiService("other")
    child = Recorder("child", journal)
    child.set_parent(parent)
    assert child.parent is parent and list(parent) == [child]
    assert parent.get_service("child") is child
    with pytest.raises(ValueError, match="already has a child service named 'child'"):
        parent.add_service(Recorder("child", journal))
    child.set_parent(other)  # moving detaches from the old parent
    assert child.parent is other and list(parent) == [] and list(other) == [child]
    with pytest.raises(KeyError, match="no child service named 'child'"):
        parent.get_service("child")
    other.remove_service(child)
    assert child.parent is None
    with pytest.raises(ValueError, match="is not a child"):
        other.remove_service(child)
    with pytest.raises(ValueError, match="contain itself"):
        other.set_parent(other)
    other.set_parent(parent)
    with pytest.raises(ValueError, match="contain itself"):
        parent.set_parent(other)
    # unnamed services are never in conflict
    parent.add_service(Service())
    parent.add_service(Service())
    assert len(parent) == 3


def test_settings_are_found_on_the_root() -> None:
    app = Application(uid=1000, gid=100, shutdown_timeout=2.5)
    middle = MultiService("middle")
    middle.set_parent(app)
    leaf = Service("leaf")
    leaf.set_parent(middle)
    assert (app.uid, app.gid) == (1000, 100)
    assert root_setting(leaf, "shutdown_timeout") == 2.5
    assert root_setting(Service(), "shutdown_timeout", 7.0) == 7.0
    with pytest.raises(ValueError, match="shutdown_timeout"):
        Application(shutdown_timeout=-1)


def test_importing_the_service_package_stays_light() -> None:
    code = ("import sys, dropins.service, dropins.service.maker, dropins.service.interfaces; "
            "heavy = [m for m in ('asyncio', 'ssl', 'fcntl') if m in sys.modules]; "
            "print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_no_posix_only_module_is_imported_at_module_level() -> None:
    """Windows must import the service layer: POSIX-only modules are imported inside functions."""
    import ast
    from pathlib import Path

    import dropins.service

    posix_only = {"fcntl", "pwd", "grp", "resource", "syslog", "termios"}
    offenders = []
    for source in Path(dropins.service.__path__[0]).glob("*.py"):
        for node in ast.parse(source.read_text()).body:  # module level only
            if isinstance(node, ast.Import):
                names = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = {node.module.split(".")[0]}
            else:
                continue
            offenders += [f"{source.name}: {name}" for name in names & posix_only]
    assert offenders == []
