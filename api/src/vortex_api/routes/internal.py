"""`GET /internal/concurrency`: the executions in flight per function on this replica, and the
executions and failures of each version it ran (for the operator's rollouts).

The operator's autoscaler reads it from every API pod (admin key) each tick; see
`bulkhead.Bulkhead.loads` for why it carries integrals rather than only the counts.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from vortex_api.gateway import gateway
from vortex_api.models import ConcurrencyReport, FunctionLoadOut
from vortex_api.routes.responses import errors
from vortex_kube.contract import CONCURRENCY_PATH

router = APIRouter(tags=["internal"])


@router.get(CONCURRENCY_PATH, response_model=ConcurrencyReport, responses=errors(401, 403))
async def concurrency(request: Request) -> ConcurrencyReport:
    """This replica's executions in flight per function, and their integral over time."""
    gw = gateway(request)
    gw.auth.require_admin(request.headers.get("authorization"))
    now, loads = gw.bulkhead.loads()
    counts = gw.backend.tally.by_function()
    functions = {}
    # Functions with executions in flight, and those with versions counted (perhaps none now).
    for fid in loads.keys() | counts.keys():
        count, total = loads.get(fid, (0, 0.0))
        versions = {str(n): list(c) for n, c in counts.get(fid, {}).items()}
        functions[fid] = FunctionLoadOut(inflight=count, inflight_seconds=total, versions=versions)
    return ConcurrencyReport(
        instance=gw.bulkhead.instance, at=now, namespace=gw.settings.namespace, functions=functions
    )
