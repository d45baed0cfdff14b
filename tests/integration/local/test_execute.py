"""Deploy and execute on real workers: both code forms, events, context, errors, bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


async def deploy(client: httpx.AsyncClient, code: str, **fields: object) -> str:
    response = await client.post("/deploy", json={"code": code, **fields})
    assert response.status_code == 201, response.text
    function_id: str = response.json()["function_id"]
    return function_id


async def first_records(client: httpx.AsyncClient, function_id: str) -> list[dict[str, Any]]:
    """The function's invocation records, once there are any (they are flushed within 0.2 s)."""
    records: list[dict[str, Any]] = []
    for _ in range(50):
        records = (await client.get(f"/functions/{function_id}/logs")).json()["records"]
        if records:
            break
        await asyncio.sleep(0.1)
    assert records
    return records


async def test_handler_form_gets_event_and_context(client: httpx.AsyncClient) -> None:
    fid = await deploy(
        client,
        "export default async function (event, context) {\n"
        "  return {greeting: `hello ${event.name}`, method: context.method,\n"
        "          query: context.query, env: context.env.MODE, fn: context.functionName,\n"
        "          header: context.headers['x-custom']};\n"
        "}",
        env={"MODE": "test"},
    )

    response = await client.post(
        f"/execute/{fid}?a=1", json={"name": "vortex"}, headers={"X-Custom": "yes"}
    )

    assert response.status_code == 200, response.text
    output = response.json()["output"]
    assert output["greeting"] == "hello vortex"
    assert output["method"] == "POST"
    assert output["env"] == "test"
    assert output["fn"] == fid
    assert output["header"] == "yes"
    assert output["query"] in ({"a": "1"}, "a=1")


async def test_no_body_means_null_event(client: httpx.AsyncClient) -> None:
    fid = await deploy(client, "return event;")
    response = await client.post(f"/execute/{fid}")
    assert response.status_code == 200
    assert response.json()["output"] is None


async def test_function_error_is_500_with_logs(client: httpx.AsyncClient) -> None:
    fid = await deploy(client, 'console.error("about to fail"); throw new Error("boom");')

    response = await client.post(f"/execute/{fid}")

    assert response.status_code == 500
    body = response.json()
    assert body["error"]["type"] == "FunctionError"
    assert "boom" in body["error"]["message"]
    assert [e["message"] for e in body["logs"]] == ["about to fail"]


async def test_compile_error_names_line_and_column(client: httpx.AsyncClient) -> None:
    response = await client.post("/deploy", json={"code": "let a = 1;\nreturn (;"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "CompileError"
    assert error["line"] == 2
    assert f"line 2, column {error['column']}" in error["message"]


async def test_bad_json_event_is_400(client: httpx.AsyncClient) -> None:
    fid = await deploy(client, "return 1;")
    response = await client.post(
        f"/execute/{fid}", content=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "InvalidJSON"


async def test_bad_deploy_input(client: httpx.AsyncClient) -> None:
    bad_json = await client.post(
        "/deploy", content=b"{", headers={"Content-Type": "application/json"}
    )
    missing = await client.post("/deploy", json={"name": "no-code"})
    oversize = await client.post("/deploy", json={"code": "//" + "x" * (1 << 20)})

    assert (bad_json.status_code, bad_json.json()["error"]["type"]) == (400, "InvalidJSON")
    assert (missing.status_code, missing.json()["error"]["type"]) == (400, "InvalidRequest")
    assert "code" in missing.json()["error"]["message"]
    assert (oversize.status_code, oversize.json()["error"]["type"]) == (413, "PayloadTooLarge")


async def test_unknown_ids_are_404(client: httpx.AsyncClient) -> None:
    for response in (
        await client.post("/execute/nope"),
        await client.get("/functions/nope"),
        await client.delete("/functions/nope"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "FunctionNotFound"


async def test_list_get_delete(client: httpx.AsyncClient) -> None:
    fid = await deploy(client, "return 'x';", name="listed-fn", timeout_ms=1000)

    listed = (await client.get("/functions")).json()["functions"]
    doc = (await client.get(f"/functions/{fid}")).json()
    deleted = await client.delete(f"/functions/{fid}")

    assert fid in [f["function_id"] for f in listed]
    assert doc["spec"]["timeout_ms"] == 1000
    assert deleted.status_code == 204
    assert (await client.post(f"/execute/{fid}")).status_code == 404


async def test_metrics_are_served(client: httpx.AsyncClient) -> None:
    fid = await deploy(client, "return 1;", name="metered")
    await client.post(f"/execute/{fid}")
    text = (await client.get("/metrics")).text
    assert 'vortex_executions_total{function="metered",outcome="success"} 1.0' in text
    assert "vortex_deployments_total" in text
