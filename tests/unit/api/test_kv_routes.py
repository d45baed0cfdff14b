"""The API's KV routes against a fake runtime: what each sends to the runtime's `/kv/{space}`,
and how the runtime's answers and failures become the API's."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from .conftest import FakeRuntime


def _answer(status: int, body: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=body)


async def test_each_route_is_one_operation_on_the_functions_keyspace(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any]
) -> None:
    await deploy(name="own")
    await deploy(name="shared", kv={"namespace": "team"})
    runtime.handler = _answer(200, {"key": "k", "value": "v"})
    got = await client.get("/functions/own/kv/a%2F..%2Fb")
    assert got.json() == {"key": "k", "value": "v"}
    assert runtime.last.url.path == "/kv/fn.own"
    assert json.loads(runtime.last.content) == {"op": "get", "key": "a/../b"}

    await client.put("/functions/shared/kv/x", content="é".encode(), params={"ttl_seconds": 5})
    assert runtime.last.url.path == "/kv/ns.team"
    assert json.loads(runtime.last.content) == {
        "op": "put",
        "key": "x",
        "value": "é",
        "ttlSeconds": 5.0,
    }
    runtime.handler = _answer(200, {"keys": [], "list_complete": True})
    listed = await client.get("/functions/own/kv", params={"prefix": "p", "limit": 7})
    assert listed.json() == {"keys": [], "list_complete": True}
    assert json.loads(runtime.last.content) == {
        "op": "list",
        "prefix": "p",
        "limit": 7,
        "cursor": "",
    }
    runtime.handler = _answer(200, {"key": "x"})
    assert (await client.delete("/functions/own/kv/x")).status_code == 204
    assert json.loads(runtime.last.content) == {"op": "delete", "key": "x"}


async def test_answers_and_failures_of_the_runtime_become_the_apis(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any]
) -> None:
    await deploy(name="fn")
    runtime.handler = _answer(200, {"key": "k", "value": None})
    missing = await client.get("/functions/fn/kv/k")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "KeyNotFound"

    message = "The KV key is 600 bytes, over the limit of 512 bytes"
    runtime.handler = _answer(400, {"error": {"type": "InvalidRequest", "message": message}})
    bad = await client.get("/functions/fn/kv/k")
    assert bad.status_code == 400
    assert bad.json()["error"] == {"type": "InvalidRequest", "message": message}

    down = "KV storage is unavailable: MinIO at minio:9000 is unreachable"
    runtime.handler = _answer(503, {"error": {"type": "KVUnavailable", "message": down}})
    unavailable = await client.get("/functions/fn/kv")
    assert unavailable.status_code == 503
    assert unavailable.json()["error"] == {"type": "KVUnavailable", "message": down}
    assert unavailable.headers["retry-after"] == "1"

    runtime.handler = lambda request: httpx.Response(200, content=b"not json")
    broken = await client.get("/functions/fn/kv")
    assert broken.status_code == 502
    assert broken.json()["error"]["type"] == "RuntimeUnavailable"

    # a purge that fails leaves the function in place, to try again
    runtime.handler = _answer(503, {"error": {"type": "KVUnavailable", "message": down}})
    refused = await client.delete("/functions/fn", params={"purge": "kv"})
    assert refused.status_code == 503
    assert (await client.get("/functions/fn")).status_code == 200
    runtime.handler = _answer(200, {"purged": 3})
    assert (await client.delete("/functions/fn", params={"purge": "kv"})).status_code == 204
    assert json.loads(runtime.last.content) == {"op": "purge"}
    assert (await client.get("/functions/fn")).status_code == 404
