"""Async invocations: `POST /async/{id}`, `GET /invocations/{id}`, `POST /invocations/{id}/retry`
and `GET /functions/{id}/dead-letters`; and `POST /internal/ticks/{id}`, where the operator's
leader queues cron ticks in the cluster.

`/async` checks what `/execute` checks (execute.py's `accept`: invoke key, function, event,
invocation id), queues the invocation and answers 202 at once with its id and a `Location`; the
dispatcher runs it. An `Idempotency-Key` repeated within 24 h (per function) answers with the
invocation the first one queued. Reading one takes the invoke key; the dead letters and their
redrive take the admin key, like the function's other resources.
"""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from vortex_api.errors import AsyncNotEnabled, BadRequest, Conflict, NotFound
from vortex_api.events import parse_event
from vortex_api.gateway import Gateway, gateway
from vortex_api.invocation_logs import check_invocation_id
from vortex_api.models import (
    AsyncAccepted,
    AsyncInvocationOut,
    DeadLetters,
    TickQueued,
    TickRequest,
)
from vortex_api.queues import AsyncInvocation, Queue
from vortex_api.queues.ticks import tick_invocation
from vortex_api.routes.execute import accept
from vortex_api.routes.responses import errors, json_response
from vortex_kube.contract import TICKS_PATH

router = APIRouter(tags=["async"])

# Printable ASCII, as Stripe and the IETF draft allow; long enough for a UUID or a hash.
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
MAX_DEAD_LETTERS = 1000


def _queue(gw: Gateway) -> Queue:
    if gw.queue is None:
        raise AsyncNotEnabled(
            "this install has no queue for async invocations (VORTEX_ASYNC_QUEUE is none)"
        )
    return gw.queue


async def _found(queue: Queue, invocation_id: str) -> AsyncInvocation:
    check_invocation_id(invocation_id, "the invocation id")
    invocation = await queue.get(invocation_id)
    if invocation is None:
        raise NotFound(f"no invocation {invocation_id!r}", error_type="InvocationNotFound")
    return invocation


@router.post(
    "/async/{function_id}",
    status_code=202,
    response_model=AsyncAccepted,
    responses=errors(400, 401, 404, 409, 413, 501, 503),
)
async def enqueue(function_id: str, request: Request) -> Response:
    """Queue an invocation of the function (the JSON body is its event) and answer at once."""
    gw = gateway(request)
    queue = _queue(gw)
    function, invocation = await accept(gw, function_id, request, check=parse_event)
    key = request.headers.get("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise BadRequest("Idempotency-Key must be 1 to 255 printable ASCII characters")
    stored_request: dict[str, Any] = {
        "method": invocation.method,
        "path": invocation.path,
        "query": invocation.query,
        "headers": invocation.headers,
    }
    if invocation.pin is not None:
        function.choose(invocation.pin)  # a version it does not keep is refused now, not later
        stored_request["version"] = invocation.pin
    new = AsyncInvocation(
        invocation_id=invocation.invocation_id,
        function=function.function_id,
        event=invocation.body,
        request=stored_request,
        created_at=time.time(),
        idempotency_key=key,
    )
    stored, created = await queue.enqueue(new)
    if stored.function != function.function_id:
        raise Conflict(
            f"invocation {stored.invocation_id!r} is one of function {stored.function!r}"
        )
    headers = {"Location": f"/invocations/{stored.invocation_id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return json_response(
        {"invocation_id": stored.invocation_id, "status": stored.status}, 202, headers
    )


@router.get(
    "/invocations/{invocation_id}",
    response_model=AsyncInvocationOut,
    responses=errors(400, 401, 404, 501, 503),
)
async def get_invocation(invocation_id: str, request: Request) -> Response:
    """An async invocation: its status, attempts, and result or error."""
    gw = gateway(request)
    gw.auth.require_invoke(request.headers.get("authorization"))
    return json_response((await _found(_queue(gw), invocation_id)).doc())


@router.post(
    "/invocations/{invocation_id}/retry",
    status_code=202,
    response_model=AsyncInvocationOut,
    responses=errors(400, 401, 404, 409, 501, 503),
)
async def redrive(invocation_id: str, request: Request) -> Response:
    """Queue a dead invocation again, with a new budget of attempts and age."""
    gw = gateway(request)
    gw.auth.require_admin(request.headers.get("authorization"))
    queue = _queue(gw)
    found = await _found(queue, invocation_id)
    if found.status != "dead":
        raise Conflict(
            f"only a dead invocation can be retried; {invocation_id!r} is {found.status}"
        )
    again = await queue.redrive(invocation_id, time.time())
    assert again is not None
    return json_response(again.doc(), 202, {"Location": f"/invocations/{invocation_id}"})


@router.get(
    "/functions/{function_id}/dead-letters",
    response_model=DeadLetters,
    responses=errors(400, 401, 404, 501, 503),
)
async def dead_letters(
    function_id: str, request: Request, limit: int = Query(100, ge=1, le=MAX_DEAD_LETTERS)
) -> Response:
    """The function's dead async invocations, newest first."""
    gw = gateway(request)
    gw.auth.require_admin(request.headers.get("authorization"))
    queue = _queue(gw)
    function = await gw.backend.resolve(function_id)
    dead = await queue.dead_letters(function.function_id, limit)
    return json_response(
        {"function_id": function.function_id, "invocations": [d.doc() for d in dead]}
    )


@router.post(
    TICKS_PATH + "/{function_id}",
    response_model=TickQueued,
    responses=errors(400, 401, 403, 404, 409, 501, 503),
    tags=["internal"],
)
async def queue_tick(function_id: str, body: TickRequest, request: Request) -> Response:
    """Queue a scheduled function's cron tick (the operator's leader calls this at each tick);
    a tick queued before is found, not queued twice."""
    gw = gateway(request)
    gw.auth.require_admin(request.headers.get("authorization"))
    queue = _queue(gw)
    function = await gw.backend.resolve(function_id)
    if not function.schedule:
        raise Conflict(f"function {function_id!r} has no spec.schedule")
    stored, created = await queue.enqueue(tick_invocation(function, body.tick, time.time()))
    return json_response({"invocation_id": stored.invocation_id, "created": created})
