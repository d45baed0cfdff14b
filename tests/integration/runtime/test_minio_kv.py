"""`context.kv` on a real MinIO server, through real runtime processes serving many functions
from the bucket: the operations, expiry, 20 writers at once, data that outlives the runtime, and
a MinIO outage answered with the documented error within the function's timeout."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.kv import OPS
from tests.fixtures.minio import MinioServer
from vortex_runtime import sha256_hex

pytestmark = pytest.mark.minio

KEY = f"functions/{sha256_hex(OPS.encode())}.js"


def _call(url: str, event: dict[str, Any], function: str = "ops", **headers: str) -> Any:
    response = httpx.post(
        f"{url}/invoke/{KEY}",
        json=event,
        headers={"x-vortex-function": function, "x-vortex-timeout-ms": "3000", **headers},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["output"]


def _runtime(start_runtime: Any, server: MinioServer, bucket: str) -> str:
    server.put(bucket, KEY, OPS.encode())
    runtime = start_runtime(env=server.env(bucket))
    runtime.wait_ready()
    url: str = runtime.url
    return url


def test_kv_operations_and_keyspaces_on_minio(start_runtime, minio_server: MinioServer) -> None:  # type: ignore[no-untyped-def]
    url = _runtime(start_runtime, minio_server, "kv-a")
    assert _call(url, {"op": "get", "key": "missing"}) is None
    for key in ("user:2", "user:1", "item:1", "é/../x"):
        assert _call(url, {"op": "put", "key": key, "value": f"v-{key}"}) == "ok"
    assert _call(url, {"op": "get", "key": "é/../x"}) == "v-é/../x"
    listed = _call(url, {"op": "list", "options": {"prefix": "user:"}})
    assert listed == {"keys": [{"name": "user:1"}, {"name": "user:2"}], "list_complete": True}
    first = _call(url, {"op": "list", "options": {"limit": 2}})
    assert [k["name"] for k in first["keys"]] == ["item:1", "user:1"]
    rest = _call(url, {"op": "list", "options": {"cursor": first["cursor"]}})
    assert [k["name"] for k in rest["keys"]] == ["user:2", "é/../x"]
    assert rest["list_complete"] is True
    assert _call(url, {"op": "own"}) == ["first", "second", None]
    assert _call(url, {"op": "bytes"}) == [0, 1, 2, 250, 255]
    long_key = "k" * 512
    assert _call(url, {"op": "put", "key": long_key, "value": "long"}) == "ok"
    assert _call(url, {"op": "get", "key": long_key}) == "long"
    assert _call(url, {"op": "delete", "key": "user:1"}) == "ok"
    assert _call(url, {"op": "get", "key": "user:1"}) is None
    # another function's keyspace, and a shared one
    assert _call(url, {"op": "get", "key": "user:2"}, function="other") is None
    shared = {"x-vortex-kv-namespace": "team"}
    assert _call(url, {"op": "put", "key": "t", "value": "1"}, **shared) == "ok"
    assert _call(url, {"op": "get", "key": "t"}, function="other", **shared) == "1"
    # the objects, where the README says
    names = [o.object_name for o in minio_server.client().list_objects("kv-a", recursive=True)]
    assert sum(n.startswith("kv/fn.ops/") for n in names) == 5
    assert sum(n.startswith("kv/ns.team/") for n in names) == 1


def test_expiry_and_twenty_writers_at_once(start_runtime, minio_server: MinioServer) -> None:  # type: ignore[no-untyped-def]
    url = _runtime(start_runtime, minio_server, "kv-b")
    _call(url, {"op": "put", "key": "short", "value": "x", "ttl": 1})
    assert _call(url, {"op": "get", "key": "short"}) == "x"
    time.sleep(1.2)
    assert _call(url, {"op": "get", "key": "short"}) is None
    assert _call(url, {"op": "list"})["keys"] == []

    def write(i: int) -> Any:
        _call(url, {"op": "put", "key": f"w{i:02d}", "value": str(i)})
        _call(url, {"op": "put", "key": "same", "value": str(i)})
        return _call(url, {"op": "get", "key": f"w{i:02d}"})

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(write, range(20)))
    assert results == [str(i) for i in range(20)]
    keys = [k["name"] for k in _call(url, {"op": "list"})["keys"]]
    assert keys == ["same", *(f"w{i:02d}" for i in range(20))]
    assert _call(url, {"op": "get", "key": "same"}) in {str(i) for i in range(20)}


def test_data_outlives_the_runtime_and_an_outage_is_a_clear_error(
    start_runtime, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    server = MinioServer(tmp_path / "minio")
    server.start()
    try:
        url = _runtime(start_runtime, server, "kv-c")
        _call(url, {"op": "put", "key": "kept", "value": "yes"})
        again = _runtime(start_runtime, server, "kv-c")  # another process, as after a restart
        assert _call(again, {"op": "get", "key": "kept"}) == "yes"

        server.stop()
        started = time.monotonic()
        response = httpx.post(
            f"{again}/invoke/{KEY}",
            json={"op": "get", "key": "kept"},
            headers={"x-vortex-function": "ops", "x-vortex-timeout-ms": "3000"},
            timeout=10,
        )
        waited = time.monotonic() - started
        assert response.status_code == 500, response.text
        error = response.json()["error"]
        assert error["type"] == "FunctionError"
        assert "KV storage is unavailable" in error["message"]
        assert waited < 3.5  # within the function's timeout
        caught = _call(again, {"op": "error", "call": "get", "args": ["kept"]})
        assert caught["name"] == "Error"
        assert "unreachable" in caught["message"]

        server.start()
        assert _call(again, {"op": "get", "key": "kept"}) == "yes"
    finally:
        server.stop()


def test_a_put_makes_the_bucket_again_after_minio_lost_it(  # type: ignore[no-untyped-def]
    start_runtime, minio_server: MinioServer
) -> None:
    url = _runtime(start_runtime, minio_server, "kv-e")
    assert _call(url, {"op": "put", "key": "a", "value": "1"}) == "ok"  # the code is loaded
    client = minio_server.client()
    for obj in client.list_objects("kv-e", recursive=True):
        client.remove_object("kv-e", obj.object_name)
    client.remove_bucket("kv-e")  # as a MinIO without a volume comes back
    assert _call(url, {"op": "get", "key": "a"}) is None
    assert _call(url, {"op": "put", "key": "a", "value": "2"}) == "ok"
    assert _call(url, {"op": "get", "key": "a"}) == "2"
