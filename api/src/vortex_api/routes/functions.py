"""`GET /functions`, `GET /functions/{id}` and `DELETE /functions/{id}[?purge=kv]` (admin key)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from vortex_api.gateway import gateway
from vortex_api.models import FunctionInfo, FunctionList
from vortex_api.routes.kv import kv_request
from vortex_api.routes.responses import errors

router = APIRouter(tags=["functions"])


@router.get("/functions", response_model=FunctionList, responses=errors(401, 403))
async def list_functions(request: Request) -> FunctionList:
    """Every deployed function."""
    gw = gateway(request)
    gw.auth.require_admin(request.headers.get("authorization"))
    return FunctionList(functions=[f.info() for f in await gw.backend.list()])


@router.get(
    "/functions/{function_id}", response_model=FunctionInfo, responses=errors(401, 403, 404)
)
async def get_function(function_id: str, request: Request) -> FunctionInfo:
    """One function: its settings, status and code hash."""
    gw = gateway(request)
    gw.auth.require_admin(request.headers.get("authorization"))
    return (await gw.backend.resolve(function_id)).info()


@router.delete(
    "/functions/{function_id}",
    status_code=204,
    response_class=Response,
    responses=errors(400, 401, 403, 404, 503),
)
async def delete_function(
    function_id: str,
    request: Request,
    purge: Literal["kv"] | None = Query(
        default=None, description="kv: also delete the data of its KV keyspace (kept otherwise)"
    ),
) -> Response:
    """Delete a function; its KV data stays unless `purge=kv`."""
    gw = gateway(request)
    gw.auth.require_admin(request.headers.get("authorization"))
    if purge == "kv":  # first: a function whose data could not go is still there to retry
        await kv_request(function_id, request, {"op": "purge"})
    await gw.backend.delete(function_id)
    gw.metrics.forget(function_id)
    gw.bulkhead.forget(function_id)
    return Response(status_code=204)
