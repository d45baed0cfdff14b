"""POST /deploy: the seed's contract (201 + function_id), compile errors and input checks."""

from __future__ import annotations

import uuid

import httpx
import pytest

from vortex_api.settings import Settings


async def test_deploy_answers_201_with_a_uuid(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await client.post(
        "/deploy", json={"code": 'console.log("Hello Vortex!"); return 42;'}
    )

    assert response.status_code == 201
    body = response.json()
    assert list(body) == ["function_id"]
    assert str(uuid.UUID(body["function_id"])) == body["function_id"]
    doc = (await client.get(f"/functions/{body['function_id']}")).json()
    stored = settings.data_dir / "code" / f"{doc['code_sha256']}.js"
    assert stored.read_text() == 'console.log("Hello Vortex!"); return 42;'
    assert doc["spec"]["timeout_ms"] == 5000
    assert "vortex_deployments_total 1.0" in (await client.get("/metrics")).text


async def test_deploy_with_name_and_settings(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/deploy",
        json={
            "code": "export default async (event) => event;",
            "name": "echo",
            "timeout_ms": 2000,
            "memory_mb": 64,
            "env": {"MODE": "test"},
        },
    )

    assert response.status_code == 201
    assert response.json() == {"function_id": "echo"}
    spec = (await client.get("/functions/echo")).json()["spec"]
    assert (spec["timeout_ms"], spec["memory_mb"], spec["env"]) == (2000, 64, {"MODE": "test"})


async def test_syntax_error_is_400_naming_line_and_column(client: httpx.AsyncClient) -> None:
    response = await client.post("/deploy", json={"code": "let a = 1;\nreturn (;"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "CompileError"
    assert error["line"] == 2
    assert isinstance(error["column"], int)
    assert "line 2" in error["message"]
    assert f"column {error['column']}" in error["message"]
    assert (await client.get("/functions")).json() == {"functions": []}


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        (b"{not json", "InvalidJSON"),
        (b"", "InvalidJSON"),
        (b"{}", "InvalidRequest"),
        (b'{"code": 42}', "InvalidRequest"),
        (b'{"code": ""}', "InvalidRequest"),
        (b'{"code": "return 1;", "extra": 1}', "InvalidRequest"),
        (b'{"code": "return 1;", "name": "Not_A_Name"}', "InvalidRequest"),
        (b'{"code": "return 1;", "timeout_ms": 0}', "InvalidRequest"),
        (b'{"code": "return 1;", "timeout_ms": 999999999}', "InvalidRequest"),
        (b'{"code": "return 1;", "memory_mb": 999999}', "InvalidRequest"),
        (b'{"code": "return 1;", "env": {"1BAD": "x"}}', "InvalidRequest"),
        (b'{"code": "return 1;", "env": {"A": 1}}', "InvalidRequest"),
        (b'{"code": "return 1;", "isolation": "pod"}', "InvalidRequest"),
        (b"[1]", "InvalidRequest"),
        (b'{"code": "return 1;", "retry": {"maxAttempts": 0}}', "InvalidRequest"),
        (b'{"code": "return 1;", "retry": {"retryOn": ["Nope"]}}', "InvalidRequest"),
        (b'{"code": "return 1;", "on_failure": "Bad_Name"}', "InvalidRequest"),
        (b'{"code": "return 1;", "schedule": "61 * * * *"}', "InvalidRequest"),
        (b'{"code": "return 1;", "schedule": "* * *"}', "InvalidRequest"),
        (b'{"code": "return 1;", "schedule": "@daily", "time_zone": "Mars/X"}', "InvalidRequest"),
        (b'{"code": "return 1;", "time_zone": "UTC"}', "InvalidRequest"),
        (b'{"code": "return 1;", "schedule": "@daily", "schedule_event": [1]}', "InvalidRequest"),
    ],
)
async def test_bad_input_is_400(client: httpx.AsyncClient, body: bytes, error_type: str) -> None:
    response = await client.post(
        "/deploy", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == error_type
    assert error["message"]


async def test_oversize_code_is_413(client: httpx.AsyncClient, settings: Settings) -> None:
    settings.max_code_bytes = 1000
    response = await client.post("/deploy", json={"code": "//" + "x" * 1000})
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "PayloadTooLarge"
