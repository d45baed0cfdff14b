"""The endpoint table: least in-flight, affinity on ties, exclusions, waiting for readiness."""

from __future__ import annotations

import asyncio

from vortex_api.routing import EndpointTable


def test_pick_prefers_least_inflight() -> None:
    table = EndpointTable()
    a, b, c = (table.add("g", u) for u in ("a", "b", "c"))
    a.inflight, b.inflight, c.inflight = 2, 1, 3
    assert table.pick("g") is b
    b.inflight = 5
    assert table.pick("g") is a


def test_affinity_breaks_ties_and_spreads_functions() -> None:
    table = EndpointTable()
    eps = [table.add("g", u) for u in ("a", "b", "c")]
    assert [table.pick("g", affinity=i) for i in range(4)] == [*eps, eps[0]]


def test_exclude_and_empty_group() -> None:
    table = EndpointTable()
    a = table.add("g", "a")
    assert table.pick("g", exclude=[a]) is None
    assert table.pick("missing") is None


def test_replace_keeps_inflight_of_endpoints_that_stay() -> None:
    table = EndpointTable()
    a = table.add("g", "a")
    a.inflight = 4
    table.replace("g", ["a", "b"])
    assert [(e.url, e.inflight) for e in table.endpoints("g")] == [("a", 4), ("b", 0)]
    table.replace("g", [])
    assert table.groups() == []


def test_add_is_idempotent_and_remove_drops() -> None:
    table = EndpointTable()
    assert table.add("g", "a") is table.add("g", "a")
    table.remove("g", "a")
    table.remove("g", "a")
    assert table.endpoints("g") == []


async def test_wait_returns_when_an_endpoint_arrives() -> None:
    table = EndpointTable()
    waiter = asyncio.create_task(table.wait("g", 5))
    await asyncio.sleep(0)
    assert not waiter.done()
    a = table.add("g", "a")
    assert await waiter is a


async def test_wait_skips_excluded_endpoints() -> None:
    table = EndpointTable()
    a = table.add("g", "a")
    waiter = asyncio.create_task(table.wait("g", 5, exclude=[a]))
    await asyncio.sleep(0)
    assert not waiter.done()
    table.remove("g", "a")
    b = table.add("g", "b")
    assert await waiter is b


async def test_wait_gives_up_after_timeout() -> None:
    table = EndpointTable()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await table.wait("g", 0.05) is None
    assert loop.time() - started < 1


def test_on_remove_is_told_about_departed_endpoints() -> None:
    gone: list[str] = []
    table = EndpointTable(on_remove=gone.append)
    table.add("g", "a")
    table.add("g", "b")
    table.remove("g", "a")
    table.remove("g", "a")
    table.replace("g", ["b", "c"])
    table.replace("g", ["c"])
    assert gone == ["a", "b"]
