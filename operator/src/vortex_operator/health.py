"""The operator's health endpoint for the kubelet's probes (`python -m vortex_operator`).

- `GET /healthz` (liveness): 200 while the event loop answers and, when leading, the Lease is
  being renewed; 500 otherwise, so a wedged leader is restarted and its Lease moves on.
- `GET /readyz` (readiness): 200 once this replica leads and kopf has started its watches,
  503 for a standby.

It runs from process start, before the Lease is won, so a standby replica stays alive. With a
`metrics_port`, `GET /metrics` (Prometheus text, `metrics.py`) is served on that port as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from vortex_operator import metrics


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        alive: Callable[[], bool],
        ready: Callable[[], bool],
        details: Callable[[], dict[str, object]] = dict,
        metrics_port: int | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.alive = alive
        self.ready = ready
        self.details = details
        self.metrics_port = metrics_port
        self._runner: web.AppRunner | None = None
        self._metrics_runner: web.AppRunner | None = None

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

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE})

    @staticmethod
    async def _serve(routes: list[web.RouteDef], host: str, port: int) -> web.AppRunner:
        app = web.Application()
        app.add_routes(routes)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner

    async def start(self) -> None:
        self._runner = await self._serve(
            [web.get("/healthz", self._healthz), web.get("/readyz", self._readyz)],
            self.host,
            self.port,
        )
        if self.metrics_port is not None:
            self._metrics_runner = await self._serve(
                [web.get("/metrics", self._metrics)], self.host, self.metrics_port
            )

    async def stop(self) -> None:
        for runner in (self._metrics_runner, self._runner):
            if runner is not None:
                await asyncio.shield(runner.cleanup())
        self._runner = self._metrics_runner = None
