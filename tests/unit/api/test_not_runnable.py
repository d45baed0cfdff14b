"""A function that exists but cannot run says why at once (409 with the operator's reason, or 503
StorageUnavailable), and each kind of Kubernetes failure maps to one API status."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.unit.api.conftest import FakeRuntime, ok
from tests.unit.api.helpers import eventually
from tests.unit.api.kube_fixtures import FUNCTIONS, SLICES, endpoint_slice
from tests.unit.api.test_kubernetes_backend import ready_status
from tests.unit.fake_kube import FakeKube
from vortex_api.backends.kubernetes import KubernetesBackend
from vortex_api.settings import Settings


@pytest.fixture
def k8s_settings(k8s_settings: Settings) -> Settings:
    # A wait for readiness would show as a 30 s answer: the checks below must not wait at all.
    k8s_settings.readiness_wait_s = 30.0
    return k8s_settings


def failed_status(reason: str, message: str, **extra: object) -> dict[str, object]:
    return {
        "status": {
            "phase": "Failed",
            "codeSha256": None,
            "conditions": [
                {"type": "CodeStored", "status": "False", "reason": reason, "message": message},
                {"type": "Available", "status": "False", "reason": "NoDeployment"},
                {"type": "Ready", "status": "False", "reason": reason, "message": message},
            ],
            **extra,
        }
    }


async def put_function(
    fake: FakeKube, backend: KubernetesBackend, name: str, status: dict[str, object]
) -> None:
    obj = {"metadata": {"name": name}, "spec": {"code": "return (;", "isolation": "warm"}, **status}
    await fake.put(FUNCTIONS, obj)
    await eventually(lambda: name in backend.functions)


@pytest.mark.parametrize("isolation", ["shared", "warm", "pod"])
async def test_code_that_does_not_compile_is_409_compile_error_at_once(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    isolation: str,
) -> None:
    message = "line 1, column 9: SyntaxError: Unexpected token ';'"
    status = failed_status(
        "CompileError", message, compileError={"line": 1, "column": 9, "message": message}
    )
    status["spec"] = {"code": "return (;", "isolation": isolation}
    await put_function(fake_kube, k8s_backend, "broken", status)

    async with asyncio.timeout(5):
        response = await k8s_client.post("/execute/broken")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["type"] == "CompileError"
    assert "line 1, column 9" in error["message"]
    assert (error["line"], error["column"]) == (1, 9)


@pytest.mark.parametrize("reason", ["CodeRefInvalid", "StorageError"])
async def test_other_failures_the_user_must_fix_are_409(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend, reason: str
) -> None:
    await put_function(fake_kube, k8s_backend, "broken", failed_status(reason, "no such key"))

    async with asyncio.timeout(5):
        response = await k8s_client.post("/execute/broken")

    assert response.status_code == 409
    assert response.json()["error"]["type"] == reason
    assert "no such key" in response.json()["error"]["message"]


async def test_storage_outage_is_503_storage_unavailable_at_once(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    status = failed_status("StorageUnavailable", "MinIO is unreachable")
    await put_function(fake_kube, k8s_backend, "waiting", status)

    async with asyncio.timeout(5):
        response = await k8s_client.post("/execute/waiting")

    assert response.status_code == 503
    assert response.json()["error"]["type"] == "StorageUnavailable"
    assert response.headers["retry-after"] == "1"


async def test_a_compile_error_while_older_code_serves_still_runs_the_old_code(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    k8s_backend: KubernetesBackend,
    runtime: FakeRuntime,
) -> None:
    status = ready_status()
    status["status"]["conditions"][0] = {  # type: ignore[index]
        "type": "CodeStored",
        "status": "False",
        "reason": "CompileError",
        "message": "line 1, column 1: bad",
    }
    await put_function(fake_kube, k8s_backend, "old", status)
    await fake_kube.put(SLICES, endpoint_slice("old", "10.0.0.9"))
    runtime.handler = lambda request: ok("old code")

    response = await k8s_client.post("/execute/old")

    assert response.status_code == 200
    assert response.json()["output"] == "old code"


@pytest.mark.parametrize(
    ("status", "api_status", "error_type"),
    [
        (422, 400, "InvalidRequest"),
        (400, 400, "InvalidRequest"),
        (403, 502, "KubernetesForbidden"),
        (401, 502, "KubernetesForbidden"),
        (409, 409, "Conflict"),
        (500, 502, "KubernetesUnavailable"),
        (429, 502, "KubernetesUnavailable"),
    ],
)
async def test_each_kubernetes_failure_kind_has_one_api_status(
    k8s_client: httpx.AsyncClient,
    fake_kube: FakeKube,
    status: int,
    api_status: int,
    error_type: str,
) -> None:
    fake_kube.fail[("POST", "vortexfunctions")] = status

    # No name: a 409 on create cannot be a redeploy, so it is the Conflict it says.
    response = await k8s_client.post("/deploy", json={"code": "return 1;"})

    assert response.status_code == api_status, response.text
    assert response.json()["error"]["type"] == error_type


async def test_a_missing_function_on_lookup_is_404(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube
) -> None:
    response = await k8s_client.post("/execute/nobody")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "FunctionNotFound"
