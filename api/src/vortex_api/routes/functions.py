"""`GET /functions`, `GET /functions/{id}`, `DELETE /functions/{id}[?purge=kv]`, and a function's
versions: `GET /functions/{id}/versions`, `POST /functions/{id}/rollback`, `PUT
/functions/{id}/traffic` (all with the admin key). The versions themselves are
`vortex_kube.versions`; the backend keeps them.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from vortex_api.errors import BadRequest
from vortex_api.gateway import Gateway, gateway
from vortex_api.models import (
    FunctionInfo,
    FunctionList,
    RollbackRequest,
    TrafficRequest,
    VersionList,
)
from vortex_api.routes.deploy import parse_body
from vortex_api.routes.kv import kv_request
from vortex_api.routes.responses import errors
from vortex_kube.versions import Traffic, VersionError

router = APIRouter(tags=["functions"])


def _admin(request: Request) -> Gateway:
    """The gateway, once the request has shown the admin key."""
    gw = gateway(request)
    gw.auth.require_admin(request.headers.get("authorization"))
    return gw


@router.get("/functions", response_model=FunctionList, responses=errors(401, 403))
async def list_functions(request: Request) -> FunctionList:
    """Every deployed function."""
    gw = _admin(request)
    return FunctionList(functions=[f.info() for f in await gw.backend.list()])


@router.get(
    "/functions/{function_id}", response_model=FunctionInfo, responses=errors(401, 403, 404)
)
async def get_function(function_id: str, request: Request) -> FunctionInfo:
    """One function: its settings, status and code hash."""
    gw = _admin(request)
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
    gw = _admin(request)
    if purge == "kv":  # first: a function whose data could not go is still there to retry
        await kv_request(function_id, request, {"op": "purge"})
    await gw.backend.delete(function_id)
    gw.metrics.forget(function_id)
    gw.bulkhead.forget(function_id)
    return Response(status_code=204)


@router.get(
    "/functions/{function_id}/versions",
    response_model=VersionList,
    responses=errors(401, 403, 404),
)
async def list_versions(function_id: str, request: Request) -> VersionList:
    """The versions a function keeps, oldest first, and its traffic split."""
    gw = _admin(request)
    return (await gw.backend.resolve(function_id)).versions_info()


@router.post(
    "/functions/{function_id}/rollback",
    response_model=VersionList,
    responses=errors(400, 401, 403, 404, 501),
)
async def rollback(function_id: str, request: Request) -> VersionList:
    """A new version with the code and execution spec of `version`, taking all the traffic
    (history is never rewritten)."""
    gw = _admin(request)
    body = parse_body(RollbackRequest, await request.body())
    return (await gw.backend.rollback(function_id, body.version)).versions_info()


@router.put(
    "/functions/{function_id}/traffic",
    response_model=VersionList,
    responses=errors(400, 401, 403, 404, 501),
)
async def set_traffic(function_id: str, request: Request) -> VersionList:
    """Split executions between kept versions by percent (summing to 100); tags pin one."""
    gw = _admin(request)
    body = parse_body(TrafficRequest, await request.body())
    try:
        traffic = Traffic.parse(body.traffic or None)
    except VersionError as exc:
        raise BadRequest(str(exc)) from None
    return (await gw.backend.set_traffic(function_id, traffic)).versions_info()
