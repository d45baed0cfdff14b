"""The async invocation of one cron tick, and its id.

The local scheduler (`scheduler.Scheduler`) and `POST /internal/ticks/{id}` (routes/internal.py,
called by the operator's leader in the cluster) both queue ticks through `tick_invocation`, so a
tick has the same id wherever it is queued: `<name>.<UTC minute>`. Queueing it again finds the
one already queued, so a tick runs once.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from vortex_api.functions import Function
from vortex_api.queues import AsyncInvocation


def tick_id(function_id: str, tick: datetime) -> str:
    """The invocation id of `function_id`'s tick: `<name>.<UTC minute>`, readable and unique
    per function and tick (a long name is shortened with a hash of it)."""
    minute = tick.astimezone(UTC).strftime("%Y%m%dT%H%MZ")
    name = function_id
    if len(name) > 64 - 1 - len(minute):
        name = f"{function_id[:24]}-{hashlib.sha256(function_id.encode()).hexdigest()[:12]}"
    return f"{name}.{minute}"


def tick_invocation(function: Function, tick: datetime, now: float) -> AsyncInvocation:
    """The invocation of `function`'s tick at `tick`, its event the function's scheduleEvent."""
    return AsyncInvocation(
        invocation_id=tick_id(function.function_id, tick),
        function=function.function_id,
        event=json.dumps(function.schedule_event).encode(),
        request={
            "method": "POST",
            "path": f"/async/{function.function_id}",
            "query": "",
            "headers": [],
        },
        created_at=now,
    )


def tick_time(tick: datetime) -> str:
    """A tick as `status.lastScheduleTime` shows it (RFC 3339, UTC, whole seconds)."""
    return tick.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
