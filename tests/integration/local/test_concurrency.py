"""Concurrency on real workers: overlap, the bulkhead under overload, runaway code."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx

from tests.integration.local.test_execute import deploy

SLEEP_300 = "await new Promise((resolve) => setTimeout(resolve, 300)); return 'slept';"


async def test_five_slow_async_calls_overlap(client: httpx.AsyncClient) -> None:
    fid = await deploy(client, SLEEP_300)
    await client.post(f"/execute/{fid}")  # warm up

    started = time.perf_counter()
    responses = await asyncio.gather(*(client.post(f"/execute/{fid}") for _ in range(5)))
    elapsed = time.perf_counter() - started

    assert [r.status_code for r in responses] == [200] * 5
    assert all(r.json()["output"] == "slept" for r in responses)
    assert elapsed < 1.0, f"5 x 300 ms took {elapsed:.2f}s: they did not overlap"


async def test_overload_gets_immediate_503s_and_no_hang(client: httpx.AsyncClient) -> None:
    fid = await deploy(client, SLEEP_300)
    await client.post(f"/execute/{fid}")

    async def timed() -> tuple[httpx.Response, float]:
        t0 = time.perf_counter()
        response = await client.post(f"/execute/{fid}")
        return response, time.perf_counter() - t0

    started = time.perf_counter()
    async with asyncio.timeout(10):
        results = await asyncio.gather(*(timed() for _ in range(30)))
    elapsed = time.perf_counter() - started

    statuses = [r.status_code for r, _ in results]
    rejected = [(r, t) for r, t in results if r.status_code == 503]
    assert set(statuses) <= {200, 503}
    assert 1 <= statuses.count(200) <= 30 - len(rejected)
    assert len(rejected) >= 10
    for response, seconds in rejected:
        assert response.headers["retry-after"]
        assert response.json()["error"]["type"] == "CapacityExceeded"
        assert seconds < 1.0
    # Refusals do not wait for a slot: most come back before the first accepted execution (a
    # 300 ms sleep) has ended. Compared with that execution, not with a clock figure, so that a
    # loaded machine slows both alike.
    accepted = [t for r, t in results if r.status_code == 200]
    assert statistics.median(seconds for _, seconds in rejected) < min(accepted)
    assert elapsed < 3
    health = (await client.get("/health")).json()
    assert health["active_workers"] == 0


async def test_runaway_code_times_out_and_the_next_call_succeeds(
    client: httpx.AsyncClient,
) -> None:
    runaway = await deploy(client, "while (true) {}", timeout_ms=500)
    fine = await deploy(client, "return 'fine';")

    started = time.perf_counter()
    response = await client.post(f"/execute/{runaway}")
    elapsed = time.perf_counter() - started

    assert response.status_code == 504
    assert response.json()["error"]["type"] == "Timeout"
    assert elapsed < 0.5 + 1.0 + 0.5
    after = await client.post(f"/execute/{fine}")
    assert after.status_code == 200
    assert after.json()["output"] == "fine"
    again = await client.post(f"/execute/{runaway}")
    assert again.status_code == 504
