"""GET/DELETE /functions: listing, one function's document, deletion, and persistence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.unit.api.conftest import FakeRuntime
from vortex_api.backends.local import LocalBackend
from vortex_api.settings import Settings


async def test_list_and_get(client: httpx.AsyncClient, deploy: Callable[..., Any]) -> None:
    b = await deploy("return 2;", name="b-fn", timeout_ms=700, cpu_limit_ms=40, env={"K": "v"})
    a = await deploy("return 1;", name="a-fn", concurrency=3)

    listing = (await client.get("/functions")).json()
    one = await client.get("/functions/b-fn")

    assert [f["function_id"] for f in listing["functions"]] == ["a-fn", "b-fn"]
    assert one.status_code == 200
    doc = one.json()
    assert doc["function_id"] == "b-fn"
    assert doc["code_sha256"] == b.code_sha256 != a.code_sha256
    assert len(doc["code_sha256"]) == 64
    assert doc["spec"] == {
        "timeout_ms": 700,
        "memory_mb": 128,
        "cpu_limit_ms": 40,
        "kv": None,
        "egress": None,
        "env": {"K": "v"},
        "isolation": "shared",
        "concurrency": None,
        "replicas": None,
        "scale": None,
        "retry": {
            "maxAttempts": 3,
            "backoff": {"initialSeconds": 1.0, "factor": 2.0, "maxSeconds": 60.0},
            "retryOn": ["CapacityExceeded", "MemoryLimitExceeded", "RuntimeUnavailable", "Timeout"],
            "maxAgeSeconds": 3600,
        },
        "on_success": None,
        "on_failure": None,
        "schedule": None,
        "time_zone": None,
        "schedule_event": None,
        "revision_history_limit": 10,
        "rollout": None,
        "traffic": [],
    }
    assert doc["status"]["latest_version"] == 1
    assert doc["status"]["phase"] == "Ready"
    assert doc["status"]["ready"] is True
    assert doc["created_at"]


async def test_get_unknown_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/functions/unknown")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "FunctionNotFound"


async def test_delete_removes_function_and_unused_code(
    client: httpx.AsyncClient, deploy: Callable[..., Any], settings: Settings
) -> None:
    one = await deploy("return 'shared';", name="one")
    await deploy("return 'shared';", name="two")
    code_file = settings.data_dir / "code" / f"{one.code_sha256}.js"

    assert (await client.delete("/functions/one")).status_code == 204
    assert code_file.exists()  # still used by "two"
    assert (await client.delete("/functions/two")).status_code == 204
    assert not code_file.exists()
    assert (await client.delete("/functions/two")).status_code == 404
    assert (await client.post("/execute/two")).status_code == 404
    assert (await client.get("/functions")).json() == {"functions": []}


async def test_redeploy_by_name_replaces_code_and_keeps_the_old_as_a_version(
    client: httpx.AsyncClient, deploy: Callable[..., Any], settings: Settings
) -> None:
    first = await deploy("return 1;", name="fn")
    second = await deploy("return 2;", name="fn")

    assert second.created_at == first.created_at
    assert (settings.data_dir / "code" / f"{first.code_sha256}.js").exists()  # version 1
    doc = (await client.get("/functions/fn")).json()
    assert doc["code_sha256"] == second.code_sha256
    assert doc["status"]["latest_version"] == 2

    await deploy("return 3;", name="fn", revision_history_limit=1)
    assert not (settings.data_dir / "code" / f"{first.code_sha256}.js").exists()
    assert not (settings.data_dir / "code" / f"{second.code_sha256}.js").exists()


async def test_functions_survive_a_restart(
    client: httpx.AsyncClient,
    settings: Settings,
    runtime: FakeRuntime,
    deploy: Callable[..., Any],
) -> None:
    fn = await deploy("return 1;", timeout_ms=900, cpu_limit_ms=25, env={"A": "b"})
    (settings.data_dir / "functions" / "garbage.json").write_text("{not json")

    again = LocalBackend(settings, runtime.transport(), supervise=False)
    await again.start()
    try:
        restored = await again.resolve(fn.function_id)
        listed = await again.list()
    finally:
        await again.stop()

    assert [f.function_id for f in listed] == [fn.function_id]
    assert restored.code_sha256 == fn.code_sha256
    assert restored.timeout_ms == 900
    assert restored.cpu_limit_ms == 25
    assert ("x-vortex-cpu-limit-ms", "25") in restored.runtime_headers
    assert restored.env == {"A": "b"}
    assert restored.runtime_headers == fn.runtime_headers
