"""`/functions/{id}/kv`: a function's KV data from outside (admin key), for `vortex kv`.

`GET .../kv?prefix=&limit=&cursor=` lists keys, `GET`, `PUT` (the body is the value, as text;
`?ttl_seconds=`) and `DELETE .../kv/{key}` work on one. Each is one operation of the runtime's
`/kv/{space}` (`vortex_runtime.kv.admin`) on a runtime of the backend, which reaches the same
store as the function does; its JSON answer is passed on.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from vortex_api.errors import BadRequest, KVUnavailable, NotFound, RuntimeUnavailable
from vortex_api.gateway import gateway
from vortex_api.routes.responses import errors, json_response

router = APIRouter(tags=["kv"])
# The statuses of the runtime's /kv answers passed on as they are.
_PASSED_ON = (200, 400, 503)


async def kv_request(function_id: str, request: Request, operation: dict[str, Any]) -> Any:
    """Run one operation on the function's keyspace; the runtime's answer as JSON."""
    gw = gateway(request)
    gw.auth.require_admin(request.headers.get("authorization"))
    function = await gw.backend.resolve(function_id)
    reply = await gw.backend.kv(function, operation)
    if reply.status not in _PASSED_ON:
        raise RuntimeUnavailable(
            f"the runtime answered the KV request with {reply.status}", reached=True
        )
    try:
        answer = json.loads(reply.body)
    except ValueError:
        raise RuntimeUnavailable("the runtime's KV answer was not JSON", reached=True) from None
    if reply.status != 200:
        error = answer.get("error", {}) if isinstance(answer, dict) else {}
        message = str(error.get("message", ""))
        if reply.status == 400:
            raise BadRequest(message)
        raise KVUnavailable(message, retry_after_s=1)
    return answer


@router.get("/functions/{function_id}/kv", responses=errors(400, 401, 403, 404, 503))
async def list_keys(
    function_id: str,
    request: Request,
    prefix: str = "",
    limit: int = Query(default=1000, ge=1, le=1000),
    cursor: str = "",
) -> Response:
    """Keys of the function's keyspace: `{keys: [{name, expiration?}], list_complete, cursor?}`."""
    operation = {"op": "list", "prefix": prefix, "limit": limit, "cursor": cursor}
    return json_response(await kv_request(function_id, request, operation))


@router.get("/functions/{function_id}/kv/{key:path}", responses=errors(400, 401, 403, 404, 503))
async def get_key(function_id: str, key: str, request: Request) -> Response:
    """One value: `{key, value}` (`"encoding": "base64"` for bytes that are not UTF-8)."""
    answer = await kv_request(function_id, request, {"op": "get", "key": key})
    if answer.get("value") is None:
        raise NotFound(f"no key {key!r} in the KV data of {function_id}", error_type="KeyNotFound")
    return json_response(answer)


@router.put("/functions/{function_id}/kv/{key:path}", responses=errors(400, 401, 403, 404, 503))
async def put_key(
    function_id: str,
    key: str,
    request: Request,
    ttl_seconds: float | None = Query(default=None, gt=0),
) -> Response:
    """Set a value: the request body, as UTF-8 text."""
    try:
        value = (await request.body()).decode()
    except UnicodeDecodeError:
        raise BadRequest("the value must be UTF-8 text") from None
    operation: dict[str, Any] = {"op": "put", "key": key, "value": value}
    if ttl_seconds is not None:
        operation["ttlSeconds"] = ttl_seconds
    return json_response(await kv_request(function_id, request, operation))


@router.delete(
    "/functions/{function_id}/kv/{key:path}",
    status_code=204,
    response_class=Response,
    responses=errors(400, 401, 403, 404, 503),
)
async def delete_key(function_id: str, key: str, request: Request) -> Response:
    """Delete a key (nothing happens for a key that is not there)."""
    await kv_request(function_id, request, {"op": "delete", "key": key})
    return Response(status_code=204)
