"""Prometheus metrics for ``GET /metrics``.

Why a registry per app: tests and embedders may create several apps in one
process; the global default registry would refuse the second set of names.
Instance counts are read from the store at scrape time (one ``GROUP BY``),
so they are right even when other processes change instances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _InstanceCollector(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("jsflow_instances", "Workflow instances by status", labels=["status"])
        for status, count in sorted(self._counts().items()):
            family.add_metric([status], count)
        yield family


class Metrics:
    """The server's counters and histograms, in their own registry."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_InstanceCollector(counts))
        self.advances = Counter(
            "jsflow_advances", "Engine operations run by the server", ["op"], registry=self.registry
        )
        self.faults = Counter(
            "jsflow_faults", "Operations after which the instance was faulted", ["op"], registry=self.registry
        )
        self.latency = Histogram(
            "jsflow_request_seconds",
            "Latency of event deliveries and resumes, received to answered",
            ["op"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.limits_hit = Counter(
            "jsflow_limits_hit", "Requests refused by a limit", ["limit"], registry=self.registry
        )
        self.errors = Counter(
            "jsflow_http_errors", "Error responses by status", ["status"], registry=self.registry
        )

    def error(self, status: int) -> None:
        self.errors.labels(str(status)).inc()
        if status == 429:
            self.limits_hit.labels("rate").inc()
        elif status == 413:
            self.limits_hit.labels("body").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
