"""POST/GET /execute/{id}: the event goes to the runtime and its answer comes back unchanged."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from tests.unit.api.conftest import FakeRuntime, ok


async def test_success_passes_runtime_answer_through(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any]
) -> None:
    fn = await deploy('console.log("Hello Vortex!"); return 42;')
    logs = [{"timestamp": "2024-01-01T12:00:00.000Z", "level": "log", "message": "Hello Vortex!"}]
    runtime.handler = lambda request: ok(42, logs=logs)

    response = await client.post(f"/execute/{fn.function_id}")

    assert response.status_code == 200
    assert response.json() == {"output": 42, "logs": logs, "execution_time_ms": 0.25}
    assert response.headers["content-type"] == "application/json"
    assert len(response.headers["x-vortex-invocation-id"]) == 32


async def test_body_becomes_the_event(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any]
) -> None:
    fn = await deploy("return event;")

    response = await client.post(f"/execute/{fn.function_id}", json={"name": "vortex"})

    assert response.json()["output"] == {"name": "vortex"}
    assert runtime.last.content == b'{"name":"vortex"}'


async def test_runtime_request_carries_function_settings_and_request(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any]
) -> None:
    fn = await deploy("return 1;", timeout_ms=1234, memory_mb=64, env={"GREETING": "hi"})

    response = await client.post(
        f"/execute/{fn.function_id}?a=1&b=two",
        json=None,
        headers={"X-Custom": "yes", "X-Vortex-Timeout-Ms": "999999", "Authorization": "x"},
    )

    assert response.status_code == 200
    sent = runtime.last
    assert sent.method == "POST"
    assert sent.url.path == f"/invoke/{fn.code_sha256}.js"
    assert sent.url.host == "worker-0"
    assert sent.headers["x-vortex-function"] == fn.function_id
    assert sent.headers.get_list("x-vortex-timeout-ms") == ["1234"]
    assert sent.headers["x-vortex-memory-mb"] == "64"
    assert json.loads(sent.headers["x-vortex-env"]) == {"GREETING": "hi"}
    assert sent.headers["x-vortex-method"] == "POST"
    assert sent.headers["x-vortex-path"] == f"/execute/{fn.function_id}"
    assert sent.headers["x-vortex-query"] == "a=1&b=two"
    assert sent.headers["x-vortex-invocation-id"] == response.headers["x-vortex-invocation-id"]
    assert sent.headers["x-custom"] == "yes"
    assert "authorization" not in sent.headers


async def test_get_runs_with_no_body(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any]
) -> None:
    fn = await deploy("return context.method;")
    runtime.handler = lambda request: ok(request.headers["x-vortex-method"])

    response = await client.get(f"/execute/{fn.function_id}")

    assert response.json()["output"] == "GET"
    assert runtime.last.content == b""


async def test_unknown_function_is_404(client: httpx.AsyncClient, runtime: FakeRuntime) -> None:
    response = await client.post("/execute/does-not-exist", json={})

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "FunctionNotFound"
    assert runtime.requests == []


async def test_oversize_event_is_413(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any], settings: Any
) -> None:
    fn = await deploy()
    settings.max_event_bytes = 100

    response = await client.post(f"/execute/{fn.function_id}", content=b"[" + b"1," * 100 + b"1]")

    assert response.status_code == 413
    assert response.json()["error"]["type"] == "PayloadTooLarge"
    assert runtime.requests == []
