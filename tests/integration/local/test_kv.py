"""`context.kv` in real local mode: data under the data dir shared by every worker, surviving an
API restart and a redeploy, shared namespaces, 20 writers at once, `vortex kv`, and deletion
that keeps the data unless `?purge=kv`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.kv import OPS

from .cli import vortex
from .conftest import ApiProcess
from .test_execute import deploy


async def _run(client: httpx.AsyncClient, fid: str, event: dict[str, Any]) -> Any:
    response = await client.post(f"/execute/{fid}", json=event)
    assert response.status_code == 200, response.text
    return response.json()["output"]


async def test_kv_survives_a_restart_and_a_redeploy_and_purge_removes_it(
    api_factory: Callable[..., ApiProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    api = api_factory(data)
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        fid = await deploy(client, OPS, name="counter")
        assert await _run(client, fid, {"op": "put", "key": "n", "value": "1"}) == "ok"
    api.stop()

    again = api_factory(data)  # a new API process and new workers on the same data dir
    async with httpx.AsyncClient(base_url=again.url, timeout=30) as client:
        assert await _run(client, fid, {"op": "get", "key": "n"}) == "1"
        await deploy(client, OPS + "\n// v2", name="counter")  # new code, same keyspace
        assert await _run(client, fid, {"op": "get", "key": "n"}) == "1"
        assert (data / "kv" / "fn.counter").is_dir()

        assert (await client.delete(f"/functions/{fid}")).status_code == 204
        await deploy(client, OPS, name="counter")  # the data outlived the function
        assert await _run(client, fid, {"op": "get", "key": "n"}) == "1"

        purged = await client.delete(f"/functions/{fid}", params={"purge": "kv"})
        assert purged.status_code == 204, purged.text
        assert not (data / "kv" / "fn.counter").exists()
        await deploy(client, OPS, name="counter")
        assert await _run(client, fid, {"op": "get", "key": "n"}) is None
        bad = await client.delete(f"/functions/{fid}", params={"purge": "everything"})
        assert bad.status_code == 400


async def test_shared_namespaces_and_twenty_writers(
    api_factory: Callable[..., ApiProcess],
) -> None:
    api = api_factory(VORTEX_MAX_WORKERS="40")  # the 20 writers all run at once
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        await _shared_and_writers(client)


async def _shared_and_writers(client: httpx.AsyncClient) -> None:
    a = await deploy(client, OPS, kv={"namespace": "team-a"})
    b = await deploy(client, OPS, kv={"namespace": "team-a"})
    alone = await deploy(client, OPS)
    info = (await client.get(f"/functions/{a}")).json()
    assert info["spec"]["kv"] == {"namespace": "team-a"}
    assert await _run(client, a, {"op": "put", "key": "shared", "value": "from a"}) == "ok"
    assert await _run(client, b, {"op": "get", "key": "shared"}) == "from a"
    assert await _run(client, alone, {"op": "get", "key": "shared"}) is None

    async def write(i: int) -> Any:
        await _run(client, alone, {"op": "put", "key": f"w{i:02d}", "value": str(i)})
        return await _run(client, alone, {"op": "get", "key": f"w{i:02d}"})

    assert await asyncio.gather(*(write(i) for i in range(20))) == [str(i) for i in range(20)]
    listed = await _run(client, alone, {"op": "list", "options": {"prefix": "w"}})
    assert [k["name"] for k in listed["keys"]] == [f"w{i:02d}" for i in range(20)]

    bad = await client.post("/deploy", json={"code": OPS, "kv": {"namespace": "Not_A_Label"}})
    assert bad.status_code == 400
    assert "kv" in bad.json()["error"]["message"]


async def test_the_api_and_vortex_kv_read_and_write_a_functions_data(
    api: ApiProcess, client: httpx.AsyncClient
) -> None:
    fid = await deploy(client, OPS)
    await _run(client, fid, {"op": "put", "key": "from-fn", "value": "hello"})

    got = vortex(api.url, "kv", "get", "--function", fid, "from-fn")
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "hello"
    put = vortex(api.url, "kv", "put", "-f", fid, "cfg/mode", "-", input="fast ✓")
    assert put.returncode == 0, put.stderr
    assert await _run(client, fid, {"op": "get", "key": "cfg/mode"}) == "fast ✓"
    listed = vortex(api.url, "kv", "list", "-f", fid)
    assert listed.stdout.split() == ["cfg/mode", "from-fn"]
    as_json = vortex(api.url, "kv", "list", "-f", fid, "--prefix", "cfg/", "-o", "json")
    assert json.loads(as_json.stdout) == {"keys": [{"name": "cfg/mode"}]}
    deleted = vortex(api.url, "kv", "delete", "-f", fid, "from-fn")
    assert deleted.returncode == 0, deleted.stderr
    missing = vortex(api.url, "kv", "get", "-f", fid, "from-fn")
    assert missing.returncode != 0
    assert "KeyNotFound" in missing.stderr or "no key" in missing.stderr

    # the API's own routes, as the CLI calls them
    odd = await client.put(
        f"/functions/{fid}/kv/a%2F..%2Fb", content=b"odd", params={"ttl_seconds": 60}
    )
    assert odd.status_code == 200, odd.text
    assert (await client.get(f"/functions/{fid}/kv/a%2F..%2Fb")).json()["value"] == "odd"
    too_long = await client.put(f"/functions/{fid}/kv/{'k' * 513}", content=b"x")
    assert too_long.status_code == 400
    assert "512" in too_long.json()["error"]["message"]
    unknown = await client.get("/functions/no-such-fn/kv")
    assert unknown.status_code == 404
