"""Builds the ASGI app: routers, error handlers, the body limit, and a lifespan that starts and
stops the backend and the dispatcher of async invocations.

`__main__` serves `create_app()` with uvicorn; tests call `create_app(settings, backend)` and drive
it through `httpx.ASGITransport` inside `lifespan(app)`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vortex_api import __version__
from vortex_api.auth import Auth
from vortex_api.backends import Backend, make_backend
from vortex_api.bulkhead import Bulkhead
from vortex_api.dispatcher import Dispatcher
from vortex_api.errors import install_handlers
from vortex_api.gateway import Gateway
from vortex_api.limits import BodyLimitMiddleware
from vortex_api.metrics import Metrics
from vortex_api.queues import make_queue
from vortex_api.routes import ROUTERS
from vortex_api.routes.execute import ExecuteFastPath
from vortex_api.scheduler import Scheduler
from vortex_api.settings import Settings, get_settings

_JSON_OVERHEAD = 64 * 1024


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the backend (and, if there is a queue, the dispatcher of async invocations and, in
    local mode, the scheduler of cron triggers) before serving, and stop them after."""
    gw: Gateway = app.state.gateway
    await gw.backend.start()
    dispatcher = scheduler = None
    try:
        if gw.queue is not None:
            dispatcher = Dispatcher(gw, gw.queue, workers=gw.settings.async_workers or 1)
            await dispatcher.start()
            if gw.settings.backend == "local":  # one process owns the data dir: it ticks
                scheduler = Scheduler(gw, gw.queue)
                await scheduler.start()
        yield
    finally:
        if scheduler is not None:
            await scheduler.stop()
        if dispatcher is not None:
            await dispatcher.stop()
        await gw.backend.stop()


def create_app(settings: Settings | None = None, backend: Backend | None = None) -> FastAPI:
    """The API app for these settings (default: from the environment) and backend."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Vortex",
        version=__version__,
        description="Deploy and run JavaScript functions.",
        lifespan=lifespan,
        # The API's own Prometheus metrics are its telemetry: FastAPI's OpenTelemetry hooks
        # would otherwise ask the environment for a provider on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    bulkhead = Bulkhead(settings.max_workers, settings.retry_after_s)
    metrics = Metrics()
    metrics.track_bulkhead(bulkhead)
    app.state.gateway = Gateway(
        settings=settings,
        backend=backend or make_backend(settings),
        bulkhead=bulkhead,
        auth=Auth(
            settings.admin_key.get_secret_value() if settings.admin_key else None,
            settings.invoke_key_list,
        ),
        metrics=metrics,
        queue=make_queue(settings),
    )
    install_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(ExecuteFastPath)
    body_limit = max(settings.max_event_bytes, 2 * settings.max_code_bytes) + _JSON_OVERHEAD
    app.add_middleware(BodyLimitMiddleware, max_bytes=body_limit)
    return app
