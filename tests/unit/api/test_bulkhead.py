"""The bulkhead refuses past its caps at once (503 + Retry-After) and frees slots afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.unit.api.conftest import FakeRuntime
from vortex_api.backends.local import LocalBackend
from vortex_api.bulkhead import Bulkhead
from vortex_api.errors import CapacityExceeded
from vortex_api.settings import Settings


def test_global_cap() -> None:
    bulkhead = Bulkhead(2, retry_after_s=3)
    bulkhead.enter("a", None)
    bulkhead.enter("b", None)
    with pytest.raises(CapacityExceeded) as caught:
        bulkhead.enter("c", None)
    assert caught.value.headers == {"Retry-After": "3"}
    bulkhead.leave("a", None)
    bulkhead.enter("c", None)
    assert bulkhead.inflight == 2


def test_per_function_cap_leaves_other_functions_alone() -> None:
    bulkhead = Bulkhead(10)
    bulkhead.enter("a", 1)
    with pytest.raises(CapacityExceeded, match="'a'"):
        bulkhead.enter("a", 1)
    bulkhead.enter("b", 1)
    bulkhead.leave("a", 1)
    bulkhead.enter("a", 1)
    assert bulkhead.function_inflight("a") == 1
    bulkhead.leave("a", 1)
    assert bulkhead.function_inflight("a") == 0


class SlowRuntime:
    """Holds every invocation until released, to fill the bulkhead (warm-ups are `FakeRuntime`'s)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0
        self._changed = asyncio.Condition()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        async with self._changed:
            self.started += 1
            self._changed.notify_all()
        await self.release.wait()
        return httpx.Response(200, content=b'{"output":null,"logs":[],"execution_time_ms":0}')

    async def until_started(self, count: int) -> None:
        async with asyncio.timeout(5), self._changed:
            await self._changed.wait_for(lambda: self.started >= count)


@pytest.fixture
def slow(runtime: FakeRuntime) -> SlowRuntime:
    runtime.handler = slow = SlowRuntime()
    return slow


@pytest.fixture
def backend(settings: Settings, runtime: FakeRuntime, slow: SlowRuntime) -> LocalBackend:
    settings.max_workers = 3
    backend = LocalBackend(settings, runtime.transport(), supervise=False)
    backend.table.add("local", "http://worker-0")
    return backend


async def test_over_capacity_answers_503_at_once(
    client: httpx.AsyncClient, slow: SlowRuntime, deploy: Callable[..., Any]
) -> None:
    fn = await deploy()
    held = [asyncio.create_task(client.post(f"/execute/{fn.function_id}")) for _ in range(3)]
    await slow.until_started(3)

    async with asyncio.timeout(1):
        refused = await client.post(f"/execute/{fn.function_id}")
        health = await client.get("/health")

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["type"] == "CapacityExceeded"
    assert health.json() == {"status": "healthy", "active_workers": 3, "max_workers": 3}
    slow.release.set()
    assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200, 200]
    assert (await client.post(f"/execute/{fn.function_id}")).status_code == 200
    metrics = (await client.get("/metrics")).text
    assert "vortex_capacity_rejections_total 1.0" in metrics


async def test_function_concurrency_caps_that_function(
    client: httpx.AsyncClient, slow: SlowRuntime, deploy: Callable[..., Any]
) -> None:
    capped = await deploy(name="capped", concurrency=1)
    other = await deploy(name="other")
    held = asyncio.create_task(client.post(f"/execute/{capped.function_id}"))
    await slow.until_started(1)

    refused = await client.post(f"/execute/{capped.function_id}")
    other_call = asyncio.create_task(client.post(f"/execute/{other.function_id}"))
    await slow.until_started(2)
    slow.release.set()

    assert refused.status_code == 503
    assert (await held).status_code == 200
    assert (await other_call).status_code == 200


async def test_settings_cap_applies_to_every_function(
    client: httpx.AsyncClient, slow: SlowRuntime, deploy: Callable[..., Any], settings: Settings
) -> None:
    settings.max_inflight_per_function = 1
    fn = await deploy()
    held = asyncio.create_task(client.post(f"/execute/{fn.function_id}"))
    await slow.until_started(1)

    refused = await client.post(f"/execute/{fn.function_id}")
    slow.release.set()

    assert refused.status_code == 503
    assert (await held).status_code == 200


async def test_inflight_and_capacity_are_exported(
    client: httpx.AsyncClient, slow: SlowRuntime, deploy: Callable[..., Any]
) -> None:
    fn = await deploy()
    held = [asyncio.create_task(client.post(f"/execute/{fn.function_id}")) for _ in range(2)]
    await slow.until_started(2)

    metrics = (await client.get("/metrics")).text
    assert "vortex_inflight_executions 2.0" in metrics
    assert "vortex_max_inflight_executions 3.0" in metrics
    slow.release.set()
    assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
    assert "vortex_inflight_executions 0.0" in (await client.get("/metrics")).text


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_load_integral_counts_every_burst_between_two_readings() -> None:
    clock = FakeClock()
    bulkhead = Bulkhead(10, clock=clock)
    first_at, first = bulkhead.loads()
    assert first == {}
    bulkhead.enter("a", None)
    clock.now += 0.5
    bulkhead.enter("a", None)
    clock.now += 0.25
    bulkhead.leave("a", None)
    bulkhead.leave("a", None)
    clock.now += 1.25
    at, loads = bulkhead.loads()
    assert loads == {"a": (0, 0.5 + 2 * 0.25)}
    # 1 s of executions in flight over 2 s: an average of 0.5, though none is in flight now.
    assert loads["a"][1] / (at - first_at) == 0.5


def test_load_counts_executions_still_in_flight() -> None:
    clock = FakeClock()
    bulkhead = Bulkhead(10, clock=clock)
    bulkhead.enter("a", 3)
    clock.now += 2
    assert bulkhead.loads()[1] == {"a": (1, 2.0)}
    assert bulkhead.function_inflight("a") == 1


def test_forget_keeps_a_function_with_executions_in_flight() -> None:
    bulkhead = Bulkhead(10)
    bulkhead.enter("a", None)
    bulkhead.forget("a")
    assert bulkhead.function_inflight("a") == 1
    bulkhead.leave("a", None)
    bulkhead.forget("a")
    assert bulkhead.loads()[1] == {}
