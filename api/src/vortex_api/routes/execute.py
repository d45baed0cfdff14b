"""`POST /execute/{id}` (and GET): run a function with the JSON body as its event.

The hot path: check the invoke key, resolve the function, check the event (its size, then
events.py's screen: a 400 `InvalidJSON` for what no runtime would take), take a bulkhead slot (or
answer 503 at once), hand the body to the backend, and send the runtime's answer bytes back
unchanged. Metrics and one access line are recorded (execution.py) for every execution that
got past the bulkhead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from vortex_api import execution
from vortex_api.errors import JSON_TYPE, ApiError, CapacityExceeded, PayloadTooLarge
from vortex_api.events import check_event
from vortex_api.functions import Function
from vortex_api.gateway import Gateway, gateway
from vortex_api.invocation_logs import check_invocation_id
from vortex_api.invoker import Invocation
from vortex_api.models import ExecuteResponse
from vortex_api.routes.responses import errors

router = APIRouter(tags=["execute"])

# Headers of the client's request that are not the function's business.
_DROP = frozenset(
    {
        "host",
        "content-length",
        "authorization",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "accept-encoding",
        "proxy-authorization",
        "proxy-connection",
    }
)

_OPENAPI = {
    "requestBody": {
        "required": False,
        "description": "the event: any JSON value (no body means null)",
        "content": {"application/json": {"schema": {}}},
    }
}


def _forwarded_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    out = []
    for name_b, value_b in raw:
        name = name_b.decode("latin-1")
        if name in _DROP or name.startswith("x-vortex-"):
            continue
        out.append((name, value_b.decode("latin-1")))
    return out


async def accept(
    gw: Gateway,
    function_id: str,
    request: Request,
    check: Callable[[bytes], None] = check_event,
) -> tuple[Function, Invocation]:
    """What `/execute` and `/async` check before running anything: the invoke key, that the
    function exists, the event (its size, then `check`: events.py's screen, or for `/async` its
    full parse), and a caller's invocation id; then the invocation to run."""
    gw.auth.require_invoke(request.headers.get("authorization"))
    function = await gw.backend.resolve(function_id)
    body = await request.body()
    if len(body) > gw.settings.max_event_bytes:
        raise PayloadTooLarge(f"the event is over {gw.settings.max_event_bytes} bytes")
    check(body)
    chosen = request.headers.get("x-vortex-invocation-id")
    invocation_id = (
        check_invocation_id(chosen, "X-Vortex-Invocation-Id")
        if chosen is not None
        else uuid.uuid4().hex
    )
    scope = request.scope
    invocation = Invocation(
        body=body,
        method=scope["method"],
        # The raw (still percent-encoded) path: a decoded one could smuggle line breaks.
        path=scope.get("raw_path", b"").decode("latin-1") or scope["path"],
        query=scope["query_string"].decode("latin-1"),
        invocation_id=invocation_id,
        headers=_forwarded_headers(scope["headers"]),
        pin=request.headers.get("x-vortex-version"),
    )
    return function, invocation


async def _execute(function_id: str, request: Request) -> Response:
    gw = gateway(request)
    function, invocation = await accept(gw, function_id, request)
    cap = function.inflight_cap or gw.settings.max_inflight_per_function
    bulkhead = gw.bulkhead
    try:
        bulkhead.enter(function_id, cap)
    except CapacityExceeded:
        gw.metrics.rejections.inc()
        raise
    try:
        result = await execution.run(gw, function, invocation)
    finally:
        bulkhead.leave(function_id, cap)
    headers = {"x-vortex-invocation-id": invocation.invocation_id}
    if result.version is not None:
        headers["x-vortex-version"] = str(result.version)
    if result.retry_after is not None:
        headers["retry-after"] = result.retry_after
    return Response(result.body, status_code=result.status, headers=headers, media_type=JSON_TYPE)


_ROUTE = {
    "response_model": ExecuteResponse,
    "responses": errors(400, 401, 404, 409, 413, 500, 502, 503, 504),
}


@router.post("/execute/{function_id}", openapi_extra=_OPENAPI, **_ROUTE)  # type: ignore[arg-type]
async def execute(function_id: str, request: Request) -> Response:
    """Run a function; the JSON body, if any, is its `event`."""
    return await _execute(function_id, request)


@router.get("/execute/{function_id}", **_ROUTE)  # type: ignore[arg-type]
async def execute_get(function_id: str, request: Request) -> Response:
    """Run a function with a `null` event (`context.query` carries the query string)."""
    return await _execute(function_id, request)


_PREFIX = "/execute/"


class ExecuteFastPath:
    """ASGI middleware serving `/execute/{id}` straight away, past FastAPI's routing layers.

    The routes above stay registered for `/docs` and as the fallback; this answers the same way
    (same handler, same error shape) but skips route matching and dependency solving, which cost
    more per request than the rest of the execute path. `app.create_app` installs it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "GET"):
            path: str = scope["path"]
            if path.startswith(_PREFIX) and "/" not in path[len(_PREFIX) :] and len(path) > 9:
                request = Request(scope, receive)
                try:
                    response = await _execute(path[len(_PREFIX) :], request)
                except ApiError as exc:
                    response = exc.to_response()
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
