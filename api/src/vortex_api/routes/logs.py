"""`GET /functions/{id}/logs`: a function's invocation records, or a stream of new ones.

The admin key or an invoke key. Without `follow`, the newest matching records (`limit`, at most
1000), newest first. With `follow=true`, newline-delimited JSON: the newest `limit` records
already there, oldest first, then every new one as its runtime writes it, until the client goes;
an empty line every `HEARTBEAT_S` keeps idle connections (and proxies) alive.
The query is parsed by invocation_logs.py; the backend finds the records.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response, StreamingResponse

from vortex_api.backends import Backend
from vortex_api.functions import Function
from vortex_api.gateway import gateway
from vortex_api.invocation_logs import MAX_LIMIT, LogQuery, Record
from vortex_api.models import InvocationRecords
from vortex_api.routes.responses import errors

router = APIRouter(tags=["logs"])

HEARTBEAT_S = 15.0
NDJSON = "application/x-ndjson"


def _line(record: Record) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


async def _stream(backend: Backend, function: Function, query: LogQuery) -> AsyncIterator[bytes]:
    # Follow first, so nothing written between the read of the past and the follow is lost;
    # what both see is sent once.
    new = backend.follow_records(function, query)
    past = await backend.invocation_records(function, query) if query.limit else []
    sent = {(r["invocation_id"], r["started_at"]) for r in past}
    for record in reversed(past):
        yield _line(record)
    pending: asyncio.Task[Record] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(new))
            done, _ = await asyncio.wait({pending}, timeout=HEARTBEAT_S)
            if not done:
                yield b"\n"
                continue
            record, pending = pending.result(), None
            key = (record["invocation_id"], record["started_at"])
            if key in sent:
                sent.discard(key)
                continue
            yield _line(record)
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        with contextlib.suppress(Exception):
            await new.aclose()  # type: ignore[attr-defined]


@router.get(
    "/functions/{function_id}/logs",
    response_model=InvocationRecords,
    responses={
        **errors(400, 401, 404, 502),
        200: {"content": {NDJSON: {"schema": {"type": "string"}}}},
    },
)
async def function_logs(
    function_id: str,
    request: Request,
    limit: Annotated[int, Query(ge=0, le=MAX_LIMIT)] = 100,
    since: Annotated[str | None, Query(description="RFC 3339; records started since")] = None,
    invocation: Annotated[
        str | None, Query(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="one invocation id")
    ] = None,
    status: Literal["ok", "error"] | None = None,
    follow: Annotated[bool, Query(description="stream new records as NDJSON")] = False,
) -> Response:
    """Invocation records of a function: id, version, start, duration, status and logs."""
    gw = gateway(request)
    gw.auth.require_invoke(request.headers.get("authorization"))
    query = LogQuery.parse(request.query_params)
    function = await gw.backend.resolve(function_id)
    if query.follow:
        return StreamingResponse(_stream(gw.backend, function, query), media_type=NDJSON)
    found = await gw.backend.invocation_records(function, query)
    body = {"function_id": function_id, "records": found}
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")), media_type="application/json"
    )
