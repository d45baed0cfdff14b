"""What the routers share about answers: OpenAPI descriptions of the errors, and a JSON
document as a response."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from vortex_api.errors import JSON_TYPE
from vortex_api.models import ErrorResponse

_DESCRIPTIONS = {
    400: "bad input (InvalidRequest, InvalidJSON, CompileError)",
    401: "missing or unknown API key",
    403: "the key does not grant this action",
    404: "unknown function",
    409: "the function exists but cannot run (CompileError, CodeRefInvalid, StorageError) or "
    "the change conflicts (Conflict)",
    413: "request, code, event or result too large",
    500: "the function threw or hit its memory limit",
    502: "the runtime or the Kubernetes API could not be reached",
    503: "over capacity, not ready, storage or the async queue unavailable (see Retry-After)",
    501: "async invocations and schedules need a queue this install has none of (AsyncNotEnabled)",
    504: "the function ran past its timeout",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these error statuses."""
    return {s: {"model": ErrorResponse, "description": _DESCRIPTIONS[s]} for s in statuses}


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """`doc` as a compact JSON answer."""
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status_code=status, headers=headers, media_type=JSON_TYPE)
