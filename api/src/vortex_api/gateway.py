"""The per-app bundle routes work with: settings, backend, bulkhead, auth, metrics, and the
queue of async invocations (None where none is configured).

`app.create_app` builds one `Gateway` and stores it on `app.state.gateway`; routes fetch it with
`gateway(request)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from vortex_api.auth import Auth
from vortex_api.backends import Backend
from vortex_api.bulkhead import Bulkhead
from vortex_api.metrics import Metrics
from vortex_api.queues import Queue
from vortex_api.settings import Settings


@dataclass(slots=True)
class Gateway:
    settings: Settings
    backend: Backend
    bulkhead: Bulkhead
    auth: Auth
    metrics: Metrics
    queue: Queue | None = None


def gateway(request: Request) -> Gateway:
    """The gateway of the app serving `request`."""
    gw: Gateway = request.app.state.gateway
    return gw
