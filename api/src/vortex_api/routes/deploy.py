"""`POST /deploy`: check the code compiles, store the function, answer 201 `{"function_id"}`.

The compile check (`codecheck.check_code`) runs off the event loop and within
`codecheck.CHECK_TIMEOUT_S`: a syntax error is a 400 `CompileError` with its line and column,
code that cannot be checked in time a 413 `PayloadTooLarge`.
"""

from __future__ import annotations

import re
from typing import TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from vortex_api.codecheck import check_code
from vortex_api.errors import JSON_TYPE, AsyncNotEnabled, BadRequest, PayloadTooLarge
from vortex_api.gateway import gateway
from vortex_api.models import ENV_NAME_PATTERN, DeployRequest, DeployResponse
from vortex_api.routes.responses import errors

router = APIRouter(tags=["functions"])

_BODY_SCHEMA = DeployRequest.model_json_schema()
_ENV_NAME = re.compile(ENV_NAME_PATTERN)
Body = TypeVar("Body", bound=BaseModel)


def parse_body(model: type[Body], raw: bytes) -> Body:
    """A request body as `model`, or a 400 (`InvalidJSON` for what is not JSON at all)."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _invalid(exc: ValidationError) -> BadRequest:
    errs = exc.errors(include_input=False, include_url=False)
    if any(e["type"] == "json_invalid" for e in errs):
        return BadRequest("the request body is not valid JSON", error_type="InvalidJSON")
    parts = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errs[:5]]
    return BadRequest("; ".join(parts))


@router.post(
    "/deploy",
    status_code=201,
    response_model=DeployResponse,
    responses=errors(400, 401, 403, 409, 413, 501, 502),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _BODY_SCHEMA}},
        }
    },
)
async def deploy(request: Request) -> Response:
    """Deploy a function: `{"code": "..."}` plus optional settings; answers its id."""
    gw = gateway(request)
    gw.auth.require_admin(request.headers.get("authorization"))
    settings = gw.settings
    body = parse_body(DeployRequest, await request.body())
    if len(body.code.encode()) > settings.max_code_bytes:
        raise PayloadTooLarge(f"the code is over {settings.max_code_bytes} bytes")
    if body.timeout_ms is not None and body.timeout_ms > settings.max_timeout_ms:
        raise BadRequest(f"timeout_ms: at most {settings.max_timeout_ms}")
    if body.memory_mb is not None and body.memory_mb > settings.max_memory_mb:
        raise BadRequest(f"memory_mb: at most {settings.max_memory_mb}")
    for name in body.env or {}:
        if not _ENV_NAME.match(name):
            raise BadRequest(f"env: {name!r} is not a valid variable name")
    if body.schedule is not None and gw.queue is None:
        raise AsyncNotEnabled(
            "schedules run as async invocations, which this install has no queue for"
        )
    await check_code(body.code)
    function = await gw.backend.deploy(body)
    gw.metrics.deployments.inc()
    return Response(
        DeployResponse(function_id=function.function_id).model_dump_json().encode(),
        status_code=201,
        media_type=JSON_TYPE,
    )
