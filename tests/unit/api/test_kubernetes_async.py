"""Async invocations and cron ticks with the kubernetes backend (a real SQLite queue stands in
for NATS, which the queue suite and the cluster tests run): an attempt that reaches no runtime
waits in the queue uncounted, and `POST /internal/ticks/{id}` queues a tick once."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from tests.unit.api.conftest import FakeRuntime, ok
from tests.unit.api.helpers import eventually
from tests.unit.api.kube_fixtures import FUNCTIONS, SLICES, endpoint_slice
from tests.unit.api.test_kubernetes_backend import ready_status
from tests.unit.fake_kube import FakeKube
from vortex_api.backends.kubernetes import KubernetesBackend
from vortex_api.settings import Settings

ADMIN = {"Authorization": "Bearer admin-key"}


@pytest.fixture
def k8s_settings(k8s_settings: Settings) -> Settings:
    return k8s_settings.model_copy(
        update={
            "async_queue": "sqlite",
            "async_workers": 4,
            "readiness_wait_s": 0.2,
            "admin_key": SecretStr("admin-key"),
        }
    )


async def deploy(client: httpx.AsyncClient, **fields: object) -> None:
    response = await client.post("/deploy", json={"code": "return 1;", **fields}, headers=ADMIN)
    assert response.status_code == 201, response.text


async def _invocation(client: httpx.AsyncClient, invocation_id: str) -> dict[str, object]:
    response = await client.get(f"/invocations/{invocation_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    doc: dict[str, object] = response.json()
    return doc


async def test_an_attempt_that_reaches_no_runtime_waits_in_the_queue_uncounted(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    k8s_backend.settings.readiness_wait_s = 0.2
    await deploy(k8s_client, name="later", isolation="warm")
    await fake_kube.patch(FUNCTIONS, "later", ready_status())
    await eventually(lambda: k8s_backend.functions["later"].ready)

    queued = await k8s_client.post("/async/later", json={"n": 1}, headers=ADMIN)
    assert queued.status_code == 202, queued.text
    invocation_id = queued.json()["invocation_id"]
    await asyncio.sleep(1.5)  # no pod is ready: tried and given back, more than once
    doc = await _invocation(k8s_client, invocation_id)
    assert doc["status"] == "queued", doc
    assert (doc["attempts"], doc["history"]) == (0, []), doc
    assert runtime.requests == []

    await fake_kube.put(SLICES, endpoint_slice("later", "10.0.3.1"))

    for _ in range(100):
        doc = await _invocation(k8s_client, invocation_id)
        if doc["status"] == "succeeded":
            break
        await asyncio.sleep(0.05)
    assert doc["attempts"] == 1, doc
    assert len(runtime.requests) == 1
    assert "x-vortex-attempt" not in runtime.requests[0].headers  # attempt 1


async def test_ticks_are_queued_once_per_function_and_minute(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    await deploy(
        k8s_client,
        name="cron",
        isolation="warm",
        schedule="* * * * *",
        schedule_event={"from": "cron"},
    )
    assert fake_kube.objects[FUNCTIONS]["cron"]["spec"]["schedule"] == "* * * * *"
    await deploy(k8s_client, name="plain", isolation="warm")
    for name in ("cron", "plain"):
        await fake_kube.patch(FUNCTIONS, name, ready_status())
    await eventually(lambda: k8s_backend.functions["cron"].schedule == "* * * * *")

    tick = {"tick": "2026-12-07T11:05:00+01:00"}
    first = await k8s_client.post("/internal/ticks/cron", json=tick, headers=ADMIN)
    again = await k8s_client.post("/internal/ticks/cron", json=tick, headers=ADMIN)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json() == {"invocation_id": "cron.20261207T1005Z", "created": True}
    assert again.json() == {"invocation_id": "cron.20261207T1005Z", "created": False}
    doc = await _invocation(k8s_client, "cron.20261207T1005Z")
    assert doc["function"] == "cron"

    refused = {
        "no key": await k8s_client.post("/internal/ticks/cron", json=tick),
        "no schedule": await k8s_client.post("/internal/ticks/plain", json=tick, headers=ADMIN),
        "no function": await k8s_client.post("/internal/ticks/ghost", json=tick, headers=ADMIN),
        "no offset": await k8s_client.post(
            "/internal/ticks/cron", json={"tick": "2026-12-07T10:05:00"}, headers=ADMIN
        ),
        "not a time": await k8s_client.post(
            "/internal/ticks/cron", json={"tick": "soon"}, headers=ADMIN
        ),
    }
    statuses = {k: (r.status_code, r.json()["error"]["type"]) for k, r in refused.items()}
    assert statuses["no key"][0] == 401
    assert statuses["no schedule"][0] == 409
    assert statuses["no function"][0] == 404
    assert statuses["no offset"] == (400, "InvalidRequest")
    assert statuses["not a time"] == (400, "InvalidRequest")


async def test_an_attempt_no_runtime_had_room_for_waits_in_the_queue_uncounted(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    busy = httpx.Response(
        503,
        json={"error": {"type": "RuntimeBusy", "message": "every isolate is busy"}},
        headers={"Retry-After": "1"},
    )
    answers = iter([busy, busy])
    runtime.handler = lambda request: next(answers, None) or ok({"ran": True})
    await deploy(k8s_client, name="crowded", isolation="warm")
    await fake_kube.patch(FUNCTIONS, "crowded", ready_status())
    await fake_kube.put(SLICES, endpoint_slice("crowded", "10.0.4.1"))
    await eventually(lambda: bool(k8s_backend.table.endpoints("crowded")))

    queued = await k8s_client.post("/async/crowded", json={}, headers=ADMIN)
    assert queued.status_code == 202, queued.text
    for _ in range(100):
        doc = await _invocation(k8s_client, queued.json()["invocation_id"])
        if doc["status"] in ("succeeded", "dead"):
            break
        await asyncio.sleep(0.05)
    assert (doc["status"], doc["attempts"]) == ("succeeded", 1), doc
    assert [a["attempt"] for a in doc["history"]] == [1]  # the busy answers left no attempt
    assert len(runtime.requests) >= 3
