"""The bulkhead: caps concurrent executions per API process, and per function, without queueing.

The execute route calls `enter` before routing and `leave` when the answer is ready. Past either
cap `enter` raises `CapacityExceeded` at once (503 with Retry-After): a full gateway answers
immediately instead of holding connections. Single event loop, so plain counters suffice.
"""

from __future__ import annotations

from vortex_api.errors import CapacityExceeded


class Bulkhead:
    """Counts in-flight executions overall and per function."""

    __slots__ = ("_per_function", "inflight", "max_inflight", "retry_after_s")

    def __init__(self, max_inflight: int, retry_after_s: int = 1) -> None:
        self.max_inflight = max_inflight
        self.retry_after_s = retry_after_s
        self.inflight = 0
        self._per_function: dict[str, int] = {}

    def enter(self, function_id: str, function_cap: int | None) -> None:
        """Take a slot or raise `CapacityExceeded`."""
        if self.inflight >= self.max_inflight:
            raise CapacityExceeded(
                f"all {self.max_inflight} execution slots are busy",
                retry_after_s=self.retry_after_s,
            )
        if function_cap is not None:
            current = self._per_function.get(function_id, 0)
            if current >= function_cap:
                raise CapacityExceeded(
                    f"function {function_id!r} is at its cap of {function_cap} executions",
                    retry_after_s=self.retry_after_s,
                )
            self._per_function[function_id] = current + 1
        self.inflight += 1

    def leave(self, function_id: str, function_cap: int | None) -> None:
        """Give back the slot taken by `enter` (with the same cap)."""
        self.inflight -= 1
        if function_cap is not None:
            left = self._per_function[function_id] - 1
            if left:
                self._per_function[function_id] = left
            else:
                del self._per_function[function_id]

    def function_inflight(self, function_id: str) -> int:
        return self._per_function.get(function_id, 0)
