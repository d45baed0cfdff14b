"""Prometheus metrics of the API, in a registry of its own (served at `/metrics`).

The execute route records each execution through `Metrics.record` with the function's children
cached, so the hot path does no label lookups; deploy and the bulkhead count through the other
helpers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vortex_runtime.egress import OUTCOMES

if TYPE_CHECKING:
    from vortex_api.bulkhead import Bulkhead

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# From an isolate's milliseconds to a pod's seconds, up to VORTEX_COLD_START_WAIT_S's default.
_COLD_START_BUCKETS = (*_BUCKETS, 60)
# CPU time: from a trivial function's tens of microseconds up to spec.cpuLimitMs's maximum.
_CPU_BUCKETS = (0.0001, 0.00025, *_BUCKETS, 60, 300)


class FunctionLoadCollector(Collector):
    """Per function, at every scrape: its executions in flight and their integral over time (the
    rate of `vortex_function_inflight_seconds_total` is the average in flight)."""

    def __init__(self, bulkhead: Bulkhead) -> None:
        self.bulkhead = bulkhead

    def collect(self) -> Iterator[Metric]:
        inflight = GaugeMetricFamily(
            "vortex_function_inflight_executions",
            "Executions in flight, by function",
            labels=["function"],
        )
        seconds = CounterMetricFamily(
            "vortex_function_inflight_seconds",
            "Time integral of the executions in flight, by function",
            labels=["function"],
        )
        _, loads = self.bulkhead.loads()
        for function_id, (count, total) in loads.items():
            inflight.add_metric([function_id], count)
            seconds.add_metric([function_id], total)
        yield inflight
        yield seconds


class AsyncQueueCollector(Collector):
    """At every scrape: what waits in the async queue, by function and status, and the age of
    its oldest, from the snapshot the dispatcher last took (`Metrics.queue_depth`)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "vortex_async_queue_depth",
            "Async invocations not yet ended, by function and status (queued, running, failed:"
            " waiting for a retry)",
            labels=["function", "status"],
        )
        age = GaugeMetricFamily(
            "vortex_async_queue_oldest_age_seconds",
            "Age of the oldest async invocation not yet ended, by function",
            labels=["function"],
        )
        oldest: dict[str, float] = {}
        for function_id, status, count, age_s in self.metrics.queue_depth:
            depth.add_metric([function_id, status], count)
            oldest[function_id] = max(age_s, oldest.get(function_id, 0.0))
        for function_id, age_s in oldest.items():
            age.add_metric([function_id], age_s)
        yield depth
        yield age


class Metrics:
    """The API's metric families."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.executions = Counter(
            "vortex_executions_total",
            "Executions by function and outcome",
            ["function", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "vortex_execution_duration_seconds",
            "Execution time seen by the API, by function",
            ["function"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.cpu = Histogram(
            "vortex_execution_cpu_seconds",
            "CPU time executions used running JavaScript (waits not counted), by function",
            ["function"],
            buckets=_CPU_BUCKETS,
            registry=self.registry,
        )
        self.fetches = Counter(
            "vortex_fetch_requests",
            "Requests functions made with fetch, by function and outcome (ok: an HTTP answer,"
            " whatever its status; denied: not allowed by the function's egress; limit: past"
            " maxRequests or the body limit; timeout; error: the connection failed)",
            ["function", "outcome"],
            registry=self.registry,
        )
        self.inflight = Gauge(
            "vortex_inflight_executions", "Executions in flight", registry=self.registry
        )
        self.max_inflight = Gauge(
            "vortex_max_inflight_executions",
            "Executions this replica admits at once (the bulkhead's capacity)",
            registry=self.registry,
        )
        self.rejections = Counter(
            "vortex_capacity_rejections_total",
            "Executions refused by the bulkhead",
            registry=self.registry,
        )
        self.cold_starts = Counter(
            "vortex_cold_starts_total",
            "Executions that had to start an isolate or pod, by kind (prewarmed: a blank"
            " isolate from the runtime's stock; isolate: a new one; pod: a one-shot pod)",
            ["function", "kind"],
            registry=self.registry,
        )
        self._cold_kinds: dict[str, set[str]] = {}
        self.cold_start_seconds = Histogram(
            "vortex_cold_start_seconds",
            "How long cold executions waited for their function to be able to run, by kind:"
            " pod, the wait for the first pod of a function scaled to zero (or the whole"
            " execution in a one-shot pod); prewarmed and isolate, the whole execution, which"
            " includes starting the isolate",
            ["kind"],
            buckets=_COLD_START_BUCKETS,
            registry=self.registry,
        )
        self.deployments = Counter(
            "vortex_deployments_total", "Successful deployments", registry=self.registry
        )
        self.async_attempts = Counter(
            "vortex_async_attempts_total",
            "Attempts of async invocations by function and outcome: succeeded, retried (another"
            " attempt is due) or dead",
            ["function", "outcome"],
            registry=self.registry,
        )
        self.async_dead_letters = Counter(
            "vortex_async_dead_letters_total",
            "Async invocations that ended dead, by function",
            ["function"],
            registry=self.registry,
        )
        self.async_start_delay = Histogram(
            "vortex_async_start_delay_seconds",
            "From when an attempt of an async invocation was due (queued, or its backoff over)"
            " to when it started, by function",
            ["function"],
            buckets=_COLD_START_BUCKETS,
            registry=self.registry,
        )
        # (function, status, count, oldest age in seconds), refreshed by the dispatcher
        self.queue_depth: list[tuple[str, str, int, float]] = []
        self.registry.register(AsyncQueueCollector(self))
        self._outcomes: dict[tuple[str, str], Counter] = {}
        self._durations: dict[str, Histogram] = {}
        self._cpu: dict[str, Histogram] = {}
        self._fetch_outcomes: set[tuple[str, str]] = set()

    def track_bulkhead(self, bulkhead: Bulkhead) -> None:
        """Report the bulkhead's in-flight count and capacity at every scrape."""
        self.inflight.set_function(lambda: bulkhead.inflight)
        self.max_inflight.set_function(lambda: bulkhead.max_inflight)
        self.registry.register(FunctionLoadCollector(bulkhead))

    def record(
        self,
        function_id: str,
        outcome: str,
        seconds: float,
        cold_kind: str | None,
        cold_start_s: float | None = None,
        cpu_s: float | None = None,
        fetches: str | None = None,
    ) -> None:
        """Count one finished execution (`cold_start_s`: its cold start, where measured;
        `cpu_s`: the CPU time its runtime measured; `fetches`: its runtime's count of fetch
        requests by outcome, `ok=2,denied=1`)."""
        key = (function_id, outcome)
        counter = self._outcomes.get(key)
        if counter is None:
            counter = self._outcomes[key] = self.executions.labels(function_id, outcome)
        counter.inc()
        histogram = self._durations.get(function_id)
        if histogram is None:
            histogram = self._durations[function_id] = self.duration.labels(function_id)
        histogram.observe(seconds)
        if cpu_s is not None:
            cpu = self._cpu.get(function_id)
            if cpu is None:
                cpu = self._cpu[function_id] = self.cpu.labels(function_id)
            cpu.observe(cpu_s)
        if fetches:
            self._count_fetches(function_id, fetches)
        if cold_kind is not None:
            self.cold_starts.labels(function_id, cold_kind).inc()
            self._cold_kinds.setdefault(function_id, set()).add(cold_kind)
            self.cold_start_seconds.labels(cold_kind).observe(
                seconds if cold_start_s is None else cold_start_s
            )

    def _count_fetches(self, function_id: str, text: str) -> None:
        for part in text.split(","):
            outcome, _, count = part.partition("=")
            if outcome in OUTCOMES and count.isdigit():
                self._fetch_outcomes.add((function_id, outcome))
                self.fetches.labels(function_id, outcome).inc(int(count))

    def forget(self, function_id: str) -> None:
        """Drop a deleted function's series."""
        for key in [k for k in self._fetch_outcomes if k[0] == function_id]:
            self._fetch_outcomes.discard(key)
            self.fetches.remove(*key)
        for key in [k for k in self._outcomes if k[0] == function_id]:
            del self._outcomes[key]
            self.executions.remove(*key)
        if self._durations.pop(function_id, None) is not None:
            self.duration.remove(function_id)
        if self._cpu.pop(function_id, None) is not None:
            self.cpu.remove(function_id)
        for kind in self._cold_kinds.pop(function_id, set()):
            with contextlib.suppress(KeyError):
                self.cold_starts.remove(function_id, kind)

    def render(self) -> bytes:
        return generate_latest(self.registry)
