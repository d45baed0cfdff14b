"""The bulkhead: caps concurrent executions per API process, and per function, without queueing.

The execute route calls `enter` before routing and `leave` when the answer is ready. Past either
cap `enter` raises `CapacityExceeded` at once (503 with Retry-After): a full gateway answers
immediately instead of holding connections. Single event loop, so plain counters suffice.

Per function it also keeps the time integral of its executions in flight (`inflight_seconds`):
the operator's autoscaler reads it through `GET /internal/concurrency` (and Prometheus through
`/metrics`), and the difference of two readings over the time between them is the exact average
load of that interval, however short the bursts within it were.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from vortex_api.errors import CapacityExceeded


@dataclass(slots=True)
class FunctionLoad:
    """One function's executions in flight, and their integral over time until `since`."""

    inflight: int = 0
    inflight_seconds: float = 0.0
    since: float = 0.0

    def seconds_at(self, now: float) -> float:
        return self.inflight_seconds + self.inflight * (now - self.since)


class Bulkhead:
    """Counts in-flight executions overall and per function."""

    __slots__ = ("_clock", "_loads", "inflight", "instance", "max_inflight", "retry_after_s")

    def __init__(
        self,
        max_inflight: int,
        retry_after_s: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_inflight = max_inflight
        self.retry_after_s = retry_after_s
        self.inflight = 0
        self._clock = clock
        # Names this process's clock: readings of two instances are not comparable.
        self.instance = uuid.uuid4().hex
        self._loads: dict[str, FunctionLoad] = {}

    def enter(self, function_id: str, function_cap: int | None) -> None:
        """Take a slot or raise `CapacityExceeded`."""
        if self.inflight >= self.max_inflight:
            raise CapacityExceeded(
                f"all {self.max_inflight} execution slots are busy",
                retry_after_s=self.retry_after_s,
            )
        load = self._loads.get(function_id)
        if load is None:
            load = self._loads[function_id] = FunctionLoad(since=self._clock())
        if function_cap is not None and load.inflight >= function_cap:
            raise CapacityExceeded(
                f"function {function_id!r} is at its cap of {function_cap} executions",
                retry_after_s=self.retry_after_s,
            )
        # The integral brought up to now, then the count moved; inline, as in `leave` (no method
        # call): this runs on every execution.
        now = self._clock()
        load.inflight_seconds += load.inflight * (now - load.since)
        load.since = now
        load.inflight += 1
        self.inflight += 1

    def inflight_of(self, function_id: str) -> int:
        """The function's executions in flight in this process."""
        load = self._loads.get(function_id)
        return load.inflight if load is not None else 0

    def leave(self, function_id: str, function_cap: int | None) -> None:
        """Give back the slot taken by `enter` (with the same cap)."""
        self.inflight -= 1
        load = self._loads[function_id]
        now = self._clock()
        load.inflight_seconds += load.inflight * (now - load.since)
        load.since = now
        load.inflight -= 1

    def function_inflight(self, function_id: str) -> int:
        load = self._loads.get(function_id)
        return load.inflight if load else 0

    def forget(self, function_id: str) -> None:
        """Drop a deleted function's load (unless executions of it are still in flight)."""
        load = self._loads.get(function_id)
        if load is not None and not load.inflight:
            del self._loads[function_id]

    def loads(self) -> tuple[float, dict[str, tuple[int, float]]]:
        """The clock now, and per function: (executions in flight, their integral in seconds)."""
        now = self._clock()
        return now, {
            fid: (load.inflight, load.seconds_at(now)) for fid, load in self._loads.items()
        }
