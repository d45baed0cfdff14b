"""Shared functions in the Kubernetes backend: the pool's EndpointSlices, rendezvous routing with
spill on busy, deploy waiting for the operator and warming, and moves between shared and warm."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.unit.api.conftest import FakeRuntime, ok, refused_by
from tests.unit.api.helpers import eventually
from tests.unit.api.kube_fixtures import FUNCTIONS, SLICES, endpoint_slice, pool_slice
from tests.unit.fake_kube import FakeKube
from vortex_api.backends.kubernetes import KubernetesBackend
from vortex_api.k8s_objects import POOL_GROUP

SHA = "ab" * 32
KEY = f"functions/{SHA}.js"


def pooled_status(generation: int = 1, sha: str = SHA) -> dict[str, Any]:
    """What the operator writes for a shared function whose code it stored."""
    return {
        "status": {
            "phase": "Ready",
            "observedGeneration": generation,
            "codeSha256": sha,
            "codeObject": f"functions/{sha}.js",
            "conditions": [
                {"type": "CodeStored", "status": "True", "reason": "Stored"},
                {"type": "Available", "status": "True", "reason": "Pooled"},
                {"type": "Ready", "status": "True", "reason": "Pooled"},
            ],
        }
    }


async def operator(fake: FakeKube, name: str, delay_s: float = 0.05) -> None:
    """Plays the operator: once the function exists, marks it pooled (generation 1)."""
    while name not in fake.objects.get(FUNCTIONS, {}):  # noqa: ASYNC110 - another component
        await asyncio.sleep(0.005)
    await asyncio.sleep(delay_s)
    generation = fake.objects[FUNCTIONS][name]["metadata"].get("generation", 1)
    await fake.patch(FUNCTIONS, name, pooled_status(generation))


async def put_shared(fake: FakeKube, backend: KubernetesBackend, name: str, **spec: Any) -> None:
    obj = {"metadata": {"name": name}, "spec": {"code": "x", **spec}, **pooled_status()}
    await fake.put(FUNCTIONS, obj)
    await eventually(lambda: name in backend.functions)


async def pool_of(fake: FakeKube, backend: KubernetesBackend, *ips: str) -> None:
    await fake.put(SLICES, pool_slice(*ips))
    await eventually(lambda: len(backend.table.endpoints(POOL_GROUP)) == len(ips))


async def test_a_shared_function_runs_in_the_pool_by_code_key_with_its_limits(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    await pool_of(fake_kube, k8s_backend, "10.1.0.1", "10.1.0.2")
    await put_shared(
        fake_kube, k8s_backend, "sh", timeoutMs=700, memoryMb=64, env=[{"name": "A", "value": "1"}]
    )

    response = await k8s_client.post("/execute/sh", json={"n": 1})

    assert response.status_code == 200, response.text
    request = runtime.last
    assert request.url.path == f"/invoke/{KEY}"
    assert request.headers["x-vortex-function"] == "sh"
    assert request.headers["x-vortex-timeout-ms"] == "700"
    assert request.headers["x-vortex-memory-mb"] == "64"
    assert request.headers["x-vortex-env"] == '{"A":"1"}'
    assert request.headers["x-vortex-code-sha256"] == SHA


async def test_each_function_sticks_to_one_pod_and_functions_spread_over_the_pool(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    await pool_of(fake_kube, k8s_backend, "10.1.0.1", "10.1.0.2", "10.1.0.3")
    names = [f"f{i}" for i in range(12)]
    for name in names:
        await put_shared(fake_kube, k8s_backend, name)
    hosts: dict[str, set[str]] = {}
    for _ in range(3):
        for name in names:
            before = len(runtime.requests)
            assert (await k8s_client.post(f"/execute/{name}")).status_code == 200
            hosts.setdefault(name, set()).add(runtime.requests[before].url.host)
    assert all(len(h) == 1 for h in hosts.values()), hosts  # warm where it ran before
    assert len(set().union(*hosts.values())) == 3  # and the functions spread out

    # A pod going away moves only its own functions.
    gone = "10.1.0.3"
    await pool_of(fake_kube, k8s_backend, "10.1.0.1", "10.1.0.2")
    for name in names:
        before = len(runtime.requests)
        assert (await k8s_client.post(f"/execute/{name}")).status_code == 200
        host = runtime.requests[before].url.host
        if gone not in hosts[name]:
            assert {host} == hosts[name]


async def test_a_busy_pod_spills_to_the_next_one(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    await pool_of(fake_kube, k8s_backend, "10.1.0.1", "10.1.0.2")
    await put_shared(fake_kube, k8s_backend, "hot")
    first = await k8s_client.post("/execute/hot")
    home = runtime.last.url.host

    def busy_at_home(request: httpx.Request) -> httpx.Response:
        if request.url.host == home:
            body = {"error": {"type": "RuntimeBusy", "message": "every isolate stayed busy"}}
            return httpx.Response(503, json=body, headers={"retry-after": "1"})
        return ok("elsewhere")

    runtime.handler = busy_at_home
    response = await k8s_client.post("/execute/hot")

    assert first.status_code == 200
    assert response.status_code == 200
    assert response.json()["output"] == "elsewhere"
    assert [r.url.host for r in runtime.requests[-2:]] == [home, runtime.last.url.host]
    assert runtime.last.url.host != home


async def test_every_pod_busy_is_the_runtimes_503(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    await pool_of(fake_kube, k8s_backend, "10.1.0.1", "10.1.0.2")
    await put_shared(fake_kube, k8s_backend, "hot")
    body = {"error": {"type": "RuntimeBusy", "message": "every isolate stayed busy"}}
    runtime.handler = lambda request: httpx.Response(503, json=body)

    response = await k8s_client.post("/execute/hot")

    assert response.status_code == 503
    assert response.json()["error"]["type"] == "RuntimeBusy"
    assert len(runtime.requests) == 2  # each pod once, never a loop
    assert "retry-after" in response.headers


async def test_a_pool_pod_that_refuses_connections_is_skipped(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    await pool_of(fake_kube, k8s_backend, "10.1.0.1", "10.1.0.2")
    await put_shared(fake_kube, k8s_backend, "r")

    runtime.handler = refused_by("10.1.0.1", "alive")
    for _ in range(3):
        response = await k8s_client.post("/execute/r")
        assert response.json()["output"] == "alive"


async def test_deploy_waits_for_the_stored_code_and_warms_the_functions_pod(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    await pool_of(fake_kube, k8s_backend, "10.1.0.1", "10.1.0.2")
    playing = asyncio.create_task(operator(fake_kube, "new", delay_s=0.1))

    response = await k8s_client.post("/deploy", json={"code": "return 1;", "name": "new"})

    assert response.status_code == 201
    assert playing.done()
    assert k8s_backend.functions["new"].code_object == KEY
    [warm] = runtime.warms
    assert warm.url.path == f"/warm/{KEY}"
    assert warm.headers["x-vortex-function"] == "new"
    assert (await k8s_client.post("/execute/new")).status_code == 200
    assert runtime.last.url.host == warm.url.host  # the first call goes where it is warm


async def test_deploy_answers_after_its_wait_even_without_the_operator(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, runtime: FakeRuntime
) -> None:
    response = await k8s_client.post("/deploy", json={"code": "return 1;", "name": "slow"})
    assert response.status_code == 201
    assert runtime.warms == []
    assert "slow" in fake_kube.objects[FUNCTIONS]


async def test_code_stored_by_the_operator_later_is_warmed_by_the_watch(
    fake_kube: FakeKube, k8s_backend: KubernetesBackend, runtime: FakeRuntime, k8s_client
) -> None:
    await pool_of(fake_kube, k8s_backend, "10.1.0.1")
    await fake_kube.put(FUNCTIONS, {"metadata": {"name": "kubectl"}, "spec": {"code": "x"}})
    await eventually(lambda: "kubectl" in k8s_backend.functions)
    assert runtime.warms == []
    await fake_kube.patch(FUNCTIONS, "kubectl", pooled_status())
    await eventually(lambda: len(runtime.warms) == 1)
    assert runtime.warms[0].url.path == f"/warm/{KEY}"


async def test_an_execute_right_after_create_waits_for_the_code(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    await pool_of(fake_kube, k8s_backend, "10.1.0.1")
    await fake_kube.put(FUNCTIONS, {"metadata": {"name": "early"}, "spec": {"code": "x"}})
    await eventually(lambda: "early" in k8s_backend.functions)
    playing = asyncio.create_task(operator(fake_kube, "early", delay_s=0.2))

    response = await k8s_client.post("/execute/early")

    assert response.status_code == 200, response.text
    assert playing.done()
    assert runtime.last.url.path == f"/invoke/{KEY}"


async def test_a_function_whose_code_never_comes_is_503_not_ready(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
) -> None:
    k8s_backend.settings.readiness_wait_s = 0.2
    await pool_of(fake_kube, k8s_backend, "10.1.0.1")
    await fake_kube.put(FUNCTIONS, {"metadata": {"name": "never"}, "spec": {"code": "x"}})
    await eventually(lambda: "never" in k8s_backend.functions)

    response = await k8s_client.post("/execute/never")

    assert response.status_code == 503
    assert response.json()["error"]["type"] == "NotReady"
    assert "not stored yet" in response.json()["error"]["message"]


async def test_an_install_without_a_pool_says_so(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    k8s_backend.settings.pool_service = None
    await put_shared(fake_kube, k8s_backend, "orphan")

    response = await k8s_client.post("/execute/orphan")

    assert response.status_code == 503
    assert "runs no pool" in response.json()["error"]["message"]


async def test_moving_between_shared_and_warm_fails_no_request(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    await pool_of(fake_kube, k8s_backend, "10.1.0.1")
    await put_shared(fake_kube, k8s_backend, "mover")
    assert (await k8s_client.post("/execute/mover")).status_code == 200
    assert runtime.last.url.path == f"/invoke/{KEY}"

    # To warm: until a pod of its own is ready, the pool keeps serving it, with its env.
    spec = {"code": "x", "isolation": "warm", "env": [{"name": "E", "value": "v"}]}
    await fake_kube.patch(FUNCTIONS, "mover", {"spec": spec})
    await eventually(lambda: k8s_backend.functions["mover"].isolation == "warm")
    response = await k8s_client.post("/execute/mover")
    assert response.status_code == 200
    assert runtime.last.url.path == f"/invoke/{KEY}"
    assert runtime.last.headers["x-vortex-env"] == '{"E":"v"}'

    await fake_kube.put(SLICES, endpoint_slice("mover", "10.0.0.7"))
    await eventually(lambda: k8s_backend.table.endpoints("mover"))
    assert (await k8s_client.post("/execute/mover")).status_code == 200
    assert (runtime.last.url.host, runtime.last.url.path) == ("10.0.0.7", "/invoke")

    # And back: the pool at once.
    await fake_kube.patch(FUNCTIONS, "mover", {"spec": {"isolation": "shared"}})
    await eventually(lambda: k8s_backend.functions["mover"].isolation == "shared")
    assert (await k8s_client.post("/execute/mover")).status_code == 200
    assert runtime.last.url.path == f"/invoke/{KEY}"


async def test_a_new_warm_function_waits_for_its_own_pods(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    """Only a move from shared is served by the pool meanwhile: a warm function asked for pods
    of its own."""
    k8s_backend.invoker.readiness_wait_s = 0.2
    await pool_of(fake_kube, k8s_backend, "10.1.0.1")
    obj = {"metadata": {"name": "own"}, "spec": {"code": "x", "isolation": "warm"}}
    await fake_kube.put(FUNCTIONS, {**obj, **pooled_status()})
    await eventually(lambda: "own" in k8s_backend.functions)

    response = await k8s_client.post("/execute/own")

    assert response.status_code == 503
    assert response.json()["error"]["type"] == "NotReady"
    assert runtime.requests == []
