"""`context.kv` on real isolates over the file store: get, put, delete, list and expiry,
keyspaces per function (or a shared namespace), limits with clear errors, nothing of an ended
invocation reaching the store, and an unreachable store answering within the timeout."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.kv import OPS
from vortex_runtime import kv
from vortex_runtime.errors import FunctionError
from vortex_runtime.isolate import Isolate
from vortex_runtime.settings import MinioSettings

from .conftest import context

Client = Callable[..., Awaitable[httpx.AsyncClient]]


async def _call(client: httpx.AsyncClient, event: dict[str, Any], **headers: str) -> Any:
    response = await client.post("/invoke", json=event, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["output"]


@pytest.fixture
async def ops(client_for: Client, code_file: Callable[[str], Path], tmp_path: Path) -> Any:
    return await client_for(
        code_file=code_file(OPS), kv_dir=tmp_path / "kv", function_name="ops", timeout_ms=3000
    )


async def test_put_get_delete_and_list(ops: httpx.AsyncClient, tmp_path: Path) -> None:
    assert await _call(ops, {"op": "get", "key": "missing"}) is None
    for key in ("user:2", "user:1", "item:1"):
        assert await _call(ops, {"op": "put", "key": key, "value": f"v-{key}"}) == "ok"
    assert await _call(ops, {"op": "get", "key": "user:1"}) == "v-user:1"
    listed = await _call(ops, {"op": "list", "options": {"prefix": "user:"}})
    assert listed == {"keys": [{"name": "user:1"}, {"name": "user:2"}], "list_complete": True}
    first = await _call(ops, {"op": "list", "options": {"limit": 2}})
    assert [k["name"] for k in first["keys"]] == ["item:1", "user:1"]
    assert first["list_complete"] is False
    rest = await _call(ops, {"op": "list", "options": {"limit": 2, "cursor": first["cursor"]}})
    assert rest == {"keys": [{"name": "user:2"}], "list_complete": True}
    assert await _call(ops, {"op": "delete", "key": "user:1"}) == "ok"
    assert await _call(ops, {"op": "get", "key": "user:1"}) is None
    # the function's own keyspace, in files under the data dir
    assert len(list((tmp_path / "kv" / "fn.ops").iterdir())) == 2


async def test_reads_see_their_own_writes_and_values_keep_their_type(
    ops: httpx.AsyncClient,
) -> None:
    assert await _call(ops, {"op": "own"}) == ["first", "second", None]
    assert await _call(ops, {"op": "bytes"}) == [0, 1, 2, 250, 255]
    assert await _call(ops, {"op": "json"}) == {"a": [1, 2]}
    assert await _call(ops, {"op": "put", "key": "k", "value": "naïve ✓"}) == "ok"
    assert await _call(ops, {"op": "get", "key": "k"}) == "naïve ✓"


async def test_answers_of_calls_in_flight_together_each_reach_their_own_call(
    ops: httpx.AsyncClient,
) -> None:
    """Answers small enough for the isolate's I/O buffer and larger ones, in latin-1 and
    beyond it, arriving together: each resolves its own call, with its own value."""
    values = [
        f"{i}:" + ("x" * size if alphabet == "ascii" else "é✓" * (size // 2))
        for i, (size, alphabet) in enumerate(
            (size, alphabet) for size in (1, 100, 70_000) for alphabet in ("ascii", "é✓")
        )
    ] * 2
    assert await _call(ops, {"op": "many", "values": values}) == values


async def test_a_replaced_array_iterator_never_reaches_the_driver(
    client_for: Client, code_file: Callable[[str], Path], tmp_path: Path
) -> None:
    """Events and host-call answers reach the function as sent, whatever it did to the
    builtins (the driver reads the I/O buffer without the iterator protocol)."""
    code = (
        "Array.prototype[Symbol.iterator] = function* () { yield 'hacked'; };"
        "export default async function (event, context) {"
        " await context.kv.put('k', event.v); return [event.v, await context.kv.get('k')]; }"
    )
    client = await client_for(code_file=code_file(code), kv_dir=tmp_path / "kv", timeout_ms=3000)
    for value in ("first", "second"):
        assert await _call(client, {"v": value}) == [value, value]


async def test_a_value_expires_after_its_ttl(ops: httpx.AsyncClient) -> None:
    await _call(ops, {"op": "put", "key": "short", "value": "x", "ttl": 0.3})
    await _call(ops, {"op": "put", "key": "long", "value": "y", "ttl": 3600})
    listed = await _call(ops, {"op": "list"})
    expiring = {k["name"]: k.get("expiration") for k in listed["keys"]}
    assert expiring["long"] >= time.time() + 3500
    assert await _call(ops, {"op": "get", "key": "short"}) == "x"
    await asyncio.sleep(0.4)
    assert await _call(ops, {"op": "get", "key": "short"}) is None
    assert [k["name"] for k in (await _call(ops, {"op": "list"}))["keys"]] == ["long"]


@pytest.mark.parametrize(
    ("call", "args", "name", "words"),
    [
        ("get", ["k" * 513], "RangeError", "513 bytes, over the limit of 512"),
        ("get", ["é" * 257], "RangeError", "514 bytes"),
        ("put", ["k", "v" * (1024 * 1024 + 1)], "RangeError", "over the limit of 1048576"),
        ("put", ["k", "é" * (512 * 1024 + 1)], "RangeError", "1048578 bytes"),
        ("get", [""], "TypeError", "non-empty string"),
        ("get", [42], "TypeError", "non-empty string"),
        ("get", ["k", {"type": "blob"}], "TypeError", '"text", "json" or "arrayBuffer"'),
        ("put", ["k"], "TypeError", "must be given"),
        ("put", ["k", "v", {"ttlSeconds": -1}], "RangeError", "ttlSeconds"),
        ("list", [{"limit": 5000}], "RangeError", "limit must be 1 to 1000"),
        ("list", [{"cursor": "%%%"}], "TypeError", "cursor"),
    ],
)
async def test_bad_keys_values_and_options_reject_clearly(
    ops: httpx.AsyncClient, call: str, args: list[Any], name: str, words: str
) -> None:
    error = await _call(ops, {"op": "error", "call": call, "args": args})
    assert error["name"] == name, error
    assert words in error["message"], error


async def test_keyspaces_are_per_function_unless_a_namespace_is_shared(
    client_for: Client, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    (store / "functions").mkdir(parents=True)
    (store / "functions" / "ops.js").write_text(OPS)
    client = await client_for(store_dir=store, kv_dir=tmp_path / "kv")
    put = {"op": "put", "key": "k", "value": "a's"}
    get = {"op": "get", "key": "k"}
    path = "/invoke/functions/ops.js"

    async def call(event: dict[str, Any], **headers: str) -> Any:
        response = await client.post(path, json=event, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()["output"]

    assert await call(put, **{"x-vortex-function": "a"}) == "ok"
    assert await call(get, **{"x-vortex-function": "a"}) == "a's"
    assert await call(get, **{"x-vortex-function": "b"}) is None  # same code, other function
    shared = {"x-vortex-kv-namespace": "team"}
    assert await call({**put, "value": "team's"}, **{"x-vortex-function": "a"}, **shared) == "ok"
    assert await call(get, **{"x-vortex-function": "b"}, **shared) == "team's"
    assert await call(get, **{"x-vortex-function": "a"}) == "a's"  # its own is untouched
    bad = await client.post(path, json=get, headers={"x-vortex-kv-namespace": "../etc"})
    assert bad.status_code == 400
    assert "x-vortex-kv-namespace" in bad.json()["error"]["message"]


async def test_nothing_of_an_ended_invocation_reaches_the_store(
    ops: httpx.AsyncClient, tmp_path: Path
) -> None:
    assert await _call(ops, {"op": "late"}) == "returned"
    await asyncio.sleep(0.1)
    assert await _call(ops, {"op": "get", "key": "late"}) is None
    assert not (tmp_path / "kv" / "fn.ops").exists()


async def test_without_a_store_kv_calls_reject_and_say_why(
    isolate_of: Callable[..., Awaitable[Isolate]],
) -> None:
    isolate = await isolate_of("try { await context.kv.get('k'); } catch (e) { return e.message; }")
    outcome = await isolate.invoke("null", context(), 2.0)
    assert "not available" in json.loads(outcome.output_json)
    configured = await isolate_of("return await context.kv.get('k');")
    with pytest.raises(FunctionError) as raised:
        await configured.invoke("null", context(), 2.0, host=kv.KVCalls(None, "fn.test"))
    assert "KV storage is not configured" in raised.value.message


async def test_an_unreachable_store_is_a_clear_error_within_the_timeout(
    isolate_of: Callable[..., Awaitable[Isolate]],
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = kv.MinioStore(MinioSettings(endpoint=f"127.0.0.1:{port}"), timeout_s=1.0)
    isolate = await isolate_of("return await context.kv.get('k');")
    started = time.monotonic()
    with pytest.raises(FunctionError) as raised:
        await isolate.invoke("null", context(), 3.0, host=kv.KVCalls(store, "fn.test"))
    assert time.monotonic() - started < 3.0
    assert "KV storage is unavailable" in raised.value.message
    assert "unreachable" in raised.value.message


def test_object_names_keep_prefixes_and_order() -> None:
    keys = ["a", "a\x00", "ab", "abcde", "abcdef", "b", "z" * 512, "é"]  # in byte order
    names = [kv._encode(k.encode()) for k in keys]
    assert names == sorted(names)
    assert all(kv._decode(n) == k for n, k in zip(names, keys, strict=True))
    assert all(len(part) <= 200 for n in names for part in n.split("/"))
    assert kv._encode(b"abcde") == kv._encode(b"abcdef")[: len(kv._encode(b"abcde"))]
