"""One execution of a function, and what every execution leaves: its metrics and access line.

Called by the execute route (routes/execute.py) for `/execute`, and by the dispatcher
(dispatcher.py) for each attempt of an async invocation, both within a bulkhead slot they hold.
"""

from __future__ import annotations

import time

from vortex_api import accesslog
from vortex_api.errors import ApiError, ExecutionTimeout, NotReady, RuntimeUnavailable
from vortex_api.functions import Function
from vortex_api.gateway import Gateway
from vortex_api.invoker import Invocation, InvocationResult
from vortex_kube.versions import VERSION_HEADER

_ERROR_OUTCOMES: dict[type[ApiError], str] = {
    ExecutionTimeout: "timeout",
    RuntimeUnavailable: "unavailable",
    NotReady: "not_ready",
}


async def run(gw: Gateway, function: Function, invocation: Invocation) -> InvocationResult:
    """Run `invocation` on its backend and record it (metrics, access line, and the version's
    count in the backend's tally), on the version the invocation pins or the function's traffic
    split chooses. An `ApiError` (the function could not be run or answered in time) is
    recorded, carries the invocation id and version, and is raised again."""
    function_id = function.function_id
    function = function.choose(invocation.pin)
    started = time.perf_counter()
    try:
        result = await gw.backend.invoke(function, invocation)
    except ApiError as exc:
        elapsed_s = time.perf_counter() - started
        if isinstance(exc, ExecutionTimeout):  # what a rollout counts against the version
            gw.backend.tally.count(function_id, function.version, "timeout")
        gw.metrics.record(function_id, _ERROR_OUTCOMES.get(type(exc), "error"), elapsed_s, None)
        exc.headers.setdefault("X-Vortex-Invocation-Id", invocation.invocation_id)
        if function.version is not None:
            exc.headers.setdefault(VERSION_HEADER, str(function.version))
        accesslog.record(invocation, function_id, exc.status, elapsed_s)
        raise
    result.version = function.version
    gw.backend.tally.count(function_id, function.version, result.outcome)
    elapsed_s = time.perf_counter() - started
    gw.metrics.record(
        function_id,
        result.outcome,
        elapsed_s,
        result.cold_kind,
        result.cold_start_s,
        result.cpu_s,
        result.fetches,
    )
    accesslog.record(invocation, function_id, result.status, elapsed_s)
    return result
