"""`GET /health`: the seed's health document; 503 while no runtime can serve."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from vortex_api.gateway import gateway
from vortex_api.models import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
async def health(request: Request) -> JSONResponse:
    """`{"status": "healthy", "active_workers", "max_workers"}`."""
    gw = gateway(request)
    ready = gw.backend.ready()
    return JSONResponse(
        {
            "status": "healthy" if ready else "unhealthy",
            "active_workers": gw.bulkhead.inflight,
            "max_workers": gw.bulkhead.max_inflight,
        },
        status_code=200 if ready else 503,
    )
