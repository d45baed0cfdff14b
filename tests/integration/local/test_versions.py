"""Versions in real local mode: three deploys split 80/20 over 2,000 calls, a tag pinned while the
split holds, a rollback under steady load with no failed call, and the history limit's code
objects on disk."""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
from collections import Counter

import httpx

from tests.integration.local.conftest import ApiProcess


def _code(n: int) -> str:
    return f"return {{v: {n}, event}};"


def _deploy(api: ApiProcess, name: str, n: int, **fields: object) -> None:
    body = {"name": name, "code": _code(n), **fields}
    response = httpx.post(f"{api.url}/deploy", json=body, timeout=30)
    assert response.status_code == 201, response.text


def _put_traffic(api: ApiProcess, name: str, traffic: list[dict[str, object]] | None) -> None:
    response = httpx.put(f"{api.url}/functions/{name}/traffic", json={"traffic": traffic})
    assert response.status_code == 200, response.text


async def _calls(
    url: str, name: str, count: int, headers: dict[str, str] | None = None
) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        gate = asyncio.Semaphore(8)

        async def one(i: int) -> httpx.Response:
            async with gate:
                return await client.post(f"/execute/{name}", json=i, headers=headers)

        return await asyncio.gather(*(one(i) for i in range(count)))


def test_an_80_20_split_over_2000_calls_and_every_answer_says_its_version(
    api: ApiProcess,
) -> None:
    for n in (1, 2, 3):
        _deploy(api, "split", n)
    _put_traffic(
        api,
        "split",
        [{"version": 1, "percent": 80}, {"version": 3, "percent": 20, "tag": "canary"}],
    )

    responses = asyncio.run(_calls(api.url, "split", 2000))
    assert Counter(r.status_code for r in responses) == {200: 2000}
    seen: Counter[int] = Counter()
    for response in responses:
        version = int(response.headers["x-vortex-version"])
        assert response.json()["output"]["v"] == version  # the code of the version it names
        seen[version] += 1
    assert set(seen) == {1, 3}
    assert abs(seen[1] / 2000 - 0.80) <= 0.03, seen

    # the tag pins its version while the split holds
    pinned = asyncio.run(_calls(api.url, "split", 50, {"X-Vortex-Version": "canary"}))
    assert {(r.status_code, r.headers["x-vortex-version"]) for r in pinned} == {(200, "3")}
    assert {r.json()["output"]["v"] for r in pinned} == {3}
    unknown = httpx.post(f"{api.url}/execute/split", headers={"X-Vortex-Version": "beta"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "VersionNotFound"

    # and its invocation record names the version too
    last = responses[-1]
    invocation = last.headers["x-vortex-invocation-id"]
    deadline = time.monotonic() + 5
    records: list[dict[str, object]] = []
    while not records and time.monotonic() < deadline:
        time.sleep(0.2)
        logs = httpx.get(f"{api.url}/functions/split/logs", params={"invocation": invocation})
        records = logs.json()["records"]
    assert records, "no record of the invocation"
    assert records[0]["function_version"] == int(last.headers["x-vortex-version"])


def test_a_rollback_under_steady_load_fails_no_call(api: ApiProcess) -> None:
    for n in (1, 2, 3):
        _deploy(api, "roll", n)
    results: list[tuple[float, int, str | None, object]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=api.url, timeout=30) as client:
            while not stop.is_set():
                sent = time.monotonic()
                r = client.post("/execute/roll", json=0)
                output = r.json().get("output") if r.status_code == 200 else r.text
                results.append((sent, r.status_code, r.headers.get("x-vortex-version"), output))

    threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    rolled_at = time.monotonic()
    response = httpx.post(f"{api.url}/functions/roll/rollback", json={"version": 1}, timeout=30)
    answered_at = time.monotonic()
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(30)

    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["latest_version"] == 4
    assert doc["versions"][-1]["rollback_of"] == 1
    assert [s for _, s, _, _ in results if s != 200] == []
    before = [(v, o) for t, _, v, o in results if t < rolled_at]
    after = [(v, o) for t, _, v, o in results if t > answered_at]  # sent after it
    assert before
    assert after
    assert {v for v, _ in before} == {"3"}
    assert all(o == {"v": 3, "event": 0} for _, o in before)
    # the next calls run version 4, which is version 1's code
    assert {v for v, _ in after} == {"4"}
    assert all(o == {"v": 1, "event": 0} for _, o in after)


def test_a_history_limit_of_3_keeps_3_code_objects(api: ApiProcess) -> None:
    for n in range(1, 7):
        _deploy(api, "limited", 100 + n, revision_history_limit=3)
    versions = httpx.get(f"{api.url}/functions/limited/versions").json()["versions"]
    assert [v["version"] for v in versions] == [4, 5, 6]
    on_disk = {p.stem for p in (api.data_dir / "code").glob("*.js")}
    mine = {hashlib.sha256(_code(100 + n).encode()).hexdigest() for n in range(1, 7)}
    assert on_disk & mine == {v["code_sha256"] for v in versions}
    assert len(on_disk & mine) == 3
    # each kept version still runs, pinned by number
    for version in versions:
        pinned = httpx.post(
            f"{api.url}/execute/limited", headers={"X-Vortex-Version": str(version["version"])}
        )
        assert pinned.status_code == 200
        assert pinned.json()["output"]["v"] == 100 + version["version"]


FLAKY = """
// 3 calls in 10 fail, by the last hex digits of the invocation id
if (parseInt(context.invocationId.slice(-4), 16) % 10 < 3) throw new Error("v2 fails 3 in 10");
return {v: 2};
"""


class _Load:
    """Calls one function steadily from a thread while the block runs; keeps what answered."""

    def __init__(self, api: ApiProcess, name: str) -> None:
        self.api, self.name = api, name
        self.answers: list[tuple[int, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.api.url, timeout=30) as client:
            while not self._stop.is_set():
                r = client.post(f"/execute/{self.name}")
                self.answers.append((r.status_code, r.headers.get("x-vortex-version")))
                time.sleep(0.002)

    def __enter__(self) -> _Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)


def _rollout_phase(api: ApiProcess, name: str) -> dict[str, object]:
    doc = httpx.get(f"{api.url}/functions/{name}/versions").json()
    rollout: dict[str, object] = doc["rollout"]
    return rollout


def _until_settled(api: ApiProcess, name: str, timeout_s: float) -> tuple[dict[str, object], float]:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        rollout = _rollout_phase(api, name)
        if rollout["phase"] != "Progressing":
            return rollout, time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"still progressing after {timeout_s} s: {_rollout_phase(api, name)}")


ROLLOUT = {"steps": [10, 50, 100], "interval": "2s", "maxErrorRate": 0.05}


def test_a_rollout_whose_new_version_throws_on_30_percent_is_rolled_back(api: ApiProcess) -> None:
    _deploy(api, "canary", 1)
    with _Load(api, "canary") as load:
        time.sleep(0.3)
        response = httpx.post(
            f"{api.url}/deploy",
            json={"name": "canary", "code": FLAKY, "rollout": ROLLOUT},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        rollout, took = _until_settled(api, "canary", timeout_s=10)
        time.sleep(0.5)
    assert rollout["phase"] == "RolledBack", rollout
    assert took <= 2 * 2.0 + 0.5, took  # within two intervals
    assert "all traffic back to version 1" in str(rollout["reason"])
    failed, ran = map(int, re.findall(r"failed (\d+) of (\d+)", str(rollout["reason"]))[0])
    assert 0.15 <= failed / ran <= 0.45, rollout["reason"]  # about the 30% the code fails
    info = httpx.get(f"{api.url}/functions/canary").json()
    assert info["status"]["conditions"][0]["reason"] == "RolledBack"
    failed_v2 = sum(1 for s, v in load.answers if v == "2" and s == 500)
    assert failed_v2 > 0
    # the stable version answers everything after the rollback, and never failed
    assert all(s == 200 for s, v in load.answers if v == "1")
    assert httpx.post(f"{api.url}/execute/canary").headers["x-vortex-version"] == "1"


def test_a_healthy_rollout_reaches_100_percent(api: ApiProcess) -> None:
    _deploy(api, "healthy", 1)
    with _Load(api, "healthy") as load:
        time.sleep(0.3)
        _deploy(api, "healthy", 2, rollout=ROLLOUT)
        rollout, took = _until_settled(api, "healthy", timeout_s=15)
    assert rollout["phase"] == "Complete", rollout
    assert took <= 3 * 2.0 + 0.5, took  # two steps after the first, an interval each
    assert [s for s, _ in load.answers if s != 200] == []
    assert {v for _, v in load.answers} == {"1", "2"}
    doc = httpx.get(f"{api.url}/functions/healthy/versions").json()
    assert doc["traffic"] == []
    assert httpx.post(f"{api.url}/execute/healthy").json()["output"]["v"] == 2
