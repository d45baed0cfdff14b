"""The operator's Prometheus metrics: reconciles, their failures, warm pods by function, /metrics."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from tests.unit.fake_kube import FakeKube
from tests.unit.operator.conftest import function
from tests.unit.operator.fakes import FakeStore
from vortex_operator import metrics
from vortex_operator.controller import Controller
from vortex_operator.errors import Retry
from vortex_operator.health import HealthServer


def sample(name: str, **labels: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels or None)


async def test_reconciles_errors_and_replicas_are_counted(
    controller: Controller, kube: FakeKube, store: FakeStore
) -> None:
    reconciles = sample("vortex_operator_reconciles_total") or 0.0
    errors = sample("vortex_operator_reconcile_errors_total") or 0.0

    await controller.reconcile(function(name="m1", uid="uid-m1", replicas=2))
    assert sample("vortex_operator_reconciles_total") == reconciles + 1
    assert sample("vortex_operator_function_replicas", namespace="fns", function="m1") == 2
    labels = {"namespace": "fns", "function": "m1"}
    assert sample("vortex_operator_function_ready_replicas", **labels) == 0

    dep = kube.set_deployment_status(
        "fns", "vf-m1", replicas=2, updatedReplicas=2, readyReplicas=2, availableReplicas=2
    )
    owner = function(name="m1", uid="uid-m1", replicas=2)
    await controller.child_event("Deployment", "MODIFIED", dep, owner)
    assert sample("vortex_operator_function_ready_replicas", **labels) == 2

    store.down = True
    with pytest.raises(Retry):
        await controller.reconcile(function(name="m1", uid="uid-m1", code="return 2;"))
    assert sample("vortex_operator_reconcile_errors_total") == errors + 1

    controller.forget("fns", "m1")
    assert sample("vortex_operator_function_replicas", **labels) is None
    assert sample("vortex_operator_function_ready_replicas", **labels) is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_metrics_are_served_on_their_own_port() -> None:
    port, metrics_port = free_port(), free_port()
    server = HealthServer("127.0.0.1", port, lambda: True, lambda: True, metrics_port=metrics_port)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/plain")
                text = await r.text()
            async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                assert r.status == 404
    finally:
        await server.stop()
    assert "vortex_operator_reconciles_total" in text
    assert "vortex_operator_reconcile_errors_total" in text
