"""Invocation records in real local mode, read with the real `vortex logs` and the HTTP API:
one record per invocation by id among 1,000, errors only, following a new invocation within 2 s,
records across two workers, and rotation keeping the newest."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.integration.local.cli import cli_env, vortex
from tests.integration.local.conftest import ApiProcess

CODE = """\
console.log("call", context.invocationId, event && event.n);
if (event && event.fail) throw new TypeError("asked to fail");
return event && event.n;
"""


@pytest.fixture(scope="module")
def logged(api: ApiProcess) -> str:
    response = httpx.post(f"{api.url}/deploy", json={"name": "logged", "code": CODE}, timeout=30)
    assert response.status_code == 201, response.text
    return "logged"


async def call_many(url: str, name: str, count: int, prefix: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        gate = asyncio.Semaphore(8)

        async def one(i: int) -> httpx.Response:
            async with gate:
                return await client.post(
                    f"/execute/{name}",
                    json={"n": i},
                    headers={"X-Vortex-Invocation-Id": f"{prefix}-{i}"},
                )

        return await asyncio.gather(*(one(i) for i in range(count)))


def test_one_record_among_a_thousand_by_invocation_id(api: ApiProcess, logged: str) -> None:
    responses = asyncio.run(call_many(api.url, logged, 1000, "bulk"))
    assert [r.status_code for r in responses] == [200] * 1000
    assert {r.headers["x-vortex-invocation-id"] for r in responses} == {
        f"bulk-{i}" for i in range(1000)
    }
    time.sleep(0.5)  # records are written within 0.2 s

    result = vortex(api.url, "logs", logged, "--invocation", "bulk-617", "-o", "json")

    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)["records"]
    assert len(records) == 1
    record = records[0]
    code_sha = json.loads(vortex(api.url, "get", logged, "-o", "json").stdout)["code_sha256"]
    assert record["invocation_id"] == "bulk-617"
    assert (record["function"], record["version"], record["status"]) == (logged, code_sha, "ok")
    assert [e["message"] for e in record["logs"]] == ["call bulk-617 617"]
    assert record["duration_ms"] > 0
    assert "error_type" not in record
    # The thousand ran on both workers, and every one left exactly one record.
    files = sorted((api.data_dir / "records").glob("records-*.jsonl"))
    per_worker = [f.read_text().count('"invocation_id":"bulk-') for f in files]
    assert len(per_worker) == 2
    assert all(per_worker), per_worker
    assert sum(per_worker) == 1000

    text = vortex(api.url, "logs", logged, "--invocation", "bulk-617")
    assert text.returncode == 0
    head, log = text.stdout.splitlines()
    assert "bulk-617  ok  " in head
    assert head.startswith(record["started_at"])
    assert log.endswith("log call bulk-617 617")


def test_errors_only_and_the_newest_first(api: ApiProcess, logged: str) -> None:
    for i in range(3):
        httpx.post(
            f"{api.url}/execute/{logged}",
            json={"n": i, "fail": i == 1},
            headers={"X-Vortex-Invocation-Id": f"mixed-{i}"},
            timeout=30,
        )
    time.sleep(0.5)

    errors = vortex(api.url, "logs", logged, "--errors", "-o", "json")
    newest = httpx.get(f"{api.url}/functions/{logged}/logs?limit=3", timeout=30).json()["records"]

    assert errors.returncode == 0, errors.stderr
    failed = [r for r in json.loads(errors.stdout)["records"] if r["invocation_id"] == "mixed-1"]
    assert len(failed) == 1
    assert (failed[0]["status"], failed[0]["error_type"]) == ("error", "FunctionError")
    assert all(r["status"] == "error" for r in json.loads(errors.stdout)["records"])
    assert [r["invocation_id"] for r in newest] == ["mixed-2", "mixed-1", "mixed-0"]
    text = vortex(api.url, "logs", logged, "--errors", "--limit", "1")
    assert "mixed-1  FunctionError" in text.stdout


def test_follow_sees_a_new_invocation_within_two_seconds(api: ApiProcess, logged: str) -> None:
    follower = subprocess.Popen(
        [sys.executable, "-m", "vortex_cli", "logs", logged, "--follow", "-n", "0", "-o", "json"],
        env=cli_env(api.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)  # the follower is connected
        seen: list[float] = []
        for i in range(3):
            sent = time.monotonic()
            response = httpx.post(
                f"{api.url}/execute/{logged}",
                json={"n": i},
                headers={"X-Vortex-Invocation-Id": f"followed-{i}"},
                timeout=30,
            )
            assert response.status_code == 200
            assert follower.stdout is not None
            record = json.loads(follower.stdout.readline())
            seen.append(time.monotonic() - sent)
            assert record["invocation_id"] == f"followed-{i}"
            assert record["logs"][0]["message"] == f"call followed-{i} {i}"
        assert max(seen) < 2.0, seen
    finally:
        follower.terminate()
        follower.communicate(timeout=10)


def test_follow_over_http_starts_with_the_newest(api: ApiProcess, logged: str) -> None:
    httpx.post(
        f"{api.url}/execute/{logged}",
        json={"n": 1},
        headers={"X-Vortex-Invocation-Id": "before-follow"},
        timeout=30,
    )
    time.sleep(0.5)
    url = f"{api.url}/functions/{logged}/logs?follow=true&limit=1"
    with httpx.stream("GET", url, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = response.iter_lines()
        assert json.loads(next(lines))["invocation_id"] == "before-follow"
        httpx.post(
            f"{api.url}/execute/{logged}",
            json={"n": 2},
            headers={"X-Vortex-Invocation-Id": "after-follow"},
            timeout=30,
        )
        assert json.loads(next(line for line in lines if line))["invocation_id"] == "after-follow"


def test_logs_of_an_unknown_function_exit_1(api: ApiProcess) -> None:
    result = vortex(api.url, "logs", "never-deployed")
    assert result.returncode == 1
    assert "FunctionNotFound" in result.stderr


def test_records_rotate_and_keep_the_newest(
    api_factory: Callable[..., ApiProcess], tmp_path: Path
) -> None:
    small = api_factory(VORTEX_RECORDS_MAX_BYTES="8192", VORTEX_LOCAL_WORKERS="1")
    code = "return 1;"
    httpx.post(f"{small.url}/deploy", json={"name": "r", "code": code}, timeout=30)
    responses = asyncio.run(call_many(small.url, "r", 200, "rot"))
    assert all(r.status_code == 200 for r in responses)
    time.sleep(0.5)
    directory = small.data_dir / "records"
    current, older = directory / "records-0.jsonl", directory / "records-0.jsonl.1"
    assert older.exists()
    assert current.stat().st_size <= 8192
    assert older.stat().st_size <= 8192
    found = httpx.get(f"{small.url}/functions/r/logs?limit=1000", timeout=30).json()["records"]
    kept = {r["invocation_id"] for r in found}
    assert 0 < len(kept) < 200
    assert all(r["version"] == hashlib.sha256(code.encode()).hexdigest() for r in found)
    # Whatever was kept is the newest: the last invocations sent are all there.
    assert {f"rot-{i}" for i in range(195, 200)} <= kept
