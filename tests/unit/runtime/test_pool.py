"""Warm pools: concurrency, capacity, recycling, and the many-function memory budget."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest

from vortex_runtime.errors import RuntimeBusy
from vortex_runtime.isolate import Isolate, Limits
from vortex_runtime.pool import FunctionPool, FunctionRegistry
from vortex_runtime.prewarm import Prewarmer

from .conftest import context


@pytest.fixture
async def pools():  # type: ignore[no-untyped-def]
    made: list[FunctionPool] = []

    def make(code: str, size: int = 4) -> FunctionPool:
        pool = FunctionPool("t", code, Limits(timeout_ms=2000), size)
        made.append(pool)
        return pool

    yield make
    from vortex_runtime import watchdog

    for pool in made:
        pool.close()
    assert await asyncio.to_thread(watchdog.wait_idle, 10)


async def test_invocations_awaiting_timers_overlap(pools) -> None:  # type: ignore[no-untyped-def]
    pool = pools("await new Promise(r => setTimeout(r, 300)); return event;", size=5)
    await pool.warm()
    started = time.monotonic()
    results = await asyncio.gather(*(pool.invoke(str(i), context(), 2, 1) for i in range(5)))
    elapsed = time.monotonic() - started
    assert [r.outcome.output_json for r in results] == ["0", "1", "2", "3", "4"]
    assert elapsed < 0.9  # five 300 ms invocations side by side, not one after another


async def test_busy_pool_answers_runtime_busy_quickly(pools) -> None:  # type: ignore[no-untyped-def]
    pool = pools("await new Promise(r => setTimeout(r, 500)); return 1;", size=1)
    await pool.warm()
    slow = asyncio.ensure_future(pool.invoke("null", context(), 2, 1))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(RuntimeBusy):
        await pool.invoke("null", context(), 2, 0.1)
    assert time.monotonic() - started < 0.3
    assert (await slow).outcome.output_json == "1"


async def test_waiter_gets_isolate_when_one_frees(pools) -> None:  # type: ignore[no-untyped-def]
    pool = pools("await new Promise(r => setTimeout(r, 100)); return 1;", size=1)
    results = await asyncio.gather(*(pool.invoke("null", context(), 2, 2) for _ in range(3)))
    assert all(r.outcome.output_json == "1" for r in results)
    assert pool.isolates == 1


async def test_broken_isolate_is_replaced(pools) -> None:  # type: ignore[no-untyped-def]
    pool = pools("if (event) { while (true) {} } return 'ok';", size=1)
    await pool.warm()
    with pytest.raises(Exception, match="timeout"):
        await pool.invoke("true", context(), 0.1, 1)
    result = await pool.invoke("null", context(), 1, 1)
    assert result.outcome.output_json == '"ok"'
    assert result.cold_start is True
    assert pool.isolates == 1


async def test_registry_evicts_least_recently_used_under_budget(tmp_path) -> None:  # type: ignore[no-untyped-def]
    codes = {f"f{i}": f"globalThis.big = new Array(2e5).fill({i}); return {i};" for i in range(6)}

    async def load(key: str) -> str:
        return codes[key]

    # Room for about three warm isolates (each about 2 MB: its committed heap and overhead).
    registry = FunctionRegistry(load, Limits(), pool_size=2, budget_bytes=3 * 2 * 1024 * 1024)
    try:
        for key in codes:
            pool = await registry.pool(key, None)
            result = await pool.invoke("null", context(), 2, 1)
            assert result.outcome.output_json == key[1:]
            await registry.sweep(1.0)  # the prober's round: measures, then holds the budget
        alive = [p.name for p in registry.pools]
        assert "f5" in alive
        assert "f0" not in alive
        assert registry.estimated_bytes() <= 3 * 2 * 1024 * 1024 + 2 * 1024 * 1024
        # An evicted function comes back on demand.
        pool = await registry.pool("f0", None)
        assert (await pool.invoke("null", context(), 2, 1)).outcome.output_json == "0"
    finally:
        registry.close()
        from vortex_runtime import watchdog

        assert await asyncio.to_thread(watchdog.wait_idle, 10)


async def test_new_function_ready_in_milliseconds_without_new_process(client_for, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "warm.js").write_text("return 1")
    client: httpx.AsyncClient = await client_for(store_dir=tmp_path)
    await client.post("/invoke/warm.js")
    (tmp_path / "fresh.js").write_text("return 'fresh'")
    response = await client.post("/invoke/fresh.js")
    assert response.json()["output"] == "fresh"
    assert response.headers["x-vortex-cold-start"] == "1"


async def test_probe_measures_memory_without_blocking_and_only_after_use() -> None:
    """The probe is an eval like any other (the event loop never waits on the isolate), and V8
    is measured again only when an invocation ran since the last probe."""
    isolate = await Isolate.create(
        "globalThis.keep = new Uint8Array(event.mb * 1048576); return keep.length", Limits()
    )
    try:
        await isolate.invoke('{"mb": 3}', context(), 2)
        assert await isolate.probe(1.0)
        assert isolate.outside_used >= 3 * 1048576
        assert isolate.heap_used > 0
        first = (isolate.heap_used, isolate.outside_used)
        assert await isolate.probe(1.0)
        assert (isolate.heap_used, isolate.outside_used) == first
        await isolate.invoke('{"mb": 1}', context(), 2)
        assert await isolate.probe(1.0)
        assert isolate.outside_used != first[1]  # measured again (the old buffer awaits a GC)
    finally:
        isolate.close_now()


async def test_registry_pools_by_function_identity_and_spec() -> None:
    """The code key alone never picks a pool: the function's name, env and limits do too."""
    loads: list[str] = []

    async def load(key: str) -> str:
        loads.append(key)
        return "globalThis.n = (globalThis.n || 0) + 1; return n;"

    registry = FunctionRegistry(load, Limits(timeout_ms=2000), pool_size=2, budget_bytes=1 << 30)
    try:
        a = await registry.pool("code.js", function="a", env={"K": "1", "L": "2"})
        assert await registry.pool("code.js", function="a", env={"L": "2", "K": "1"}) is a
        assert await registry.pool("code.js", 128, function="a", env={"K": "1", "L": "2"}) is a
        assert (
            await registry.pool("code.js", function="a", env={"K": "1", "L": "2"}, timeout_ms=2000)
            is a
        )
        others = [
            await registry.pool("code.js", function="b", env={"K": "1", "L": "2"}),
            await registry.pool("code.js"),
            await registry.pool("code.js", function="c", env={"K": "2"}),
            await registry.pool("code.js", function="d", timeout_ms=3000),
            await registry.pool("code.js", 64, function="e"),
        ]
        assert len({id(p) for p in [a, *others]}) == 6
        assert loads == ["code.js"] * 6  # each pool loads (and checks) the code itself
        # Each pool runs in isolates of its own: the counter starts again in every one.
        outputs = [(await p.invoke("null", context(), 2, 1)).outcome.output_json for p in others]
        assert outputs == ["1"] * 5
        assert (await a.invoke("null", context(), 2, 1)).outcome.output_json == "1"
        assert (await a.invoke("null", context(), 2, 1)).outcome.output_json == "2"
        assert a.limits.timeout_ms == 2000
        assert others[3].limits.timeout_ms == 3000
        assert others[4].limits.memory_mb == 64
    finally:
        registry.close()
        from vortex_runtime import watchdog

        assert await asyncio.to_thread(watchdog.wait_idle, 10)


async def test_registry_retires_a_functions_older_pool() -> None:
    """A function invoked with new code (or a new spec) no longer keeps its older isolates."""

    async def load(key: str) -> str:
        return f"await new Promise(r => setTimeout(r, event || 0)); return {key[1]!r};"

    registry = FunctionRegistry(load, Limits(timeout_ms=2000), pool_size=2, budget_bytes=1 << 30)
    try:
        old = await registry.pool("v1", function="f")
        await old.warm()
        busy = asyncio.ensure_future(old.invoke("200", context(), 2, 1))
        await asyncio.sleep(0.05)
        new = await registry.pool("v2", function="f")
        assert registry.pools == [new]
        # The invocation already running on the older code finishes, then its isolate goes.
        assert (await busy).outcome.output_json == '"1"'
        assert old.isolates == 0
        assert (await new.invoke("0", context(), 2, 1)).outcome.output_json == '"2"'
        # Another function with the older code is not affected.
        other = await registry.pool("v1", function="g")
        assert sorted(p.name for p in registry.pools) == ["f", "g"]
        assert other is not old
    finally:
        registry.close()
        from vortex_runtime import watchdog

        assert await asyncio.to_thread(watchdog.wait_idle, 10)


async def test_a_function_that_hogged_a_cpu_gets_demoted_isolates_for_a_while(pools) -> None:  # type: ignore[no-untyped-def]
    """After one of its isolates was demoted or broken by its timeout, a function's new isolates
    start at the lowest priority, so recycling them does not give it its cores back."""
    pool = pools("if (event) { while (true) {} } return 'ok';", size=1)
    await pool.warm()
    assert (await pool.invoke("null", context(), 1, 1)).outcome.output_json == '"ok"'
    with pytest.raises(Exception, match="timeout"):
        await pool.invoke("true", context(), 0.1, 1)
    result = await pool.invoke("null", context(), 1, 1)
    assert result.cold_start is True
    assert result.outcome.output_json == '"ok"'
    assert pool._idle[-1].demoted


async def test_a_noisy_function_makes_its_own_isolates_at_the_lowest_priority() -> None:
    """The prewarmed stock serves its neighbours' cold starts: a function that broke its
    isolate makes new ones on the demoted maker, their threads at nice 19 from the start."""
    from vortex_runtime import sched, watchdog

    stock = Prewarmer(2)
    pool = FunctionPool("t", "if (event) { while (true) {} } return 'ok';", Limits(), 1, stock)
    try:
        await stock.fill()
        await pool.warm()  # from the stock: the function is not noisy yet
        await _until_stocked(stock, 2)
        with pytest.raises(Exception, match="timeout"):
            await pool.invoke("true", context(), 0.1, 1)
        result = await pool.invoke("null", context(), 1, 1)
        assert result.cold_kind == "isolate"  # not "prewarmed": the stock was left alone
        assert stock.ready == 2
        isolate = pool._idle[-1]
        threads = isolate._blank.threads
        assert threads
        assert {os.getpriority(os.PRIO_PROCESS, tid) for tid in threads} == {sched.DEMOTED_NICE}
    finally:
        pool.close()
        stock.close()
        assert await asyncio.to_thread(watchdog.wait_idle, 10)


async def _until_stocked(stock: Prewarmer, ready: int) -> None:
    for _ in range(200):
        if stock.ready == ready:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the stock did not refill")
