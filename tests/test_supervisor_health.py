"""``--health``: /livez, /readyz through start-up, ready() hooks and shutdown; /metrics."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from _observe_helpers import http_get, wait_until, write_steered_app
from _runner_helpers import Dropins, assert_no_traceback, connect
from conftest import get_free_port, run_dropins

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the steered app uses signals")


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a /metrics body, read by prometheus-client."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_readyz_through_start_up_a_ready_hook_and_a_stop_that_fails_readiness_first(
        tmp_path: Path) -> None:
    app, triggers = write_steered_app(tmp_path)
    port = get_free_port()
    with Dropins("--health", f"tcp:{port}:interface=127.0.0.1", "--app", str(app),
                 env={"TEST_TRIGGERS": str(triggers)}) as dropins:
        dropins.wait_for_line(r"health: serving .* on tcp:127\.0\.0\.1:")
        assert http_get(port, "/readyz")[::2] == (503, "not ready: starting\n")
        assert http_get(port, "/livez")[::2] == (200, "ok\n")

        (triggers / "go").touch()
        (address,) = dropins.ready()
        assert http_get(port, "/readyz")[::2] == (200, "ok\n")
        (triggers / "unready").touch()
        assert http_get(port, "/readyz")[::2] == (503, "not ready: service 'gate' is not ready\n")
        (triggers / "unready").unlink()
        assert http_get(port, "/readyz")[0] == 200

        with connect(address) as client:
            client.sendall(b"hello\n")
            assert client.recv(100) == b"hello\n"
            status, content_type, body = http_get(port, "/metrics")
            assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
            samples = metric_samples(body)
            echo = (("endpoint", "tcp:0:interface=127.0.0.1"), ("service", "echo"))
            assert samples[("dropins_connections_open", echo)] == 1
            assert samples[("dropins_connections_total", echo)] == 1
        assert samples[("process_resident_memory_bytes", ())] > 0
        assert samples[("process_open_fds", ())] > 0

        assert http_get(port, "/nothing") == (404, "text/plain; charset=utf-8",
                                              "not found: try /livez, /readyz or /metrics\n")
        assert http_get(port, "/readyz", "POST")[::2] == (405, "only GET and HEAD\n")
        assert http_get(port, "/livez", "HEAD")[::2] == (200, "")

        dropins.signal(signal.SIGTERM)  # the gate's stop waits for "release"
        wait_until(lambda: http_get(port, "/readyz")[0] == 503, "/readyz turns 503")
        assert http_get(port, "/readyz")[2] == "not ready: stopping\n"
        with connect(address) as client:  # the listener is still open: readiness failed first
            client.sendall(b"still here\n")
            assert client.recv(100) == b"still here\n"
        (triggers / "release").touch()
        assert dropins.wait() == 0
    assert_no_traceback(dropins.stderr)


def test_web_requests_by_status_and_latency_in_metrics(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("hello\n")
    port = get_free_port()
    with Dropins("--health", f"tcp:{port}:interface=127.0.0.1", "web", "--path",
                 str(tmp_path), "--listen", "tcp:0:interface=127.0.0.1") as dropins:
        (address,) = dropins.ready()
        web_port = int(address.rsplit(":", 1)[1])
        assert http_get(web_port, "/")[0] == 200
        assert http_get(web_port, "/")[0] == 200
        assert http_get(web_port, "/missing")[0] == 404
        samples = metric_samples(http_get(port, "/metrics")[2])
        assert dropins.stop() == 0
    assert samples[("dropins_http_requests_total", (("status", "200"),))] == 2
    assert samples[("dropins_http_requests_total", (("status", "404"),))] == 1
    assert samples[("dropins_http_request_duration_seconds_count", ())] == 3  # not /metrics
    assert samples[("dropins_http_request_duration_seconds_bucket", (("le", "+Inf"),))] == 3
    assert samples[("dropins_http_request_duration_seconds_sum", ())] > 0
    web = (("endpoint", "tcp:0:interface=127.0.0.1"), ("service", "web"))
    assert samples[("dropins_connections_total", web)] == 3


def test_without_prometheus_client_metrics_is_501_and_the_probes_still_work(
        tmp_path: Path) -> None:
    hidden = tmp_path / "hide" / "prometheus_client"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    port = get_free_port()
    with Dropins("--health", f"tcp:{port}:interface=127.0.0.1", "web", "--path",
                 str(tmp_path), "--listen", "tcp:0:interface=127.0.0.1",
                 env={"PYTHONPATH": str(tmp_path / "hide")}) as dropins:
        dropins.ready()
        assert http_get(port, "/metrics")[::2] == (
            501, "/metrics needs prometheus-client: pip install 'dropins[metrics]'\n")
        assert http_get(port, "/readyz")[0] == 200
        assert dropins.stop() == 0


@pytest.mark.parametrize(("endpoint", "message"), [
    ("bogus:9090", "--health bogus:9090: unknown endpoint kind 'bogus'"),
    ("tcp:notaport", "--health tcp:notaport: "),
])
def test_a_bad_health_endpoint_is_a_usage_error(tmp_path: Path, endpoint: str,
                                                message: str) -> None:
    result = run_dropins("--health", endpoint, "web", "--path", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"dropins: error: {message}")
    assert result.stderr.count("\n") == 1


def test_a_health_port_in_use_fails_the_start_in_one_line(tmp_path: Path) -> None:
    with Dropins("web", "--path", str(tmp_path), "--listen",
                 "tcp:0:interface=127.0.0.1") as first:
        (address,) = first.ready()
        taken = f"tcp:{address.rsplit(':', 1)[1]}:interface=127.0.0.1"
        result = run_dropins("--health", taken, "web", "--path", str(tmp_path),
                             "--listen", "tcp:0:interface=127.0.0.1")
        first.stop()
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "address already in use" in result.stderr.lower()


def test_health_from_an_application_file_names_its_services(tmp_path: Path) -> None:
    port = get_free_port()
    (tmp_path / "shop.toml").write_text(f'''
[runner]
health = "tcp:{port}:interface=127.0.0.1"

[services.site]
command = "web"
path = "."
listen = "tcp:0:interface=127.0.0.1"
''')
    with Dropins("-c", "shop.toml", cwd=tmp_path) as dropins:
        (address,) = dropins.ready()
        assert http_get(int(address.rsplit(":", 1)[1]), "/")[0] == 200
        assert http_get(port, "/readyz")[0] == 200
        samples = metric_samples(http_get(port, "/metrics")[2])
        assert dropins.stop() == 0
    site = (("endpoint", "tcp:0:interface=127.0.0.1"), ("service", "site"))
    assert samples[("dropins_connections_total", site)] == 1
