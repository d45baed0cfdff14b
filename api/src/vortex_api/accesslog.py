"""One access line per execution: method, path, status, duration, invocation id and function.

`routes.execute._execute` calls `record` once per execution that got past the bulkhead, with its
answer's status (the runtime's, or the API error's) and its duration: the one reading the metrics'
histogram observes too, so the line and /metrics agree. It is on the hot path: under `python -m
vortex_api` it hands a tuple to the process's handler, which makes it a record and formats it
later, with the other lines of the moment (logs.BufferedHandler); with `VORTEX_ACCESS_LOG=false`
it returns after two checks. Elsewhere (tests, another server) it logs a record to the access
logger `vortex_api.access` when that is enabled. Text: `access: POST /execute/hello 200 1.2 ms
invocation=... function=hello`; json adds the fields `function`, `invocation_id`, `status` and
`duration_ms`.
"""

from __future__ import annotations

import logging
import time

from vortex_api import logs
from vortex_api.invoker import Invocation

log = logging.getLogger(logs.ACCESS_LOGGER)


def record(invocation: Invocation, function_id: str, status: int, elapsed_s: float) -> None:
    """Log the execution of `invocation`, which took `elapsed_s` seconds."""
    sink = logs.access_sink
    if sink is None and not log.isEnabledFor(logging.INFO):
        return
    entry = (
        time.time(),
        invocation.method,
        invocation.path,
        status,
        elapsed_s * 1000,
        invocation.invocation_id,
        function_id,
    )
    if sink is not None:
        sink(entry)
    else:
        log.handle(logs.AccessRecord(entry))
