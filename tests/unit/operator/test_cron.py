"""The leader's cron ticker on a clock the test moves, with an in-memory status and API: each
tick queued once, its status written; a new leader skips what the status says was queued;
after downtime only the latest missed tick; none from before the function existed; a failed
post is tried again; time zones; functions of other namespaces left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from vortex_kube.contract import FunctionSpec
from vortex_operator.cron import Ticker
from vortex_operator.model import FunctionRef

NS = "apps"
CREATED = "2026-12-01T00:00:00Z"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Kube:
    """VortexFunctions by name, with the status the ticker patches."""

    def __init__(self) -> None:
        self.bodies: dict[str, dict[str, Any]] = {}
        self.patches: list[tuple[str, dict[str, Any]]] = []

    def add(self, name: str, created: str = CREATED, **status: Any) -> None:
        self.bodies[name] = {
            "metadata": {"name": name, "namespace": NS, "creationTimestamp": created},
            "status": dict(status),
        }

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        assert kind == "VortexFunction"
        return self.bodies.get(name) if namespace == NS else None

    async def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        self.patches.append((name, patch))
        self.bodies[name]["status"].update(patch)
        return self.bodies[name]


class Api:
    def __init__(self) -> None:
        self.ticks: list[tuple[str, datetime]] = []
        self.down = False

    async def queue_tick(self, name: str, tick: datetime) -> str:
        if self.down:
            raise RuntimeError("connection refused")
        self.ticks.append((name, tick))
        return f"{name}.{tick.astimezone(UTC):%Y%m%dT%H%MZ}"


def _spec(schedule: str, time_zone: str | None = None) -> FunctionSpec:
    doc: dict[str, Any] = {"code": "return 1;", "schedule": schedule}
    if time_zone:
        doc["timeZone"] = time_zone
    return FunctionSpec.parse(doc)


def _ticker(
    kube: Kube, api: Api, clock: Clock, functions: dict[str, FunctionSpec], namespace: str = NS
) -> Ticker:
    def listed() -> list[tuple[FunctionRef, FunctionSpec]]:
        return [(FunctionRef(namespace, name, f"uid-{name}"), s) for name, s in functions.items()]

    return Ticker(kube, api, namespace=NS, functions=listed, interval_s=10.0, clock=clock)


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 12, 7, hour, minute, second, tzinfo=UTC)


async def test_each_tick_is_queued_once_and_recorded_in_the_status() -> None:
    kube, api, clock = Kube(), Api(), Clock(at(10, 0, 0) + timedelta(milliseconds=50))
    kube.add("every")
    ticker = _ticker(kube, api, clock, {"every": _spec("* * * * *")})

    wake = await ticker.tick()
    assert api.ticks == [("every", at(10, 0))]
    assert kube.bodies["every"]["status"] == {
        "lastScheduleTime": "2026-12-07T10:00:00Z",
        "lastScheduleInvocation": "every.20261207T1000Z",
    }
    assert wake == clock.now.timestamp() + 10.0  # the next look, before the next tick

    clock.now = at(10, 0, 55)
    assert await ticker.tick() == at(10, 1).timestamp()
    assert len(api.ticks) == 1
    assert len(kube.patches) == 1
    clock.now = at(10, 1, 0)
    await ticker.tick()
    assert api.ticks[-1] == ("every", at(10, 1))


async def test_a_new_leader_skips_the_tick_its_predecessor_queued() -> None:
    kube, api, clock = Kube(), Api(), Clock(at(10, 0, 20))
    kube.add("every", lastScheduleTime="2026-12-07T10:00:00Z")
    await _ticker(kube, api, clock, {"every": _spec("* * * * *")}).tick()
    assert api.ticks == []
    clock.now = at(10, 1, 1)
    await _ticker(kube, api, clock, {"every": _spec("* * * * *")}).tick()
    assert api.ticks == [("every", at(10, 1))]


async def test_after_downtime_only_the_latest_missed_tick_runs() -> None:
    kube, api, clock = Kube(), Api(), Clock(at(10, 17, 40))
    kube.add("every", lastScheduleTime="2026-12-07T10:05:00Z")
    kube.add("hourly", lastScheduleTime="2026-12-07T09:00:00Z")
    functions = {"every": _spec("*/5 * * * *"), "hourly": _spec("@hourly")}
    await _ticker(kube, api, clock, functions).tick()
    assert sorted(api.ticks) == [("every", at(10, 15)), ("hourly", at(10, 0))]


async def test_no_tick_from_before_the_function_existed() -> None:
    kube, api, clock = Kube(), Api(), Clock(at(10, 30, 10))
    kube.add("young", created="2026-12-07T10:12:00Z")
    ticker = _ticker(kube, api, clock, {"young": _spec("@hourly")})
    await ticker.tick()
    assert api.ticks == []
    clock.now = at(11, 0, 0)
    await ticker.tick()
    assert api.ticks == [("young", at(11, 0))]


async def test_a_tick_the_api_did_not_take_is_tried_again() -> None:
    kube, api, clock = Kube(), Api(), Clock(at(10, 0, 1))
    kube.add("every")
    ticker = _ticker(kube, api, clock, {"every": _spec("* * * * *")})
    api.down = True
    wake = await ticker.tick()
    assert api.ticks == []
    assert kube.patches == []
    assert wake <= clock.now.timestamp() + 10.0
    api.down = False
    clock.now = at(10, 0, 11)
    await ticker.tick()
    assert api.ticks == [("every", at(10, 0))]
    assert kube.bodies["every"]["status"]["lastScheduleTime"] == "2026-12-07T10:00:00Z"


async def test_a_schedule_ticks_in_its_time_zone() -> None:
    kube, api, clock = Kube(), Api(), Clock(at(8, 0, 5))  # 09:00 in Paris in December
    kube.add("paris", lastScheduleTime="2026-12-06T08:00:00Z")
    kube.add("utc", lastScheduleTime="2026-12-06T09:00:00Z")
    functions = {"paris": _spec("0 9 * * *", "Europe/Paris"), "utc": _spec("0 9 * * *")}
    await _ticker(kube, api, clock, functions).tick()
    assert api.ticks == [("paris", at(8, 0))]


async def test_functions_of_other_namespaces_are_left_alone() -> None:
    kube, api, clock = Kube(), Api(), Clock(at(10, 0, 5))
    kube.add("every")
    await _ticker(kube, api, clock, {"every": _spec("* * * * *")}, namespace="other").tick()
    assert api.ticks == []
