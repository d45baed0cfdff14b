"""`isolation: pod`: each execution runs in a one-shot Pod, which is deleted afterwards (once its
invocation record is copied to the API's stdout)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.unit.api.conftest import FakeRuntime, ok
from tests.unit.api.helpers import eventually
from tests.unit.api.kube_fixtures import FUNCTIONS, NS, PODS
from tests.unit.api.test_kubernetes_backend import ready_status
from tests.unit.fake_kube import FakeKube
from vortex_api.backends.kubernetes import KubernetesBackend
from vortex_api.settings import Settings
from vortex_runtime.records import encode
from vortex_runtime.settings import MinioSettings


@pytest.fixture
def k8s_settings(k8s_settings: Settings) -> Settings:
    k8s_settings.minio = MinioSettings(endpoint="minio.vortex:9000", bucket="fns")
    return k8s_settings


async def deploy_pod_function(
    client: httpx.AsyncClient, fake: FakeKube, backend: KubernetesBackend, **spec: object
) -> None:
    response = await client.post(
        "/deploy",
        json={"code": "return 1;", "name": "iso", "isolation": "pod", "timeout_ms": 2500},
    )
    assert response.status_code == 201
    await fake.patch(FUNCTIONS, "iso", {"spec": spec, **ready_status()})
    await eventually(lambda: backend.functions["iso"].code_object is not None)


async def kubelet(fake: FakeKube, *, ip: str = "10.9.0.7", phase: str = "Running") -> str:
    """Wait for the execution pod and give it an IP, as the kubelet would."""
    await fake.wait_for(lambda: bool(fake.objects[PODS]))
    name = next(iter(fake.objects[PODS]))
    await fake.patch(PODS, name, {"status": {"phase": phase, "podIP": ip}})
    return name


async def test_execution_runs_in_a_one_shot_pod(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    await deploy_pod_function(
        k8s_client,
        fake_kube,
        k8s_backend,
        env=[
            {"name": "PLAIN", "value": "v"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ],
        resources={"limits": {"cpu": "500m", "memory": "256Mi"}},
    )
    runtime.handler = lambda request: (
        httpx.Response(200, text="ok") if request.url.path == "/readyz" else ok("isolated")
    )

    call = asyncio.create_task(k8s_client.post("/execute/iso", json={"x": 1}))
    name = await kubelet(fake_kube)
    pod = fake_kube.objects[PODS][name]
    response = await call

    assert response.status_code == 200
    assert response.json()["output"] == "isolated"
    assert name.startswith("vf-iso-")
    spec = pod["spec"]
    assert spec["activeDeadlineSeconds"] == 3
    assert spec["restartPolicy"] == "Never"
    container = spec["containers"][0]
    assert container["image"] == "registry.local/vortex-runtime:test"
    assert container["resources"] == {"limits": {"cpu": "500m", "memory": "256Mi"}}
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["VORTEX_CODE_KEY"] == f"functions/{'ab' * 32}.js"
    assert env["VORTEX_CODE_SHA256"] == "ab" * 32
    assert env["MINIO_ENDPOINT"] == "minio.vortex:9000"
    assert env["MINIO_BUCKET"] == "fns"
    assert {"MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"} <= set(env)
    assert env["VORTEX_ENV_PLAIN"] == "v"
    assert env["VORTEX_ENV_TOKEN"] == {"secretKeyRef": {"name": "s", "key": "k"}}
    assert pod["metadata"]["labels"]["vortex.dev/function"] == "iso"
    invoke = [r for r in runtime.requests if r.url.path == "/invoke"]
    assert len(invoke) == 1
    assert invoke[0].url.host == "10.9.0.7"
    assert invoke[0].content == b'{"x":1}'
    await fake_kube.wait_for(lambda: name not in fake_kube.objects[PODS])
    metrics = (await k8s_client.get("/metrics")).text
    assert 'vortex_cold_starts_total{function="iso",kind="pod"} 1.0' in metrics


async def test_failed_pod_is_502_and_deleted(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    await deploy_pod_function(k8s_client, fake_kube, k8s_backend)

    call = asyncio.create_task(k8s_client.post("/execute/iso"))
    name = await kubelet(fake_kube, phase="Failed")
    response = await call

    assert response.status_code == 502
    assert response.json()["error"]["type"] == "RuntimeUnavailable"
    await fake_kube.wait_for(lambda: name not in fake_kube.objects[PODS])


async def test_pod_that_never_gets_ready_is_503(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    k8s_settings: Settings,
) -> None:
    await deploy_pod_function(k8s_client, fake_kube, k8s_backend)
    k8s_settings.readiness_wait_s = 0.3

    response = await k8s_client.post("/execute/iso")

    assert response.status_code == 503
    assert response.json()["error"]["type"] == "NotReady"
    await fake_kube.wait_for(lambda: not fake_kube.objects[PODS])


async def test_code_not_stored_yet_is_503(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube
) -> None:
    response = await k8s_client.post(
        "/deploy", json={"code": "return 1;", "name": "fresh", "isolation": "pod"}
    )
    assert response.status_code == 201

    response = await k8s_client.post("/execute/fresh")

    assert response.status_code == 503
    assert not fake_kube.objects[PODS]


class Lines:
    """Stands for the API's stdout writer of one-shot pods' records."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.written: list[bytes] = []  # on stdout: flushed

    def write(self, line: bytes) -> None:
        self.lines.append(line)

    def flush(self) -> None:
        self.written = list(self.lines)


@pytest.fixture
async def kept(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> Lines:
    """The pod function deployed, and what its pods' records are copied to."""
    await deploy_pod_function(k8s_client, fake_kube, k8s_backend)
    assert k8s_backend.pods is not None
    lines = Lines()
    k8s_backend.pods.records = lines  # type: ignore[assignment]
    return lines


async def test_a_one_shot_pods_record_is_kept_before_the_pod_is_deleted(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, runtime: FakeRuntime, kept: Lines
) -> None:
    written: list[bytes] = []

    def serve(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/readyz":
            return httpx.Response(200, text="ok")
        # The runtime writes the record on its stdout, after a line of its own.
        invocation_id = request.headers["x-vortex-invocation-id"]
        record = encode(invocation_id, "iso", "ab" * 32, time.time(), 2.0, None, b"[]")
        written.append(record)
        name = next(iter(fake_kube.objects[PODS]))
        fake_kube.write_log(NS, name, b'{"level":"info","msg":"serving"}', record.rstrip(b"\n"))
        return ok("isolated")

    runtime.handler = serve
    call = asyncio.create_task(k8s_client.post("/execute/iso"))
    name = await kubelet(fake_kube)
    response = await call
    assert response.status_code == 200
    assert name in fake_kube.objects[PODS]  # still there: its record is read first

    await fake_kube.wait_for(lambda: name not in fake_kube.objects[PODS])
    assert kept.lines == written
    # On stdout before the pod (and its own log) went: never a moment without the record.
    assert kept.written == written
    assert response.headers["x-vortex-invocation-id"] in kept.lines[0].decode()
    assert (
        "GET",
        f"/api/v1/namespaces/{NS}/pods/{name}/log?container=runtime",
    ) in fake_kube.requests


async def test_a_pod_that_never_answered_has_no_record_to_keep(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_settings: Settings, kept: Lines
) -> None:
    k8s_settings.readiness_wait_s = 0.3

    response = await k8s_client.post("/execute/iso")

    assert response.status_code == 503
    await fake_kube.wait_for(lambda: not fake_kube.objects[PODS])
    assert kept.lines == []
    assert not [path for _, path in fake_kube.requests if path.endswith("/log")]
