"""A function's versions in local mode: made by deploys, split by traffic, pinned, rolled back,
kept to the history limit with their code, and kept across a restart."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from tests.unit.api.conftest import FakeRuntime, ok
from vortex_api.backends.local import LocalBackend
from vortex_api.settings import Settings


def _sha_of(request: httpx.Request) -> str:
    """The code hash a runtime request asks for (`/invoke/<sha256>.js`)."""
    return request.url.path.rsplit("/", 1)[-1].removesuffix(".js")


def _answer_with_the_code_run(runtime: FakeRuntime) -> None:
    runtime.handler = lambda request: ok(
        {"sha": _sha_of(request), "version": request.headers.get("x-vortex-version")}
    )


async def _versions(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await client.get(f"/functions/{name}/versions")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _three_versions(deploy: Callable[..., Any]) -> list[str]:
    shas = []
    for i, timeout in ((1, 1000), (2, 2000), (3, 3000)):
        shas.append((await deploy(f"return {i};", name="fn", timeout_ms=timeout)).code_sha256)
    return shas


async def test_a_version_for_each_change_of_code_or_execution_spec(
    client: httpx.AsyncClient, deploy: Callable[..., Any]
) -> None:
    one = await deploy("return 1;", name="fn")
    await deploy("return 1;", name="fn")  # the same: no new version
    await deploy("return 1;", name="fn", concurrency=2)  # capacity: no new version
    await deploy("return 1;", name="fn", memory_mb=256, env={"A": "b"})
    three = await deploy("return 3;", name="fn", memory_mb=256, env={"A": "b"})

    doc = await _versions(client, "fn")
    assert doc["function_id"] == "fn"
    assert doc["latest_version"] == 3
    assert doc["revision_history_limit"] == 10
    assert doc["traffic"] == []
    assert [v["version"] for v in doc["versions"]] == [1, 2, 3]
    assert [v["code_sha256"] for v in doc["versions"]] == [
        one.code_sha256,
        one.code_sha256,
        three.code_sha256,
    ]
    assert doc["versions"][0]["spec"] == {
        "timeoutMs": 5000,
        "memoryMb": 128,
        "isolation": "shared",
    }
    assert doc["versions"][2]["spec"] == {
        "timeoutMs": 5000,
        "memoryMb": 256,
        "isolation": "shared",
        "env": [{"name": "A", "value": "b"}],
    }
    assert all(v["created_by"] == "api" and v["created_at"] for v in doc["versions"])
    info = (await client.get("/functions/fn")).json()
    assert info["status"]["latest_version"] == 3


async def test_a_split_gives_each_version_its_share_and_says_which_ran(
    client: httpx.AsyncClient, deploy: Callable[..., Any], runtime: FakeRuntime
) -> None:
    shas = await _three_versions(deploy)
    _answer_with_the_code_run(runtime)
    split = [{"version": 1, "percent": 80}, {"version": 3, "percent": 20}]
    response = await client.put("/functions/fn/traffic", json={"traffic": split})
    assert response.status_code == 200, response.text
    assert response.json()["traffic"] == split

    seen: Counter[str] = Counter()
    for _ in range(200):
        answer = await client.post("/execute/fn", json=None)
        assert answer.status_code == 200
        version = answer.headers["x-vortex-version"]
        seen[version] += 1
        # the header says what ran: that version's code, told to the runtime too
        assert answer.json()["output"] == {"sha": shas[int(version) - 1], "version": version}
        timeout = runtime.last.headers["x-vortex-timeout-ms"]
        assert timeout == str(int(version) * 1000)  # and with that version's limits
    assert seen == {"1": 160, "3": 40}


async def test_a_tag_or_a_number_pins_one_version(
    client: httpx.AsyncClient, deploy: Callable[..., Any], runtime: FakeRuntime
) -> None:
    shas = await _three_versions(deploy)
    _answer_with_the_code_run(runtime)
    split = [{"version": 1, "percent": 90}, {"latest": True, "percent": 10, "tag": "canary"}]
    assert (await client.put("/functions/fn/traffic", json={"traffic": split})).status_code == 200

    for _ in range(5):
        pinned = await client.post("/execute/fn", headers={"X-Vortex-Version": "canary"})
        assert pinned.headers["x-vortex-version"] == "3"
        assert pinned.json()["output"]["sha"] == shas[2]
    by_number = await client.post("/execute/fn", headers={"X-Vortex-Version": "2"})
    assert by_number.status_code == 200  # kept, though the split sends it nothing
    assert by_number.json()["output"]["sha"] == shas[1]

    for value, status, kind in (
        ("stable", 404, "VersionNotFound"),
        ("9", 404, "VersionNotFound"),
        ("not a tag!", 400, "InvalidRequest"),
    ):
        refused = await client.post("/execute/fn", headers={"X-Vortex-Version": value})
        assert refused.status_code == status, refused.text
        assert refused.json()["error"]["type"] == kind
    assert all(request.headers["x-vortex-version"] != "9" for request in runtime.requests)


async def test_a_rollback_is_a_new_version_with_the_old_code_taking_all_traffic(
    client: httpx.AsyncClient, deploy: Callable[..., Any], runtime: FakeRuntime
) -> None:
    shas = await _three_versions(deploy)
    _answer_with_the_code_run(runtime)
    split = [{"version": 2, "percent": 50}, {"latest": True, "percent": 50}]
    assert (await client.put("/functions/fn/traffic", json={"traffic": split})).status_code == 200

    response = await client.post("/functions/fn/rollback", json={"version": 1})
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["latest_version"] == 4
    assert doc["traffic"] == []
    four = doc["versions"][-1]
    assert four["version"] == 4
    assert four["rollback_of"] == 1
    assert four["code_sha256"] == shas[0]
    assert four["spec"] == doc["versions"][0]["spec"]
    for _ in range(4):
        answer = await client.post("/execute/fn")
        assert answer.headers["x-vortex-version"] == "4"
        assert answer.json()["output"]["sha"] == shas[0]
    assert runtime.last.headers["x-vortex-timeout-ms"] == "1000"
    assert (await client.get("/functions/fn")).json()["code_sha256"] == shas[0]

    missing = await client.post("/functions/fn/rollback", json={"version": 9})
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "VersionNotFound"
    for body in ({"version": "1"}, {}, {"version": 0}, {"version": 1, "x": 1}):
        bad = await client.post("/functions/fn/rollback", json=body)
        assert bad.status_code == 400, body
    nobody = await client.post("/functions/nobody/rollback", json={"version": 1})
    assert nobody.status_code == 404
    assert nobody.json()["error"]["type"] == "FunctionNotFound"


async def test_the_history_limit_keeps_that_many_code_objects(
    client: httpx.AsyncClient, deploy: Callable[..., Any], settings: Settings
) -> None:
    code_dir = settings.data_dir / "code"
    first = await deploy("return 0;", name="fn", revision_history_limit=3)
    split = [{"version": 1, "percent": 100}]
    assert (await client.put("/functions/fn/traffic", json={"traffic": split})).status_code == 200
    shas = [first.code_sha256]
    for i in range(1, 6):
        shas.append((await deploy(f"return {i};", name="fn")).code_sha256)

    doc = await _versions(client, "fn")
    # the newest 3, and version 1, which the traffic still uses
    assert [v["version"] for v in doc["versions"]] == [1, 4, 5, 6]
    assert sorted(p.stem for p in code_dir.glob("*.js")) == sorted(shas[:1] + shas[3:])

    assert (await client.put("/functions/fn/traffic", json={"traffic": None})).status_code == 200
    doc = await _versions(client, "fn")
    assert [v["version"] for v in doc["versions"]] == [4, 5, 6]
    assert sorted(p.stem for p in code_dir.glob("*.js")) == sorted(shas[3:])

    assert (await client.delete("/functions/fn")).status_code == 204
    assert list(code_dir.glob("*.js")) == []


async def test_code_another_function_uses_stays(
    client: httpx.AsyncClient, deploy: Callable[..., Any], settings: Settings
) -> None:
    kept = await deploy("return 'same';", name="other")
    await deploy("return 'same';", name="fn", revision_history_limit=1)
    await deploy("return 'new';", name="fn")
    assert (settings.data_dir / "code" / f"{kept.code_sha256}.js").exists()


async def test_a_bad_split_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, deploy: Callable[..., Any]
) -> None:
    await _three_versions(deploy)
    for body, message in (
        ({"traffic": [{"version": 1, "percent": 70}]}, "sum to 70"),
        ({"traffic": [{"version": 7, "percent": 100}]}, "version 7, which does not exist"),
        ({"traffic": [{"percent": 100}]}, "either version or latest"),
        ({"traffic": "all"}, "traffic"),
        ({}, "traffic"),
    ):
        response = await client.put("/functions/fn/traffic", json=body)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["type"] == "InvalidRequest"
        assert message in error["message"], error
    assert (await _versions(client, "fn"))["traffic"] == []
    unknown = await client.put("/functions/nobody/traffic", json={"traffic": None})
    assert unknown.status_code == 404


async def test_an_error_answer_says_which_version_failed(
    client: httpx.AsyncClient, deploy: Callable[..., Any], runtime: FakeRuntime
) -> None:
    await _three_versions(deploy)
    runtime.handler = lambda request: httpx.Response(
        500, json={"error": {"type": "FunctionError", "message": "boom"}}
    )
    answer = await client.post("/execute/fn", headers={"X-Vortex-Version": "2"})
    assert answer.status_code == 500
    assert answer.headers["x-vortex-version"] == "2"

    runtime.handler = lambda request: (_ for _ in ()).throw(httpx.ConnectError("down"))
    unreachable = await client.post("/execute/fn")
    assert unreachable.status_code == 502
    assert unreachable.headers["x-vortex-version"] == "3"


async def test_versions_and_the_split_survive_a_restart(
    client: httpx.AsyncClient,
    deploy: Callable[..., Any],
    settings: Settings,
    runtime: FakeRuntime,
) -> None:
    shas = await _three_versions(deploy)
    split = [{"version": 1, "percent": 50}, {"version": 3, "percent": 50, "tag": "new"}]
    assert (await client.put("/functions/fn/traffic", json={"traffic": split})).status_code == 200

    again = LocalBackend(settings, runtime.transport(), supervise=False)
    await again.start()
    try:
        restored = await again.resolve("fn")
    finally:
        await again.stop()
    assert restored.version == 3
    assert restored.history.numbers() == [1, 2, 3]
    assert restored.traffic.to_json() == split
    assert [restored.choose(None).version for _ in range(4)] == [1, 3, 1, 3]
    assert restored.choose("new").code_sha256 == shas[2]
    assert restored.choose("2").timeout_ms == 2000


async def test_a_record_from_before_versions_becomes_version_1(
    client: httpx.AsyncClient, settings: Settings, runtime: FakeRuntime, deploy: Callable[..., Any]
) -> None:
    fn = await deploy("return 1;", name="old")
    path = settings.data_dir / "functions" / "old.json"
    record = json.loads(path.read_text())
    for key in ("versions", "traffic", "revision_history_limit"):
        del record[key]
    path.write_text(json.dumps(record))

    again = LocalBackend(settings, runtime.transport(), supervise=False)
    await again.start()
    try:
        restored = await again.resolve("old")
    finally:
        await again.stop()
    assert restored.history.numbers() == [1]
    assert restored.history.versions[0].code_sha256 == fn.code_sha256
    assert ("x-vortex-version", "1") in restored.runtime_headers


async def test_a_rollout_whose_new_version_fails_goes_back_and_says_why(
    client: httpx.AsyncClient, deploy: Callable[..., Any], runtime: FakeRuntime
) -> None:
    await deploy("return 1;", name="fn")
    rollout = {"steps": [10, 50, 100], "interval": "1s", "maxErrorRate": 0.05}
    bad = await deploy("return 2;", name="fn", rollout=rollout)
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        if _sha_of(request) == bad.code_sha256:
            calls += 1
            if calls % 3 == 0:
                return httpx.Response(
                    500, json={"error": {"type": "FunctionError", "message": "boom"}}
                )
        return ok(_sha_of(request))

    runtime.handler = handler
    doc = await _versions(client, "fn")
    assert doc["rollout"]["phase"] == "Progressing"
    assert doc["traffic"] == [
        {"version": 1, "percent": 90},
        {"version": 2, "percent": 10, "tag": "canary"},
    ]
    seen: Counter[str] = Counter()
    async with asyncio.timeout(5):
        while (await _versions(client, "fn"))["rollout"]["phase"] == "Progressing":
            answer = await client.post("/execute/fn")
            seen[answer.headers["x-vortex-version"]] += 1
            await asyncio.sleep(0.002)
    doc = await _versions(client, "fn")
    assert doc["rollout"]["phase"] == "RolledBack"
    assert "over maxErrorRate 5.0%" in doc["rollout"]["reason"]
    assert doc["traffic"] == [{"version": 1, "percent": 100}]
    condition = (await client.get("/functions/fn")).json()["status"]["conditions"][0]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "Rollout",
        "False",
        "RolledBack",
    )
    assert seen["2"] > 0
    for _ in range(20):
        assert (await client.post("/execute/fn")).headers["x-vortex-version"] == "1"


async def test_a_healthy_rollout_reaches_all_traffic(
    client: httpx.AsyncClient, deploy: Callable[..., Any]
) -> None:
    await deploy("return 1;", name="fn")
    await deploy("return 2;", name="fn", rollout={"steps": [50, 100], "interval": "1s"})
    percents = set()
    async with asyncio.timeout(5):
        while (doc := await _versions(client, "fn"))["rollout"]["phase"] == "Progressing":
            percents.add(doc["rollout"]["percent"])
            assert (await client.post("/execute/fn")).status_code == 200
            await asyncio.sleep(0.005)
    assert doc["rollout"]["phase"] == "Complete"
    assert percents == {50}
    assert doc["traffic"] == []
    assert (await client.post("/execute/fn")).headers["x-vortex-version"] == "2"
    # the next deploy rolls out from version 2
    await deploy("return 3;", name="fn", rollout={"steps": [50, 100], "interval": "1s"})
    doc = await _versions(client, "fn")
    assert (doc["rollout"]["stable"], doc["rollout"]["version"]) == (2, 3)


async def test_a_bad_rollout_is_refused_at_deploy(client: httpx.AsyncClient) -> None:
    body = {"code": "return 1;", "name": "fn", "rollout": {"steps": [10, 50]}}
    response = await client.post("/deploy", json=body)
    assert response.status_code == 400
    assert "rising percents ending at 100" in response.json()["error"]["message"]
