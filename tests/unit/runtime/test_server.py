"""The runtime's HTTP protocol, through the ASGI app with real isolates behind it."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest


@pytest.fixture
async def echo(client_for, code_file) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return await client_for(
        code_file=code_file("console.info('got', event); return {event, context};"),
        function_name="echo",
    )


async def test_invoke_returns_output_logs_and_time(echo: httpx.AsyncClient) -> None:
    response = await echo.post("/invoke", json={"a": [1, 2]})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"output", "logs", "execution_time_ms", "cpu_time_ms"}
    assert body["output"]["event"] == {"a": [1, 2]}
    assert body["logs"][0]["message"] == "got { a: [ 1, 2 ] }"
    assert body["logs"][0]["level"] == "info"
    assert isinstance(body["execution_time_ms"], float)


async def test_context_from_request_and_forwarding_headers(echo: httpx.AsyncClient) -> None:
    response = await echo.post(
        "/invoke?local=1",
        content=b"",
        headers={
            "x-vortex-method": "GET",
            "x-vortex-path": "/execute/echo",
            "x-vortex-query": "a=1&b=two",
            "x-vortex-invocation-id": "inv-1",
            "x-custom": "yes",
        },
    )
    context = response.json()["output"]["context"]
    assert response.json()["output"]["event"] is None
    assert context["method"] == "GET"
    assert context["path"] == "/execute/echo"
    assert context["query"] == {"a": "1", "b": "two"}
    assert context["headers"]["x-custom"] == "yes"
    assert not any(k.startswith("x-vortex") for k in context["headers"])
    assert context["invocationId"] == "inv-1"
    assert context["functionName"] == "echo"


async def test_env_variables_reach_context(client_for, code_file, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("VORTEX_ENV_GREETING", "hi")
    client = await client_for(code_file=code_file("return context.env"))
    assert (await client.post("/invoke")).json()["output"] == {"GREETING": "hi"}


async def test_bad_json_is_400(echo: httpx.AsyncClient) -> None:
    response = await echo.post("/invoke", content=b"{nope")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "InvalidJSON"


async def test_oversized_event_is_413(client_for, code_file) -> None:  # type: ignore[no-untyped-def]
    client = await client_for(code_file=code_file("return 1"), max_event_bytes=1000)
    response = await client.post("/invoke", content=json.dumps("x" * 2000).encode())
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "PayloadTooLarge"


async def test_function_error_is_500_with_name_message_stack_and_logs(
    client_for, code_file
) -> None:  # type: ignore[no-untyped-def]
    client = await client_for(code_file=code_file("console.log('before');\nnull.x;"))
    response = await client.post("/invoke")
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["type"] == "FunctionError"
    assert body["error"]["name"] == "TypeError"
    assert "function.js:2" in body["error"]["stack"]
    assert body["logs"][0]["message"] == "before"
    assert "execution_time_ms" in body


async def test_output_too_large_is_413(client_for, code_file) -> None:  # type: ignore[no-untyped-def]
    client = await client_for(code_file=code_file("return 'x'.repeat(5000)"), max_output_bytes=1000)
    response = await client.post("/invoke")
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "OutputTooLarge"


async def test_bad_headers_are_400(echo: httpx.AsyncClient) -> None:
    for headers in (
        {"x-vortex-timeout-ms": "soon"},
        {"x-vortex-timeout-ms": "0"},
        {"x-vortex-env": "[1]"},
        {"x-vortex-memory-mb": "1"},
    ):
        response = await echo.post("/invoke", headers=headers)
        assert response.status_code == 400, headers
        assert response.json()["error"]["type"] == "InvalidRequest"


async def test_unknown_route_and_method(echo: httpx.AsyncClient) -> None:
    assert (await echo.get("/nope")).status_code == 404
    response = await echo.get("/invoke")
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "MethodNotAllowed"


async def test_health_ready_and_metrics(echo: httpx.AsyncClient) -> None:
    assert (await echo.get("/healthz")).json() == {"status": "ok"}
    assert (await echo.get("/readyz")).status_code == 200
    await echo.post("/invoke", json=1)
    text = (await echo.get("/metrics")).text
    for name in (
        'vortex_runtime_invocations_total{outcome="ok"}',
        "vortex_runtime_invocation_seconds_bucket",
        "vortex_runtime_inflight",
        "vortex_runtime_isolate_heap_bytes",
        "vortex_runtime_isolate_recycles_total",
    ):
        assert name in text


async def test_compile_error_keeps_pod_unready(client_for, code_file) -> None:  # type: ignore[no-untyped-def]
    client = await client_for(code_file=code_file("let = ;"), wait_ready=False)
    await asyncio.sleep(0.3)
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert "does not compile" in ready.json()["error"]["message"]
    response = await client.post("/invoke")
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "NotReady"


async def test_missing_code_file_unready_then_ready_when_it_appears(client_for, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "late.js"
    client = await client_for(code_file=path, wait_ready=False)
    await asyncio.sleep(0.2)
    assert (await client.get("/readyz")).status_code == 503
    path.write_text("return 'late'")
    for _ in range(100):
        if (await client.get("/readyz")).status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert (await client.post("/invoke")).json()["output"] == "late"


async def test_many_function_mode_by_key_with_cold_start_header(client_for, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.js").write_text("return 'a'")
    (tmp_path / "b.js").write_text("export default () => 'b'")
    client = await client_for(store_dir=tmp_path)
    first = await client.post("/invoke/a.js")
    second = await client.post("/invoke/a.js")
    assert first.json()["output"] == "a"
    assert first.headers.get("x-vortex-cold-start") == "1"
    assert "x-vortex-cold-start" not in second.headers
    assert (await client.post("/invoke/b.js")).json()["output"] == "b"
    missing = await client.post("/invoke/nope.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "FunctionNotFound"
    traversal = await client.post("/invoke/..%2f..%2fetc%2fpasswd")
    assert traversal.status_code in (400, 404)
    assert (await client.post("/invoke")).status_code == 503


async def test_many_function_mode_checks_sha256(client_for, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from vortex_runtime import sha256_hex

    (tmp_path / "f.js").write_text("return 1")
    client = await client_for(store_dir=tmp_path)
    bad = await client.post("/invoke/f.js", headers={"x-vortex-code-sha256": "0" * 64})
    assert bad.status_code == 503
    assert "Checksum mismatch" in bad.json()["error"]["message"]
    good = await client.post(
        "/invoke/f.js", headers={"x-vortex-code-sha256": sha256_hex(b"return 1")}
    )
    assert good.status_code == 200


async def test_per_invocation_timeout_header(client_for, code_file) -> None:  # type: ignore[no-untyped-def]
    client = await client_for(
        code_file=code_file("await new Promise(r => setTimeout(r, 300)); return 1")
    )
    assert (await client.post("/invoke", headers={"x-vortex-timeout-ms": "100"})).status_code == 504
    assert (
        await client.post("/invoke", headers={"x-vortex-timeout-ms": "1000"})
    ).status_code == 200


async def test_warm_prepares_an_isolate_before_the_first_call(client_for, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "w.js").write_text("return 'warm'")
    client = await client_for(store_dir=tmp_path)
    warmed = await client.post("/warm/w.js")
    assert warmed.json() == {"warm": True, "started": True}
    assert (await client.post("/warm/w.js")).json()["started"] is False
    first = await client.post("/invoke/w.js")
    assert first.json()["output"] == "warm"
    assert "x-vortex-cold-start" not in first.headers
    assert (await client.post("/warm/missing.js")).status_code == 404


async def test_warm_in_single_function_mode_starts_nothing(client_for, code_file) -> None:  # type: ignore[no-untyped-def]
    client = await client_for(code_file=code_file("return 1"))
    warmed = await client.post("/warm/anything")
    assert warmed.status_code == 200
    assert warmed.json() == {"warm": True, "started": False}


async def test_warm_in_single_function_mode_is_503_until_ready(client_for, tmp_path) -> None:  # type: ignore[no-untyped-def]
    client = await client_for(code_file=tmp_path / "absent.js", wait_ready=False)
    await asyncio.sleep(0.1)
    response = await client.post("/warm/anything")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["type"] == "NotReady"
    assert error["message"].startswith("The function is not ready: ")
    assert "does not exist" in error["message"]
    bad = await client.post("/warm/anything", headers={"x-vortex-timeout-ms": "x"})
    assert bad.status_code == 400  # headers are checked first, as in many-function mode
