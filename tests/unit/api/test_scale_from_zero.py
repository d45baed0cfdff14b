"""Scale from zero: requests for a warm function at zero pods are held until a pod is ready."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.unit.api.conftest import FakeRuntime
from tests.unit.api.helpers import eventually
from tests.unit.api.kube_fixtures import FUNCTIONS, SLICES, endpoint_slice
from tests.unit.fake_kube import FakeKube
from vortex_api.backends.kubernetes import KubernetesBackend
from vortex_api.settings import Settings


@pytest.fixture
def k8s_settings(k8s_settings: Settings) -> Settings:
    """The bulkhead above the load, as the chart sets it (its default is the seed's 10)."""
    return k8s_settings.model_copy(update={"max_workers": 50})


def at_zero(scale: dict[str, object] | None) -> dict[str, object]:
    spec: dict[str, object] = {"replicas": 0, "concurrency": 4}
    if scale is not None:
        spec["scale"] = scale
    return {
        "spec": spec,
        "status": {
            "phase": "Ready",
            "codeSha256": "ab" * 32,
            "codeObject": f"functions/{'ab' * 32}.js",
            "readyReplicas": 0,
            "conditions": [
                {"type": "CodeStored", "status": "True"},
                {"type": "Available", "status": "False", "reason": "ScaledToZero"},
                {"type": "Ready", "status": "False", "reason": "ScaledToZero"},
            ],
        },
    }


async def scaled_to_zero(
    client: httpx.AsyncClient,
    kube: FakeKube,
    backend: KubernetesBackend,
    name: str,
    scale: dict[str, object] | None,
) -> None:
    response = await client.post(
        "/deploy", json={"code": "return 1;", "name": name, "isolation": "warm"}
    )
    assert response.status_code == 201, response.text
    await kube.patch(FUNCTIONS, name, at_zero(scale))
    await eventually(lambda: backend.functions[name].ready_reason == "ScaledToZero")


def cold_start_count(text: str) -> float:
    for line in text.splitlines():
        if line.startswith('vortex_cold_start_seconds_count{kind="pod"}'):
            return float(line.split()[-1])
    return 0.0


async def test_requests_are_held_until_the_first_pod_is_ready_then_all_answered(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    await scaled_to_zero(
        k8s_client, fake_kube, k8s_backend, "sleepy", {"minReplicas": 0, "maxReplicas": 10}
    )
    calls = [asyncio.create_task(k8s_client.post("/execute/sleepy")) for _ in range(20)]
    # Held, not refused (the cap is concurrency times maxReplicas), and counted in flight:
    # the autoscaler's signal to wake the function.
    await eventually(lambda: k8s_backend.table.endpoints("sleepy") == [] and len(calls) == 20)
    await asyncio.sleep(0.1)
    report = (await k8s_client.get("/internal/concurrency")).json()
    assert report["functions"]["sleepy"]["inflight"] == 20
    await asyncio.sleep(0.2)
    assert not any(call.done() for call in calls)
    assert runtime.requests == []  # nothing is sent before a pod is ready

    await fake_kube.put(SLICES, endpoint_slice("sleepy", "10.0.7.1", ready=False))
    await asyncio.sleep(0.1)
    assert not any(call.done() for call in calls)
    await fake_kube.put(SLICES, endpoint_slice("sleepy", "10.0.7.1"))
    answers = await asyncio.gather(*calls)

    assert [a.status_code for a in answers] == [200] * 20
    assert {r.url.host for r in runtime.requests} == {"10.0.7.1"}
    metrics = (await k8s_client.get("/metrics")).text
    assert cold_start_count(metrics) == 20
    assert 'vortex_cold_starts_total{function="sleepy",kind="pod"} 20.0' in metrics


async def test_a_request_after_the_wake_up_before_the_pod_is_ready_is_a_cold_start_too(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    """The autoscaler has already asked for a pod (replicas 1, no longer ScaledToZero), and a
    request comes before the pod is ready: it is held as long, so it counts as long."""
    await scaled_to_zero(
        k8s_client, fake_kube, k8s_backend, "waking", {"minReplicas": 0, "maxReplicas": 3}
    )
    waking = at_zero({"minReplicas": 0, "maxReplicas": 3})
    waking["spec"] = {**waking["spec"], "replicas": 1}  # type: ignore[dict-item]
    waking["status"] = {
        **waking["status"],  # type: ignore[dict-item]
        "conditions": [
            {"type": "CodeStored", "status": "True"},
            {"type": "Available", "status": "False", "reason": "NoReadyPods"},
            {"type": "Ready", "status": "False", "reason": "RollingOut"},
        ],
    }
    await fake_kube.patch(FUNCTIONS, "waking", waking)
    await eventually(lambda: k8s_backend.functions["waking"].ready_reason == "RollingOut")
    calls = [asyncio.create_task(k8s_client.post("/execute/waking")) for _ in range(5)]
    await asyncio.sleep(0.2)
    assert not any(call.done() for call in calls)
    await fake_kube.put(SLICES, endpoint_slice("waking", "10.0.9.1"))
    answers = await asyncio.gather(*calls)

    assert [a.status_code for a in answers] == [200] * 5
    assert cold_start_count((await k8s_client.get("/metrics")).text) == 5


async def test_held_past_the_cold_start_wait_is_503_with_retry_after(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    k8s_backend.settings.cold_start_wait_s = 0.2
    await scaled_to_zero(
        k8s_client, fake_kube, k8s_backend, "stuck", {"minReplicas": 0, "maxReplicas": 2}
    )
    response = await k8s_client.post("/execute/stuck")

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["type"] == "NotReady"
    assert "scaled to zero" in error["message"]
    assert "VORTEX_COLD_START_WAIT_S" in error["message"]
    assert response.headers["retry-after"] == "1"


async def test_scaled_to_zero_by_hand_says_so_at_once(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    k8s_backend.settings.cold_start_wait_s = 30
    k8s_backend.invoker.readiness_wait_s = 30
    await scaled_to_zero(k8s_client, fake_kube, k8s_backend, "off", None)
    response = await asyncio.wait_for(k8s_client.post("/execute/off"), 5)

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["type"] == "NotReady"
    assert "kubectl scale vf/off --replicas=1" in error["message"]


async def test_a_function_with_pods_is_not_a_cold_start(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    await scaled_to_zero(
        k8s_client, fake_kube, k8s_backend, "woken", {"minReplicas": 0, "maxReplicas": 2}
    )
    await fake_kube.put(SLICES, endpoint_slice("woken", "10.0.8.1"))
    await eventually(lambda: bool(k8s_backend.table.endpoints("woken")))

    assert (await k8s_client.post("/execute/woken")).status_code == 200
    assert cold_start_count((await k8s_client.get("/metrics")).text) == 0


async def test_deploy_takes_the_scale_of_a_warm_function(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube
) -> None:
    body = {
        "code": "return 1;",
        "name": "scaled",
        "isolation": "warm",
        "concurrency": 8,
        "scale": {"min_replicas": 0, "max_replicas": 4, "scale_to_zero_after_seconds": 20},
    }
    assert (await k8s_client.post("/deploy", json=body)).status_code == 201
    spec = fake_kube.objects[FUNCTIONS]["scaled"]["spec"]
    assert spec["scale"] == {"minReplicas": 0, "maxReplicas": 4, "scaleToZeroAfterSeconds": 20}

    body["scale"] = None  # a redeploy without it removes it, as for every other field
    assert (await k8s_client.post("/deploy", json=body)).status_code == 201
    assert "scale" not in fake_kube.objects[FUNCTIONS]["scaled"]["spec"]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"isolation": "warm", "scale": {"min_replicas": 3, "max_replicas": 2}}, "must not exceed"),
        ({"scale": {"min_replicas": 0}}, "isolation warm only"),
        ({"isolation": "warm", "scale": {"scale_to_zero_after_seconds": 1}}, "greater than"),
        ({"isolation": "warm", "scale": {"min": 1}}, "min"),
    ],
)
async def test_deploy_refuses_a_bad_scale(
    k8s_client: httpx.AsyncClient, extra: dict[str, object], says: str
) -> None:
    response = await k8s_client.post("/deploy", json={"code": "return 1;", **extra})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert says in error["message"]
