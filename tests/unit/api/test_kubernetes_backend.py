"""The Kubernetes backend against a fake API server: VortexFunctions, EndpointSlice routing."""

from __future__ import annotations

import asyncio

import httpx

from tests.unit.api.conftest import FakeRuntime, ok, refused_by
from tests.unit.api.helpers import eventually
from tests.unit.api.kube_fixtures import FUNCTIONS, SLICES, endpoint_slice
from tests.unit.fake_kube import FakeKube
from vortex_api.backends.kubernetes import KubernetesBackend
from vortex_api.k8s_objects import POOL_GROUP


def ready_status(**extra: object) -> dict[str, object]:
    return {
        "status": {
            "phase": "Ready",
            "codeSha256": "ab" * 32,
            "codeObject": f"functions/{'ab' * 32}.js",
            "readyReplicas": 1,
            "conditions": [
                {"type": "CodeStored", "status": "True"},
                {"type": "Available", "status": "True"},
                {"type": "Ready", "status": "True"},
            ],
            **extra,
        }
    }


async def deploy(client: httpx.AsyncClient, **fields: object) -> str:
    response = await client.post("/deploy", json={"code": "return 1;", **fields})
    assert response.status_code == 201, response.text
    function_id: str = response.json()["function_id"]
    return function_id


async def test_deploy_creates_a_vortexfunction(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube
) -> None:
    fid = await deploy(
        k8s_client, name="hello", timeout_ms=2500, memory_mb=64, env={"A": "1"}, replicas=2
    )

    assert fid == "hello"
    obj = fake_kube.objects[FUNCTIONS]["hello"]
    assert obj["apiVersion"] == "vortex.dev/v1alpha1"
    assert obj["kind"] == "VortexFunction"
    assert obj["spec"] == {
        "code": "return 1;",
        "timeoutMs": 2500,
        "memoryMb": 64,
        "env": [{"name": "A", "value": "1"}],
        "isolation": "shared",
        "replicas": 2,
    }
    doc = (await k8s_client.get("/functions/hello")).json()
    assert doc["status"] == {
        "phase": "Pending",
        "ready": False,
        "ready_replicas": None,
        "desired_replicas": None,
        "observed_concurrency": None,
        "last_schedule_time": None,
        "last_schedule_invocation": None,
        "conditions": [],
        "latest_version": None,  # until the operator records version 1
    }


OLD = "cd" * 32


def _versions_status(isolation_spec: str = "shared") -> dict[str, object]:
    spec = {"timeoutMs": 1000, "memoryMb": 128, "isolation": isolation_spec}
    return ready_status(
        latestVersion=2,
        versions=[
            {"version": 1, "codeSha256": OLD, "spec": spec, "createdAt": "2026-01-01T00:00:00Z"},
            {
                "version": 2,
                "codeSha256": "ab" * 32,
                "spec": {**spec, "timeoutMs": 5000},
                "createdAt": "2026-01-01T00:00:01Z",
                "createdBy": "vortex-api",
            },
        ],
    )


async def test_a_shared_function_splits_and_rolls_back_by_the_operators_versions(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    await deploy(k8s_client, name="v")
    await fake_kube.patch(FUNCTIONS, "v", _versions_status())
    await eventually(lambda: k8s_backend.functions["v"].version == 2)

    doc = (await k8s_client.get("/functions/v/versions")).json()
    assert [(v["version"], v["created_by"]) for v in doc["versions"]] == [
        (1, None),
        (2, "vortex-api"),
    ]
    split = [{"version": 1, "percent": 50}, {"latest": True, "percent": 50, "tag": "new"}]
    response = await k8s_client.put("/functions/v/traffic", json={"traffic": split})
    assert response.status_code == 200, response.text
    assert fake_kube.objects[FUNCTIONS]["v"]["spec"]["traffic"] == split
    assert response.json()["traffic"] == split
    function = k8s_backend.functions["v"]
    old = function.choose("1")
    # the pool loads each version by its own code object, with its own limits
    assert (old.code_object, old.timeout_ms) == (f"functions/{OLD}.js", 1000)
    assert ("x-vortex-code-sha256", OLD) in old.runtime_headers
    assert function.choose("new") is function
    assert {function.choose(None).version for _ in range(4)} == {1, 2}
    bad = await k8s_client.put(
        "/functions/v/traffic", json={"traffic": [{"version": 9, "percent": 100}]}
    )
    assert bad.status_code == 400
    assert "version 9" in bad.json()["error"]["message"]

    async def operator_records_version_3() -> None:
        await eventually(lambda: "codeRef" in fake_kube.objects[FUNCTIONS]["v"]["spec"])
        status = _versions_status()
        versions = status["status"]["versions"]  # type: ignore[index]
        versions.append(
            {"version": 3, "codeSha256": OLD, "spec": versions[0]["spec"], "rollbackOf": 1}
        )
        status["status"].update(latestVersion=3, codeSha256=OLD, codeObject=f"functions/{OLD}.js")  # type: ignore[attr-defined]
        await fake_kube.patch(FUNCTIONS, "v", status)

    rolled, _ = await asyncio.gather(
        k8s_client.post("/functions/v/rollback", json={"version": 1}), operator_records_version_3()
    )
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["latest_version"] == 3
    obj = fake_kube.objects[FUNCTIONS]["v"]
    assert "code" not in obj["spec"]
    assert obj["spec"]["codeRef"] == {
        "s3": {"bucket": "vortex-functions", "key": f"functions/{OLD}.js"}
    }
    assert obj["spec"]["timeoutMs"] == 1000
    assert "traffic" not in obj["spec"]
    assert obj["metadata"]["annotations"]["vortex.dev/rollback"] == f"1 {OLD}"

    missing = await k8s_client.post("/functions/v/rollback", json={"version": 7})
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "VersionNotFound"


async def test_a_warm_functions_older_versions_run_in_the_pool(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    await deploy(k8s_client, name="w", isolation="warm")
    await fake_kube.patch(FUNCTIONS, "w", _versions_status("warm"))
    await eventually(lambda: k8s_backend.functions["w"].version == 2)
    k8s_backend.table.add("w", "http://warm-0")
    k8s_backend.table.add(POOL_GROUP, "http://pool-0")
    split = [{"version": 1, "percent": 50}, {"latest": True, "percent": 50}]
    assert (
        await k8s_client.put("/functions/w/traffic", json={"traffic": split})
    ).status_code == 200
    runtime.handler = lambda request: ok(f"{request.url.host} {request.url.path}")
    outputs = {}
    for _ in range(4):
        answer = await k8s_client.post("/execute/w")
        assert answer.status_code == 200, answer.text
        outputs[answer.headers["x-vortex-version"]] = answer.json()["output"]
    # the latest on its warm pods, the older one in the pool by its own code object
    assert outputs == {"1": f"pool-0 /invoke/functions/{OLD}.js", "2": "warm-0 /invoke"}
    pinned = await k8s_client.post("/execute/w", headers={"X-Vortex-Version": "1"})
    assert pinned.json()["output"] == f"pool-0 /invoke/functions/{OLD}.js"
    assert ("x-vortex-code-sha256", OLD) in runtime.requests[-1].headers.items()


async def test_a_warm_version_the_pool_cannot_run_is_refused_in_a_split(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    await deploy(k8s_client, name="s", isolation="warm")
    status = _versions_status("warm")
    secret_env = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}}]
    status["status"]["versions"][0]["spec"]["env"] = secret_env  # type: ignore[index]
    await fake_kube.patch(FUNCTIONS, "s", status)
    await eventually(lambda: k8s_backend.functions["s"].version == 2)
    split = [{"version": 1, "percent": 50}, {"latest": True, "percent": 50}]
    refused = await k8s_client.put("/functions/s/traffic", json={"traffic": split})
    assert refused.status_code == 400
    assert "would run in the pool" in refused.json()["error"]["message"]
    pinned = await k8s_client.post("/execute/s", headers={"X-Vortex-Version": "1"})
    assert pinned.status_code == 409
    assert pinned.json()["error"]["type"] == "EnvNotPooled"


async def test_a_pod_function_runs_the_version_chosen_at_dispatch(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    await deploy(k8s_client, name="p", isolation="pod")
    await fake_kube.patch(FUNCTIONS, "p", _versions_status("pod"))
    await eventually(lambda: k8s_backend.functions["p"].version == 2)
    split = [{"version": 1, "percent": 100}]
    assert (
        await k8s_client.put("/functions/p/traffic", json={"traffic": split})
    ).status_code == 200
    await eventually(lambda: k8s_backend.functions["p"].traffic.targets != ())
    old = k8s_backend.functions["p"].choose(None)
    assert (old.version, old.code_object, old.timeout_ms) == (1, f"functions/{OLD}.js", 1000)
    assert ("x-vortex-version", "1") in old.runtime_headers


async def test_the_operators_rollout_splits_until_the_spec_sets_a_split(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    rollout = {"steps": [10, 100], "interval": "30s"}
    await deploy(k8s_client, name="r", rollout=rollout)
    assert fake_kube.objects[FUNCTIONS]["r"]["spec"]["rollout"] == rollout
    status = _versions_status()
    status["status"]["rollout"] = {  # type: ignore[index]
        "version": 2,
        "stable": 1,
        "step": 0,
        "percent": 10,
        "since": 0.0,
        "phase": "Progressing",
        "reason": "version 2 at 10%",
    }
    await fake_kube.patch(FUNCTIONS, "r", status)
    await eventually(lambda: k8s_backend.functions["r"].version == 2)
    function = k8s_backend.functions["r"]
    assert [function.choose(None).version for _ in range(10)].count(2) == 1
    assert function.choose("canary").version == 2
    doc = (await k8s_client.get("/functions/r/versions")).json()
    assert doc["traffic"] == [
        {"version": 1, "percent": 90},
        {"version": 2, "percent": 10, "tag": "canary"},
    ]
    # a redeploy without rollout keeps it; a split set by hand wins over it
    await deploy(k8s_client, name="r", code="return 2;")
    assert fake_kube.objects[FUNCTIONS]["r"]["spec"]["rollout"] == rollout
    split = [{"latest": True, "percent": 100}]
    assert (
        await k8s_client.put("/functions/r/traffic", json={"traffic": split})
    ).status_code == 200
    assert {k8s_backend.functions["r"].choose(None).version for _ in range(5)} == {2}


async def test_the_load_report_carries_each_versions_executions_and_failures(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    await deploy(k8s_client, name="c")
    await fake_kube.patch(FUNCTIONS, "c", _versions_status())
    await eventually(lambda: k8s_backend.functions["c"].version == 2)
    k8s_backend.table.add(POOL_GROUP, "http://pool-0")
    failing = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        failing["n"] += 1
        if failing["n"] % 2:
            return httpx.Response(500, json={"error": {"type": "FunctionError", "message": "x"}})
        return ok(1)

    runtime.handler = handler
    for _ in range(4):
        await k8s_client.post("/execute/c", headers={"X-Vortex-Version": "1"})
    report = (await k8s_client.get("/internal/concurrency")).json()
    assert report["functions"]["c"]["versions"] == {"1": [4, 2]}


async def test_a_redeploy_keeps_the_history_limit_unless_given(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube
) -> None:
    await deploy(k8s_client, name="h", revision_history_limit=3)
    assert fake_kube.objects[FUNCTIONS]["h"]["spec"]["revisionHistoryLimit"] == 3
    await deploy(k8s_client, name="h", code="return 2;")
    assert fake_kube.objects[FUNCTIONS]["h"]["spec"]["revisionHistoryLimit"] == 3


async def test_deploy_without_name_uses_a_uuid(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube
) -> None:
    fid = await deploy(k8s_client)
    assert len(fid) == 36
    assert fid in fake_kube.objects[FUNCTIONS]


async def test_redeploy_by_name_patches_the_spec(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube
) -> None:
    await deploy(k8s_client, name="fn", concurrency=4)
    await deploy(k8s_client, code="return 2;", name="fn")

    spec = fake_kube.objects[FUNCTIONS]["fn"]["spec"]
    assert spec["code"] == "return 2;"
    assert "concurrency" not in spec


async def test_status_from_the_operator_is_shown(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    await deploy(k8s_client, name="st")
    await fake_kube.patch(FUNCTIONS, "st", ready_status())
    await eventually(lambda: k8s_backend.functions["st"].ready)

    doc = (await k8s_client.get("/functions/st")).json()
    assert doc["code_sha256"] == "ab" * 32
    assert doc["status"]["phase"] == "Ready"
    assert doc["status"]["ready_replicas"] == 1
    assert [c["type"] for c in doc["status"]["conditions"]] == ["CodeStored", "Available", "Ready"]


async def test_execute_balances_over_ready_pods_only(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, runtime: FakeRuntime
) -> None:
    await deploy(k8s_client, name="web", isolation="warm")
    await fake_kube.put(SLICES, endpoint_slice("web", "10.0.0.1", "10.0.0.2"))
    await fake_kube.put(SLICES, endpoint_slice("web", "10.0.0.9", ready=False, suffix="b"))
    await fake_kube.put(SLICES, endpoint_slice("other", "10.0.0.3"))
    gate = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return ok(request.url.host)

    runtime.handler = slow  # type: ignore[assignment]
    calls = [asyncio.create_task(k8s_client.post("/execute/web", json={})) for _ in range(4)]
    await eventually(lambda: len(runtime.requests) == 4)
    gate.set()
    answers = [(await c).json()["output"] for c in calls]

    assert sorted(answers) == ["10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.2"]
    assert {r.url.path for r in runtime.requests} == {"/invoke"}
    assert {r.url.port for r in runtime.requests} == {8080}
    assert runtime.last.headers["x-vortex-function"] == "web"
    assert "x-vortex-env" not in runtime.last.headers


async def test_first_call_waits_for_a_ready_pod(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, runtime: FakeRuntime
) -> None:
    await deploy(k8s_client, name="cold", isolation="warm")
    call = asyncio.create_task(k8s_client.post("/execute/cold"))
    await asyncio.sleep(0.2)
    assert not call.done()

    await fake_kube.put(SLICES, endpoint_slice("cold", "10.0.1.1", ready=None))
    response = await call

    assert response.status_code == 200
    assert runtime.last.url.host == "10.0.1.1"


async def test_no_ready_pod_within_the_wait_is_503(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    k8s_backend.invoker.readiness_wait_s = 0.1
    await deploy(k8s_client, name="never", isolation="warm")
    await fake_kube.put(SLICES, endpoint_slice("never", "10.0.2.1", ready=False))

    response = await k8s_client.post("/execute/never")

    assert response.status_code == 503
    assert response.json()["error"]["type"] == "NotReady"
    assert "retry-after" in response.headers


async def test_slice_changes_update_the_routing_table(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    await fake_kube.put(SLICES, endpoint_slice("f", "10.0.0.1", "10.0.0.2"))
    await eventually(lambda: len(k8s_backend.table.endpoints("f")) == 2)
    await fake_kube.put(SLICES, endpoint_slice("f", "10.0.0.2"))
    await eventually(lambda: len(k8s_backend.table.endpoints("f")) == 1)
    assert k8s_backend.table.endpoints("f")[0].url == "http://10.0.0.2:8080"
    await fake_kube.remove(SLICES, "vf-f-a")
    await eventually(lambda: not k8s_backend.table.endpoints("f"))


async def test_connect_error_retries_on_another_pod(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, runtime: FakeRuntime
) -> None:
    await deploy(k8s_client, name="r", isolation="warm")
    await fake_kube.put(SLICES, endpoint_slice("r", "10.0.0.1", "10.0.0.2"))

    runtime.handler = refused_by("10.0.0.1", "alive")
    for _ in range(3):
        response = await k8s_client.post("/execute/r")
        assert response.json()["output"] == "alive"


async def test_functions_created_outside_the_api_are_served(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, runtime: FakeRuntime
) -> None:
    await fake_kube.put(
        FUNCTIONS,
        {
            "metadata": {"name": "kubectl-made"},
            "spec": {"code": "x", "timeoutMs": 700, "isolation": "warm"},
        },
    )
    await fake_kube.put(SLICES, endpoint_slice("kubectl-made", "10.0.0.5"))

    response = await k8s_client.post("/execute/kubectl-made")

    assert response.status_code == 200
    assert runtime.last.headers["x-vortex-timeout-ms"] == "700"
    listed = (await k8s_client.get("/functions")).json()["functions"]
    assert [f["function_id"] for f in listed] == ["kubectl-made"]


async def test_delete_removes_the_vortexfunction(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube
) -> None:
    await deploy(k8s_client, name="gone")

    assert (await k8s_client.delete("/functions/gone")).status_code == 204
    assert "gone" not in fake_kube.objects[FUNCTIONS]
    assert (await k8s_client.delete("/functions/gone")).status_code == 404
    assert (await k8s_client.post("/execute/gone")).status_code == 404


async def test_deleted_elsewhere_is_forgotten(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    await deploy(k8s_client, name="elsewhere")
    await fake_kube.remove(FUNCTIONS, "elsewhere")
    await eventually(lambda: "elsewhere" not in k8s_backend.functions)

    assert (await k8s_client.get("/functions/elsewhere")).status_code == 404


async def test_kubernetes_api_failure_is_json_502(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube
) -> None:
    fake_kube.fail[("POST", "vortexfunctions")] = 500

    response = await k8s_client.post("/deploy", json={"code": "return 1;"})

    assert response.status_code == 502
    assert response.json()["error"]["type"] == "KubernetesUnavailable"


async def test_informer_relists_after_an_error(
    fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    fake_kube.fail[("GET", "endpointslices")] = 500
    await fake_kube.put(SLICES, endpoint_slice("w", "10.0.0.8"))

    await k8s_backend.start()
    try:
        await eventually(lambda: bool(k8s_backend.table.endpoints("w")), timeout_s=5)
        assert k8s_backend.ready()
    finally:
        await k8s_backend.stop()

    slice_lists = [p for m, p in fake_kube.requests if m == "GET" and "endpointslices" in p]
    assert len(slice_lists) >= 2


async def test_async_and_schedules_say_they_need_a_queue(k8s_client: httpx.AsyncClient) -> None:
    """With no queue (VORTEX_ASYNC_QUEUE none): `/async` and a schedule answer 501 at once."""
    await deploy(k8s_client, name="hello")
    queued = await k8s_client.post("/async/hello", json={})
    assert queued.status_code == 501
    assert queued.json()["error"]["type"] == "AsyncNotEnabled"
    scheduled = await k8s_client.post(
        "/deploy", json={"code": "return 1;", "name": "tick", "schedule": "@hourly"}
    )
    assert scheduled.status_code == 501
    assert scheduled.json()["error"]["type"] == "AsyncNotEnabled"
