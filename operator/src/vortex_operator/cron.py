"""Cron triggers in the cluster: the leader queues the ticks of every scheduled function.

`handlers.startup` runs a `Ticker` on the leader (kopf runs there only) when the settings name
the API Service. At each tick of any function, and every `interval_s` (to see new schedules),
it takes each function with a `spec.schedule` that the controller knows, and the latest tick at
or before now in its `spec.timeZone`. That tick is queued through the API, which owns the async
queue (`POST /internal/ticks/{name}`, `loadsource.ApiLoadSource.queue_tick`), unless
`status.lastScheduleTime` already is that tick or later, or the tick is older than the function.
Then `status.lastScheduleTime` and `status.lastScheduleInvocation` record it.

The invocation's id is made of the function and the tick, so a tick queued twice (a new leader
that finds its predecessor's status not yet written) is one invocation; after downtime only the
latest missed tick is queued, as a CronJob without `startingDeadlineSeconds` would, but once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from vortex_kube.contract import KIND, FunctionSpec
from vortex_kube.cron import Schedule, zone
from vortex_operator.conditions import parse_time, timestamp, utc_now
from vortex_operator.model import FunctionRef

log = logging.getLogger("vortex_operator.cron")

LATE_S = 0.05  # wake this long after a tick, so that it is at or before the clock


class TickKube(Protocol):
    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None: ...


class TickSink(Protocol):
    async def queue_tick(self, name: str, tick: datetime) -> str:
        """Queue `name`'s tick at `tick`; its invocation id. Raises on any failure."""
        ...


class Ticker:
    def __init__(
        self,
        kube: TickKube,
        sink: TickSink,
        *,
        namespace: str,
        functions: Callable[[], Iterable[tuple[FunctionRef, FunctionSpec]]],
        interval_s: float = 10.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.kube = kube
        self.sink = sink
        self.namespace = namespace  # the API's: it runs the functions of its namespace only
        self.functions = functions
        self.interval_s = interval_s
        self.clock = clock
        # (namespace, name) -> (schedule, the latest tick seen queued), to skip reading status
        self.done: dict[tuple[str, str], tuple[str, datetime]] = {}

    async def run(self) -> None:
        """Tick until cancelled; a failed look is logged and the next one tries again."""
        while True:
            try:
                wake = await self.tick()
            except Exception:
                log.exception("cron ticker failed; it carries on")
                wake = self.clock().timestamp() + self.interval_s
            delay = wake - self.clock().timestamp() + LATE_S
            await asyncio.sleep(min(self.interval_s, max(LATE_S, delay)))

    async def tick(self) -> float:
        """Queue what is due now; return when (epoch seconds) to look again."""
        now = self.clock()
        wake = now.timestamp() + self.interval_s
        seen: set[tuple[str, str]] = set()
        for ref, spec in self.functions():
            if not spec.schedule or ref.namespace != self.namespace:
                continue
            seen.add(ref.key)
            try:
                schedule = Schedule.parse(spec.schedule)
                local_now = now.astimezone(zone(spec.time_zone))
            except ValueError as exc:  # the CRD and /deploy check; an older object may not pass
                log.warning("function %s: %s", ref.name, exc)
                continue
            upcoming = schedule.next_after(local_now)
            if upcoming is not None:
                wake = min(wake, upcoming.timestamp())
            latest = schedule.previous(local_now)
            if latest is not None and self.done.get(ref.key) != (spec.schedule, latest):
                await self._queue(ref, spec.schedule, latest)
        for gone in set(self.done) - seen:
            del self.done[gone]
        return wake

    async def _queue(self, ref: FunctionRef, schedule: str, tick: datetime) -> None:
        body = await self.kube.get(KIND, ref.namespace, ref.name)
        if body is None:
            return
        status = body.get("status") or {}
        last = parse_time(status.get("lastScheduleTime"))
        created = parse_time((body.get("metadata") or {}).get("creationTimestamp"))
        if (last is not None and last >= tick) or (created is not None and tick < created):
            self.done[ref.key] = (schedule, tick)
            return
        try:
            invocation_id = await self.sink.queue_tick(ref.name, tick)
        except Exception as exc:  # the API is down or restarting: the next look tries again
            log.warning("tick %s of %s not queued: %s", timestamp(tick), ref.name, exc)
            return
        await self.kube.patch_status(
            ref.namespace,
            ref.name,
            {"lastScheduleTime": timestamp(tick), "lastScheduleInvocation": invocation_id},
        )
        self.done[ref.key] = (schedule, tick)
        log.info("queued tick %s of %s as %s", timestamp(tick), ref.name, invocation_id)
