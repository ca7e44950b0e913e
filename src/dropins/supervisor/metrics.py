"""Metrics as plain data: gathered from the service tree, merged, rendered for Prometheus.

A *sample* is a JSON-able dict, so that a worker process can send its samples to the
supervisor, which merges them into one view::

    {"name": "dropins_connections_total", "type": "counter", "help": "...",
     "labels": {"service": "tcp:8080"}, "value": 12}
    {"name": "dropins_http_request_duration_seconds", "type": "histogram", "help": "...",
     "labels": {}, "buckets": [[0.005, 3], [0.01, 7]], "sum": 0.04, "count": 8}

(histogram buckets are ``[upper bound, cumulative count]``; ``count`` is the ``+Inf`` bucket).
Any service, or the protocol factory of a stream server, may define ``metrics() -> list`` of
such samples; ``collect_samples`` walks the tree for them and adds the process's own (CPU,
memory, descriptors).  Only ``render`` and ``process_samples`` import prometheus-client (the
``dropins[metrics]`` extra), and only when ``/metrics`` is asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["collect_samples", "merge_samples", "metrics_available", "process_samples",
           "render", "walk"]

Sample = dict[str, Any]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_available() -> bool:
    """Whether prometheus-client can be imported (``/metrics`` answers 501 without it)."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


def walk(service: Any) -> Iterator[Any]:
    """``service`` and every service below it, depth first."""
    yield service
    try:
        children = list(service)
    except TypeError:
        return
    for child in children:
        yield from walk(child)


def tree_samples(application: Any) -> list[Sample]:
    """What the services (and the protocol factories they serve) report; a factory shared by
    several listeners (``dropins web`` with two ``--listen``) is asked once."""
    samples: list[Sample] = []
    asked: set[int] = set()
    for service in walk(application):
        for source in (service, getattr(service, "factory", None)):
            metrics = getattr(source, "metrics", None)
            if callable(metrics) and id(source) not in asked:
                asked.add(id(source))
                samples.extend(metrics())
    return samples


def collect_samples(application: Any, labels: dict[str, str] | None = None) -> list[Sample]:
    """Every sample of this process: the tree's, merged, then the process's own (each labelled
    with ``labels``, e.g. ``{"worker": "1"}`` in a worker)."""
    return merge_samples([tree_samples(application)]) + process_samples(labels or {})


def process_samples(labels: dict[str, str]) -> list[Sample]:
    """CPU, memory, descriptors and start time of this process, by prometheus-client's own
    collector (it reads /proc; elsewhere it reports nothing)."""
    from prometheus_client import ProcessCollector

    samples: list[Sample] = []
    for family in ProcessCollector(registry=None).collect():
        for sample in family.samples:
            samples.append({"name": sample.name, "type": "gauge" if family.type != "counter"
                            else "counter", "help": family.documentation,
                            "labels": {**sample.labels, **labels}, "value": sample.value})
    return samples


def _key(sample: Sample) -> tuple[str, tuple[tuple[str, str], ...]]:
    return sample["name"], tuple(sorted(sample.get("labels", {}).items()))


def merge_samples(groups: Iterable[list[Sample]]) -> list[Sample]:
    """One sample per name and labels, values summed (connections of every worker, requests
    of two web services): a total is what a dashboard asks of several processes."""
    merged: dict[tuple[str, tuple[tuple[str, str], ...]], Sample] = {}
    for samples in groups:
        for sample in samples:
            key = _key(sample)
            seen = merged.get(key)
            if seen is None:
                merged[key] = {**sample, "labels": dict(sample.get("labels", {}))}
                if "buckets" in sample:
                    merged[key]["buckets"] = [list(bucket) for bucket in sample["buckets"]]
            elif sample.get("type") == "histogram":
                counts = {bound: count for bound, count in seen["buckets"]}
                for bound, count in sample["buckets"]:
                    counts[bound] = counts.get(bound, 0) + count
                seen["buckets"] = [[bound, counts[bound]] for bound in sorted(counts)]
                seen["sum"] += sample["sum"]
                seen["count"] += sample["count"]
            else:
                seen["value"] += sample["value"]
    return list(merged.values())


def render(samples: list[Sample]) -> bytes:
    """The Prometheus text format of ``samples``, written by prometheus-client."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    families: dict[str, Any] = {}
    for sample in samples:
        name, kind, labels = sample["name"], sample.get("type", "gauge"), sample.get("labels", {})
        label_names = sorted(labels)
        family_name = name[:-6] if kind == "counter" and name.endswith("_total") else name
        family = families.get(family_name)
        if family is None:
            make = {"counter": CounterMetricFamily, "histogram": HistogramMetricFamily}.get(
                kind, GaugeMetricFamily)
            family = families[family_name] = make(name, sample.get("help", ""),
                                                  labels=label_names)
        values = [str(labels[label]) for label in label_names]
        if kind == "histogram":
            buckets = [(_bound(bound), count) for bound, count in sample["buckets"]]
            family.add_metric(values, [*buckets, ("+Inf", sample["count"])], sample["sum"])
        else:
            family.add_metric(values, sample["value"])

    class _Samples:
        def collect(self) -> Iterator[Any]:
            yield from families.values()

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Samples())
    return bytes(generate_latest(registry))


def _bound(value: float) -> str:
    return repr(float(value))
