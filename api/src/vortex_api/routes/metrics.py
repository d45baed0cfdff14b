"""`GET /metrics`: the API's Prometheus metrics in the text format."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from vortex_api.gateway import gateway

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    gw = gateway(request)
    return Response(gw.metrics.render(), media_type=gw.metrics.content_type)
