"""GET /health (the seed's document) and GET /metrics (Prometheus text)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.unit.api.conftest import FakeRuntime, ok
from vortex_api.backends.local import LocalBackend
from vortex_api.backends.supervisor import GROUP


async def test_health_is_the_seed_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "active_workers": 0, "max_workers": 10}


async def test_health_is_503_without_runtimes(
    client: httpx.AsyncClient, backend: LocalBackend
) -> None:
    backend.table.remove(GROUP, "http://worker-0")
    response = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"


async def test_metrics_count_executions_outcomes_cold_starts_and_deployments(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any]
) -> None:
    fn = await deploy(name="m")

    def reply(request: httpx.Request) -> httpx.Response:
        if request.content == b"1":
            response = ok(1)
            response.headers["X-Vortex-Cold-Start"] = "1"
            response.headers["X-Vortex-Cold-Start-Kind"] = "prewarmed"
            return response
        if request.content == b"2":
            return ok(2)
        return httpx.Response(
            500, json={"error": {"type": "FunctionError", "message": "x"}, "logs": []}
        )

    runtime.handler = reply
    for body in (b"1", b"2", b"3"):
        await client.post("/execute/m", content=body)
    await client.post("/deploy", json={"code": ""})  # invalid: not counted

    response = await client.get("/metrics")
    text = response.text

    assert response.headers["content-type"].startswith("text/plain")
    assert fn.function_id == "m"
    assert 'vortex_executions_total{function="m",outcome="success"} 2.0' in text
    assert 'vortex_executions_total{function="m",outcome="error"} 1.0' in text
    assert 'vortex_execution_duration_seconds_count{function="m"} 3.0' in text
    assert 'vortex_cold_starts_total{function="m",kind="prewarmed"} 1.0' in text
    assert "vortex_inflight_executions 0.0" in text
    assert "vortex_capacity_rejections_total 0.0" in text
    assert "vortex_deployments_total 0.0" in text


async def test_deleting_a_function_drops_its_series(
    client: httpx.AsyncClient, deploy: Callable[..., Any]
) -> None:
    await deploy(name="gone")
    await client.post("/execute/gone")
    await client.delete("/functions/gone")
    assert 'function="gone"' not in (await client.get("/metrics")).text
