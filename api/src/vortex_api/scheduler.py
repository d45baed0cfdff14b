"""Cron triggers in local mode: one async invocation per tick of each function's `spec.schedule`.

`app.lifespan` runs one with the local backend (one API process owns its data dir, so it is the
only one ticking; in the cluster the operator's leader ticks, through `POST /internal/ticks`).
At every tick, and at least once a minute, it looks at each scheduled function and queues the
latest tick at or before now, if that tick is not older than the schedule itself
(`Function.schedule_since`). The invocation's id is made of the function and the tick
(`queues.ticks.tick_id`), so queueing a tick again, after a restart or on the next look, finds
the one already queued: a tick runs once, and after downtime only the latest missed tick runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime

from vortex_api.errors import ApiError
from vortex_api.functions import Function
from vortex_api.gateway import Gateway
from vortex_api.queues import Queue
from vortex_api.queues.ticks import tick_id, tick_invocation, tick_time
from vortex_kube.cron import Schedule, zone

log = logging.getLogger(__name__)

MAX_SLEEP_S = 60.0
LATE_S = 0.05  # wake this long after a tick, so that it is at or before the clock


class Scheduler:
    """Queues the ticks of every scheduled function of the backend."""

    def __init__(self, gw: Gateway, queue: Queue, clock: Callable[[], float] = time.time) -> None:
        self.gw = gw
        self.queue = queue
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="vortex-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                wake = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the scheduler failed; it carries on")
                wake = self.clock() + MAX_SLEEP_S
            await asyncio.sleep(max(LATE_S, min(MAX_SLEEP_S, wake - self.clock() + LATE_S)))

    async def tick(self) -> float:
        """Queue what is due now; return when (epoch seconds) the next tick of any is due."""
        now = self.clock()
        wake = now + MAX_SLEEP_S
        for function in await self.gw.backend.list():
            if not function.schedule:
                continue
            try:
                schedule = Schedule.parse(function.schedule)
                local_now = datetime.fromtimestamp(now, zone(function.time_zone))
            except ValueError as exc:  # checked at deploy; a stored one may predate a rule
                log.warning("function %s: %s", function.function_id, exc)
                continue
            latest = schedule.previous(local_now)
            if latest is not None and latest.timestamp() >= function.schedule_since:
                await self._queue(function, latest)
            upcoming = schedule.next_after(local_now)
            if upcoming is not None:
                wake = min(wake, upcoming.timestamp())
        return wake

    async def _queue(self, function: Function, tick: datetime) -> None:
        invocation_id = tick_id(function.function_id, tick)
        if function.last_schedule_invocation == invocation_id:  # every look until the next tick
            return
        try:
            stored, created = await self.queue.enqueue(
                tick_invocation(function, tick, self.clock())
            )
        except ApiError as exc:
            log.warning("tick %s of %s not queued: %s", invocation_id, function.function_id, exc)
            return
        if created:
            log.info("queued tick %s of %s", invocation_id, function.function_id)
        function.last_schedule_time = tick_time(tick)
        function.last_schedule_invocation = stored.invocation_id
