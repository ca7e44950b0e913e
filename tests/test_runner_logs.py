"""Log handlers and formats: JSON lines, reopening after logrotate's rename, bounded rotation."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dropins.runner.arguments import parse_runner_options
from dropins.runner.errors import RunnerError
from dropins.runner.logs import configure_logging, reopen_log_files


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def test_json_lines_parse() -> None:
    stream = io.StringIO()
    configure_logging(parse_runner_options(["--log-format", "json"], platform="posix"), stream)
    logging.getLogger("dropins.test").info("hello %s", "world")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("dropins.test").exception("it failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "hello world" and first["level"] == "info"
    assert first["logger"] == "dropins.test" and first["time"].endswith("Z")
    assert second["level"] == "error" and "ValueError: boom" in second["exception"]


def test_log_level_filters() -> None:
    stream = io.StringIO()
    configure_logging(parse_runner_options(["--log-level", "warning"], platform="posix"), stream)
    logging.getLogger("dropins.test").info("quiet")
    logging.getLogger("dropins.test").warning("loud")
    assert "quiet" not in stream.getvalue() and "WARNING dropins.test: loud" in stream.getvalue()


def test_reopen_after_rename(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    configure_logging(parse_runner_options(["--logfile", str(path)], platform="posix"))
    logging.getLogger("dropins.test").info("before rotation")
    path.rename(tmp_path / "app.log.1")
    reopen_log_files()
    logging.getLogger("dropins.test").info("after rotation")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "before rotation" in (tmp_path / "app.log.1").read_text()
    assert "after rotation" not in (tmp_path / "app.log.1").read_text()
    assert "after rotation" in path.read_text()


def test_rotation_keeps_a_bounded_number_of_files(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    configure_logging(parse_runner_options(["--logfile", str(path), "--log-max-bytes", "1k",
                                            "--log-backups", "2"], platform="posix"))
    for index in range(200):
        logging.getLogger("dropins.test").info("line %d %s", index, "x" * 60)
    names = sorted(item.name for item in tmp_path.iterdir())
    assert names == ["app.log", "app.log.1", "app.log.2"]
    assert all(item.stat().st_size <= 1024 for item in tmp_path.iterdir())
    assert "line 199" in path.read_text()
    reopen_log_files()  # the rotating handler is reopenable too
    logging.getLogger("dropins.test").info("still logging")
    assert "still logging" in path.read_text()


def test_unopenable_log_file_is_one_line(tmp_path: Path) -> None:
    options = parse_runner_options(["--logfile", str(tmp_path / "no" / "such" / "x.log")],
                                   platform="posix")
    with pytest.raises(RunnerError, match=r"cannot open log file .*x\.log: No such file"):
        configure_logging(options)


def test_syslog_handler_names_the_program() -> None:
    from logging.handlers import SysLogHandler

    handler = configure_logging(parse_runner_options(["--syslog"], platform="posix"))
    assert isinstance(handler, SysLogHandler)
    record = logging.LogRecord("dropins.test", logging.INFO, __file__, 1, "hi", None, None)
    assert re.fullmatch(r"dropins\[\d+\]: INFO dropins.test: hi", handler.format(record))


def test_failed_reopen_keeps_logging_to_the_old_file(tmp_path: Path,
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    """logrotate renamed the file but the new one cannot be created: nothing is lost, and the
    reason is logged once instead of a "Logging error" traceback for every later record."""
    path = tmp_path / "app.log"
    configure_logging(parse_runner_options(["--logfile", str(path)], platform="posix"))
    logging.getLogger("dropins.test").info("before rotation")
    path.rename(tmp_path / "app.log.1")
    path.mkdir()  # what stands at the log's name now cannot be opened as a file
    reopen_log_files()
    logging.getLogger("dropins.test").info("after the failed reopen")
    for handler in logging.getLogger().handlers:
        handler.flush()
    renamed = (tmp_path / "app.log.1").read_text()
    assert "before rotation" in renamed and "after the failed reopen" in renamed
    errors = [line for line in renamed.splitlines() if "cannot reopen log file" in line]
    assert len(errors) == 1 and f"{path}: Is a directory" in errors[0]
    assert "still logging to the renamed file" in errors[0]
    assert "Logging error" not in capfd.readouterr().err


def test_text_formatter_matches_the_stdlib_format_across_seconds() -> None:
    import logging

    from dropins.runner.logs import TEXT_FORMAT, TextFormatter

    reference, fast = logging.Formatter(TEXT_FORMAT), TextFormatter(TEXT_FORMAT)
    record = logging.LogRecord("dropins.web.access", logging.INFO, __file__, 0, "GET /", (), None)
    for created in (1_700_000_000.0, 1_700_000_000.999, 1_700_000_001.5, 1_700_000_000.25,
                    1_700_086_400.001):
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert fast.format(record) == reference.format(record)


def test_symlink_at_the_log_path_is_refused(tmp_path: Path) -> None:
    """A link planted in a log folder the service user owns must not make root append to the
    file it points to."""
    victim = tmp_path / "victim.conf"
    victim.write_text("precious\n")
    (tmp_path / "app.log").symlink_to(victim)
    options = parse_runner_options(["--logfile", str(tmp_path / "app.log")], platform="posix")
    with pytest.raises(RunnerError, match=r"cannot open log file .*app\.log: Too many levels"):
        configure_logging(options)
    assert victim.read_text() == "precious\n"


def test_failed_rotation_keeps_logging_to_the_current_file(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """The folder is writable but the rotation still fails (the backup's name is taken by a
    folder): the current file stays open, every line lands in it, one line says why."""
    path = tmp_path / "app.log"
    (tmp_path / "app.log.1").mkdir()
    (tmp_path / "app.log.1" / "keep").write_text("")
    configure_logging(parse_runner_options(["--logfile", str(path), "--log-max-bytes", "1k",
                                            "--log-backups", "1"], platform="posix"))
    for index in range(100):
        logging.getLogger("dropins.test").info("line %03d %s", index, "x" * 60)
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = path.read_text()
    assert all(f"line {index:03d} " in text for index in range(100))
    errors = [line for line in text.splitlines() if "log rotation is off" in line]
    assert len(errors) == 1 and f"cannot rotate {path}: " in errors[0]
    assert "Logging error" not in capfd.readouterr().err


def test_log_file_flushes_once_per_loop_iteration_and_at_once_outside(tmp_path) -> None:
    import asyncio
    import logging

    from dropins.runner.logs import ReopenableFileHandler

    path = tmp_path / "batched.log"
    handler = ReopenableFileHandler(str(path), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))

    def log(message: str) -> None:
        handler.handle(logging.makeLogRecord({"msg": message, "levelno": logging.INFO}))

    async def scenario() -> list[str]:
        seen = []
        log("one")
        log("two")
        seen.append(path.read_text())  # same iteration: still buffered
        await asyncio.sleep(0)
        seen.append(path.read_text())  # the next iteration flushed both
        log("three")
        handler.flush_now()
        seen.append(path.read_text())  # flush_now does not wait for the loop
        return seen

    try:
        assert asyncio.run(scenario()) == ["", "one\ntwo\n", "one\ntwo\nthree\n"]
        log("four")  # no running loop: written through at once
        assert path.read_text() == "one\ntwo\nthree\nfour\n"
    finally:
        handler.close()


FIFO = "a FIFO (named pipe), where writes block while nothing reads"
IN_THE_FOREGROUND = ("to log into a pipe, use --logfile - and redirect standard output, or use "
                     "--syslog")
WITH_DAEMON = "with --daemon, use --syslog, or --logfile /dev/null to discard the log"


@pytest.mark.parametrize(("kind", "daemon", "what", "advice"), [
    ("fifo", False, FIFO, IN_THE_FOREGROUND),
    ("fifo with a reader", False, FIFO, IN_THE_FOREGROUND),
    ("fifo", True, FIFO, WITH_DAEMON),
    ("socket", False, "a socket", IN_THE_FOREGROUND),
], ids=["fifo", "fifo-with-a-reader", "fifo-under-daemon", "socket"])
def test_log_file_that_can_hang_is_refused_without_hanging(
        tmp_path: Path, kind: str, daemon: bool, what: str, advice: str) -> None:
    """A FIFO used to block start-up forever in open(); the message says what the file is and
    what to use instead (``--logfile -`` is a usage error with --daemon)."""
    import socket

    from conftest import run_dropins

    path = tmp_path / "app.log"
    reader: int | None = None
    listener: socket.socket | None = None
    if kind == "socket":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
    else:
        os.mkfifo(path)
        if kind == "fifo with a reader":
            reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        result = run_dropins(*(["--daemon"] if daemon else []), "--logfile", str(path), "echo",
                             "--listen", "tcp:0:interface=127.0.0.1", cwd=tmp_path, timeout=30)
    finally:
        if reader is not None:
            os.close(reader)
        if listener is not None:
            listener.close()
    assert result.returncode == 1
    assert result.stderr == (f"dropins: error: refusing log file {path}: it is {what}; remove "
                             f"it or choose another --logfile ({advice})\n")


@pytest.mark.parametrize("rotation", [[], ["--log-max-bytes", "100"]])
def test_dev_null_is_a_log_file(rotation: list[str]) -> None:
    """twistd users write --logfile=/dev/null; it used to be refused as not a regular file.
    Size rotation never renames it."""
    configure_logging(parse_runner_options(["--logfile=/dev/null", *rotation],
                                           platform="posix"))
    for index in range(50):
        logging.getLogger("dropins.test").info("line %d %s", index, "x" * 60)
    assert Path("/dev/null").is_char_device() and not Path("/dev/null.1").exists()


def test_daemon_logs_to_dev_null(tmp_path: Path) -> None:
    from _runner_helpers import connect, recv_exactly
    from conftest import get_free_port, run_dropins

    port = get_free_port()
    started = run_dropins("--daemon", "--pidfile", "run.pid", "--logfile=/dev/null", "echo",
                          "--listen", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path,
                          timeout=30)
    try:
        assert (started.returncode, started.stderr) == (0, "")
        assert started.stdout.startswith("dropins: started pid ")
        with connect(f"tcp:127.0.0.1:{port}") as sock:
            sock.sendall(b"null\n")
            assert recv_exactly(sock, 5) == b"null\n"
    finally:
        stopped = run_dropins("stop", "--pidfile", "run.pid", cwd=tmp_path, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert not (tmp_path / "run.pid").exists()
