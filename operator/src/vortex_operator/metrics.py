"""Prometheus metrics of the operator, in a registry of its own.

`python -m vortex_operator` serves them at `/metrics` on `VORTEX_OPERATOR_METRICS_PORT` (the
chart's `operator.metrics`). The controller counts reconciles and their failures and keeps the
desired and ready warm pods of every function it knows; series of a deleted function are dropped.
Per-function series carry the function's own `namespace` (the chart's ServiceMonitor honours it).
"""

from __future__ import annotations

import contextlib

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter(
    "vortex_operator_reconciles",
    "Reconciles of VortexFunctions (create, update, resume, codeRef refresh)",
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "vortex_operator_reconcile_errors",
    "Reconciles that failed and are retried (storage or API server errors)",
    registry=REGISTRY,
)
FUNCTION_REPLICAS = Gauge(
    "vortex_operator_function_replicas",
    "Desired warm pods by function",
    ["namespace", "function"],
    registry=REGISTRY,
)
FUNCTION_READY_REPLICAS = Gauge(
    "vortex_operator_function_ready_replicas",
    "Ready warm pods by function",
    ["namespace", "function"],
    registry=REGISTRY,
)


def set_replicas(namespace: str, function: str, desired: int, ready: int) -> None:
    FUNCTION_REPLICAS.labels(namespace, function).set(desired)
    FUNCTION_READY_REPLICAS.labels(namespace, function).set(ready)


def forget(namespace: str, function: str) -> None:
    """Drop a deleted function's series."""
    for gauge in (FUNCTION_REPLICAS, FUNCTION_READY_REPLICAS):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, function)


def render() -> bytes:
    return generate_latest(REGISTRY)
