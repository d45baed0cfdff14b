"""The scheduler's ticks against a real SQLite queue, on a clock the test moves: one invocation
per tick with an id made of the function and the tick, nothing twice (a second look, a restarted
scheduler), only the latest missed tick after downtime, none from before the schedule was set,
and time zones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from vortex_api.functions import Function
from vortex_api.gateway import Gateway
from vortex_api.queues import Queue
from vortex_api.queues.sqlite import SqliteQueue
from vortex_api.queues.ticks import tick_id
from vortex_api.scheduler import Scheduler

T0 = datetime(2026, 12, 7, 10, 0, 30, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Backend:
    def __init__(self, *functions: Function) -> None:
        self.functions = list(functions)

    async def list(self) -> list[Function]:
        return self.functions


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[Queue]:
    q = SqliteQueue(tmp_path / "queue.sqlite3")
    await q.open()
    yield q
    await q.close()


def _function(name: str, schedule: str, since: float = T0 - 3600, **fields: Any) -> Function:
    return Function(
        function_id=name, timeout_ms=1000, memory_mb=128, schedule=schedule,
        schedule_since=since, **fields,
    )  # fmt: skip


def _scheduler(queue: Queue, clock: Clock, *functions: Function) -> Scheduler:
    gw = cast(Gateway, SimpleNamespace(backend=Backend(*functions)))
    return Scheduler(gw, queue, clock=clock)


async def _ids(queue: Queue, ids: list[str]) -> list[str]:
    return [i for i in ids if await queue.get(i) is not None]


async def test_each_tick_queues_once_with_its_id(queue: Queue) -> None:
    clock = Clock(T0)
    function = _function("every", "* * * * *", schedule_event={"job": 1})
    scheduler = _scheduler(queue, clock, function)
    wake = await scheduler.tick()
    assert wake == datetime(2026, 12, 7, 10, 1, tzinfo=UTC).timestamp()
    first = tick_id("every", datetime(2026, 12, 7, 10, 0, tzinfo=UTC))
    assert first == "every.20261207T1000Z"
    stored = await queue.get(first)
    assert stored is not None
    assert (stored.function, stored.event, stored.status) == ("every", b'{"job": 1}', "queued")
    assert function.last_schedule_invocation == first
    assert function.last_schedule_time == "2026-12-07T10:00:00Z"
    await scheduler.tick()  # a second look in the same minute
    again = _scheduler(queue, clock, _function("every", "* * * * *"))  # a restart
    await again.tick()
    claimed = [await queue.claim(clock.now, 60) for _ in range(3)]
    assert [c.invocation_id for c in claimed if c is not None] == [first]
    clock.now = wake + 0.05
    await scheduler.tick()
    assert await queue.get("every.20261207T1001Z") is not None


async def test_after_downtime_only_the_latest_missed_tick_runs(queue: Queue) -> None:
    clock = Clock(T0 + 10 * 60)  # ten ticks were missed
    scheduler = _scheduler(queue, clock, _function("every", "* * * * *"))
    await scheduler.tick()
    minutes = [f"every.20261207T10{m:02d}Z" for m in range(11)]
    assert await _ids(queue, minutes) == ["every.20261207T1010Z"]


async def test_no_tick_from_before_the_schedule_was_set(queue: Queue) -> None:
    clock = Clock(T0)
    function = _function("new", "* * * * *", since=T0 - 10)  # set at 10:00:20
    scheduler = _scheduler(queue, clock, function)
    await scheduler.tick()
    assert await queue.get("new.20261207T1000Z") is None
    clock.now = T0 + 30  # 10:01:00
    await scheduler.tick()
    assert await queue.get("new.20261207T1001Z") is not None


async def test_ticks_follow_the_time_zone(queue: Queue) -> None:
    at_nine_in_paris = datetime(2026, 12, 7, 8, 0, 5, tzinfo=UTC).timestamp()
    clock = Clock(at_nine_in_paris)
    paris = _function(
        "paris", "0 9 * * *", since=at_nine_in_paris - 86400, time_zone="Europe/Paris"
    )
    utc = _function("utc", "0 9 * * *", since=at_nine_in_paris - 86400)
    await _scheduler(queue, clock, paris, utc).tick()
    assert await queue.get("paris.20261207T0800Z") is not None
    assert await queue.get("utc.20261207T0900Z") is None  # not yet: 09:00 UTC is an hour away
    assert await queue.get("utc.20261206T0900Z") is not None  # yesterday's, missed


def test_long_names_keep_ids_within_64_characters() -> None:
    name = "f" * 60
    tick = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert len(tick_id(name, tick)) <= 64
    assert tick_id(name, tick) != tick_id("f" * 59 + "g", tick)
