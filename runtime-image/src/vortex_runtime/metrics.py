"""Prometheus metrics of the runtime, in their own registry; served by server.py at /metrics."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

INVOCATIONS = Counter(
    "vortex_runtime_invocations",
    "Invocations by outcome (ok, error, timeout, memory, busy, ...)",
    ["outcome"],
    registry=REGISTRY,
)
INVOCATION_SECONDS = Histogram(
    "vortex_runtime_invocation_seconds",
    "Time from request to reply for /invoke",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
INFLIGHT = Gauge("vortex_runtime_inflight", "Invocations in progress", registry=REGISTRY)
HEAP_BYTES = Gauge(
    "vortex_runtime_isolate_heap_bytes",
    "Used V8 heap over idle warm isolates, at their last probe",
    registry=REGISTRY,
)
OUTSIDE_BYTES = Gauge(
    "vortex_runtime_isolate_external_bytes",
    "Memory outside the V8 heap (ArrayBuffers, WebAssembly) over idle warm isolates",
    registry=REGISTRY,
)
ISOLATES = Gauge("vortex_runtime_isolates", "Isolates alive", registry=REGISTRY)
RECYCLES = Counter(
    "vortex_runtime_isolate_recycles",
    "Isolates closed, by reason (timeout, cpu, memory, terminated, busy, evicted, retired,"
    " shutdown)",
    ["reason"],
    registry=REGISTRY,
)
BUSY_REJECTIONS = Counter(
    "vortex_runtime_busy_rejections",
    "Invocations refused because every isolate stayed busy",
    registry=REGISTRY,
)
COLD_STARTS = Counter(
    "vortex_runtime_cold_starts",
    "Invocations that had to start an isolate, by kind (prewarmed: from the stock of blank"
    " isolates; isolate: a new one)",
    ["kind"],
    registry=REGISTRY,
)
FUNCTIONS_LOADED = Gauge(
    "vortex_runtime_functions_loaded",
    "Functions whose code this runtime holds (many-function mode: the pool, local workers)",
    registry=REGISTRY,
)
PREWARMED = Gauge(
    "vortex_runtime_prewarmed_isolates", "Blank isolates ready for new functions", registry=REGISTRY
)


# Every known label value exists from the start, at 0, so rates and dashboards show a zero
# rather than no data before the first eviction or cold start.
for _reason in ("timeout", "cpu", "memory", "terminated", "busy", "evicted", "retired", "shutdown"):
    RECYCLES.labels(reason=_reason)
for _kind in ("prewarmed", "isolate"):
    COLD_STARTS.labels(kind=_kind)


def bind_gauges(
    heap: Callable[[], float], outside: Callable[[], float], isolates: Callable[[], float]
) -> None:
    HEAP_BYTES.set_function(heap)
    OUTSIDE_BYTES.set_function(outside)
    ISOLATES.set_function(isolates)
