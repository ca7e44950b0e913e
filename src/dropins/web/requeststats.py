"""Requests answered by ``dropins web``, counted by status with a latency histogram.

Counting runs on every request, so it is a dict increment and a bisection over fixed bucket
bounds; turning the counts into Prometheus' format happens only when ``/metrics`` is asked
(``dropins.supervisor.metrics``), which is why nothing here imports prometheus-client.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

__all__ = ["LATENCY_BUCKETS", "RequestStats"]

#: Upper bounds (seconds) of the latency histogram: prometheus-client's defaults.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                   10.0)


class RequestStats:
    """Counts of responses by status and of their durations by bucket."""

    __slots__ = ("by_status", "in_bucket", "seconds")

    def __init__(self) -> None:
        self.by_status: dict[int, int] = {}
        self.in_bucket = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one: above every bound
        self.seconds = 0.0

    def record(self, status: int, seconds: float) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1
        self.in_bucket[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.seconds += seconds

    def metrics(self) -> list[dict[str, Any]]:
        samples: list[dict[str, Any]] = [
            {"name": "dropins_http_requests_total", "type": "counter",
             "help": "HTTP responses sent, by status.", "labels": {"status": str(status)},
             "value": count}
            for status, count in sorted(self.by_status.items())]
        cumulative, buckets = 0, []
        for bound, count in zip(LATENCY_BUCKETS, self.in_bucket, strict=False):
            cumulative += count
            buckets.append([bound, cumulative])
        samples.append({"name": "dropins_http_request_duration_seconds", "type": "histogram",
                        "help": "Time from a request's head to the end of its response.",
                        "labels": {}, "buckets": buckets, "sum": self.seconds,
                        "count": sum(self.in_bucket)})
        return samples
