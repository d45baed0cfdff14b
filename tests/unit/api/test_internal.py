"""GET /internal/concurrency: each replica's load per function, for the operator's autoscaler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from vortex_api.settings import Settings
from vortex_kube.contract import CONCURRENCY_PATH

ADMIN = {"Authorization": "Bearer admin-secret"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.admin_key = SecretStr("admin-secret")
    settings.invoke_keys = SecretStr("inv-1")
    return settings


async def test_the_report_needs_the_admin_key(client: httpx.AsyncClient) -> None:
    assert (await client.get(CONCURRENCY_PATH)).status_code == 401
    invoke = {"Authorization": "Bearer inv-1"}
    assert (await client.get(CONCURRENCY_PATH, headers=invoke)).status_code == 403


async def test_the_report_carries_each_function_the_replica_ran(
    client: httpx.AsyncClient, deploy: Callable[..., Any]
) -> None:
    await deploy(name="busy")
    before = (await client.get(CONCURRENCY_PATH, headers=ADMIN)).json()
    assert before["functions"] == {}
    await client.post("/execute/busy", headers=ADMIN)
    after = (await client.get(CONCURRENCY_PATH, headers=ADMIN)).json()
    assert after["instance"] == before["instance"]
    assert after["at"] > before["at"]
    assert after["namespace"] == "default"
    load = after["functions"]["busy"]
    assert load["inflight"] == 0
    assert load["inflight_seconds"] > 0


async def test_metrics_show_the_load_per_function(
    client: httpx.AsyncClient, deploy: Callable[..., Any]
) -> None:
    await deploy(name="busy")
    await client.post("/execute/busy", headers=ADMIN)
    text = (await client.get("/metrics")).text
    assert 'vortex_function_inflight_executions{function="busy"} 0.0' in text
    assert 'vortex_function_inflight_seconds_total{function="busy"}' in text
