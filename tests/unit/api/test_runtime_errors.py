"""How runtime answers and transport failures map onto the API's status table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.unit.api.conftest import FakeRuntime
from vortex_api.backends.local import LocalBackend
from vortex_api.backends.supervisor import GROUP


def runtime_error(status: int, error_type: str, **headers: str) -> httpx.Response:
    body = {"error": {"type": error_type, "message": "m"}, "logs": [], "execution_time_ms": 1}
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("runtime_status", "error_type", "api_status"),
    [
        (400, "InvalidJSON", 400),
        (413, "OutputTooLarge", 413),
        (500, "FunctionError", 500),
        (500, "CompileError", 500),
        (504, "Timeout", 504),
        (507, "MemoryLimitExceeded", 500),
    ],
)
async def test_runtime_error_status_is_mapped_and_body_kept(
    client: httpx.AsyncClient,
    runtime: FakeRuntime,
    deploy: Callable[..., Any],
    runtime_status: int,
    error_type: str,
    api_status: int,
) -> None:
    fn = await deploy()
    runtime.handler = lambda request: runtime_error(runtime_status, error_type)

    response = await client.post(f"/execute/{fn.function_id}")

    assert response.status_code == api_status
    assert response.json()["error"] == {"type": error_type, "message": "m"}
    assert response.json()["logs"] == []


async def test_runtime_busy_is_503_with_retry_after(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any]
) -> None:
    fn = await deploy()
    runtime.handler = lambda request: runtime_error(503, "RuntimeBusy", **{"Retry-After": "2"})

    response = await client.post(f"/execute/{fn.function_id}")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["type"] == "RuntimeBusy"


@pytest.mark.parametrize("status", [404, 302, 418])
async def test_unexpected_runtime_status_is_502(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any], status: int
) -> None:
    fn = await deploy()
    runtime.handler = lambda request: httpx.Response(status, text="nope")

    response = await client.post(f"/execute/{fn.function_id}")

    assert response.status_code == 502
    assert response.json()["error"]["type"] == "RuntimeUnavailable"


async def test_unreachable_runtime_is_502(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any]
) -> None:
    fn = await deploy()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    runtime.handler = refuse

    response = await client.post(f"/execute/{fn.function_id}")

    assert response.status_code == 502
    body = response.json()
    assert body["error"]["type"] == "RuntimeUnavailable"
    assert "Traceback" not in response.text


async def test_connect_error_is_retried_on_another_worker(
    client: httpx.AsyncClient,
    runtime: FakeRuntime,
    backend: LocalBackend,
    deploy: Callable[..., Any],
) -> None:
    backend.table.add(GROUP, "http://worker-1")
    fn = await deploy()

    def only_worker_1(request: httpx.Request) -> httpx.Response:
        if request.url.host != "worker-1":
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"output": 1, "logs": [], "execution_time_ms": 0})

    runtime.handler = only_worker_1

    for _ in range(3):
        response = await client.post(f"/execute/{fn.function_id}")
        assert response.status_code == 200
    assert all(ep.inflight == 0 for ep in backend.table.endpoints(GROUP))


async def test_failure_after_sending_is_not_retried(
    client: httpx.AsyncClient,
    runtime: FakeRuntime,
    backend: LocalBackend,
    deploy: Callable[..., Any],
) -> None:
    backend.table.add(GROUP, "http://worker-1")
    fn = await deploy()

    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("server disconnected", request=request)

    runtime.handler = drop

    response = await client.post(f"/execute/{fn.function_id}")

    assert response.status_code == 502
    assert len(runtime.requests) == 1


async def test_runtime_silence_past_deadline_is_504(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any]
) -> None:
    fn = await deploy(timeout_ms=50)

    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    runtime.handler = hang

    response = await client.post(f"/execute/{fn.function_id}")

    assert response.status_code == 504
    assert response.json()["error"]["type"] == "Timeout"


async def test_no_ready_worker_is_503_not_ready(
    client: httpx.AsyncClient, backend: LocalBackend, deploy: Callable[..., Any]
) -> None:
    fn = await deploy()
    backend.table.remove(GROUP, "http://worker-0")

    response = await client.post(f"/execute/{fn.function_id}")

    assert response.status_code == 503
    assert response.json()["error"]["type"] == "NotReady"
    assert response.headers["retry-after"] == "1"


async def test_connect_error_waits_for_the_replacement_runtime(
    client: httpx.AsyncClient,
    runtime: FakeRuntime,
    backend: LocalBackend,
    deploy: Callable[..., Any],
) -> None:
    fn = await deploy()

    def dead_worker_0(request: httpx.Request) -> httpx.Response:
        if request.url.host == "worker-0":
            # The worker died; its replacement registers under a new address.
            backend.table.remove(GROUP, "http://worker-0")
            backend.table.add(GROUP, "http://worker-0-restarted")
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"output": "back", "logs": [], "execution_time_ms": 0})

    runtime.handler = dead_worker_0

    response = await client.post(f"/execute/{fn.function_id}")

    assert response.status_code == 200
    assert [r.url.host for r in runtime.requests] == ["worker-0", "worker-0-restarted"]
