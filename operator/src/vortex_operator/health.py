"""The operator's health endpoint for the kubelet's probes (`python -m vortex_operator`).

- `GET /healthz` (liveness): 200 while the event loop answers and, when leading, the Lease is
  being renewed; 500 otherwise, so a wedged leader is restarted and its Lease moves on.
- `GET /readyz` (readiness): 200 once this replica leads and kopf has started its watches,
  503 for a standby.

It runs from process start, before the Lease is won, so a standby replica stays alive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        alive: Callable[[], bool],
        ready: Callable[[], bool],
        details: Callable[[], dict[str, object]] = dict,
    ) -> None:
        self.host = host
        self.port = port
        self.alive = alive
        self.ready = ready
        self.details = details
        self._runner: web.AppRunner | None = None

    async def _healthz(self, _: web.Request) -> web.Response:
        ok = self.alive()
        return web.json_response(
            {"status": "ok" if ok else "failing", **self.details()}, status=200 if ok else 500
        )

    async def _readyz(self, _: web.Request) -> web.Response:
        ok = self.ready()
        return web.json_response(
            {"status": "ready" if ok else "standby", **self.details()}, status=200 if ok else 503
        )

    async def start(self) -> None:
        app = web.Application()
        app.add_routes([web.get("/healthz", self._healthz), web.get("/readyz", self._readyz)])
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await asyncio.shield(self._runner.cleanup())
            self._runner = None
