"""One router per resource: deploy, execute, async invocations, functions, logs, health,
metrics, internal (autoscaler).

`app.create_app` includes `ROUTERS` in this order.
"""

from __future__ import annotations

from vortex_api.routes import (
    deploy,
    execute,
    functions,
    health,
    internal,
    invocations,
    kv,
    logs,
    metrics,
)

ROUTERS = [
    deploy.router,
    execute.router,
    invocations.router,
    functions.router,
    logs.router,
    kv.router,
    health.router,
    metrics.router,
    internal.router,
]

# OpenAPI entries for the JSON errors every route may answer with.
__all__ = ["ROUTERS"]
