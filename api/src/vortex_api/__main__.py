"""`python -m vortex_api`: serve the API (local mode by default) on 127.0.0.1:$VORTEX_PORT.

Every line goes through one handler in `VORTEX_LOG_FORMAT` (logs.py), uvicorn's too. Once uvicorn
listens the API announces itself (banner.py: local mode's banner). Ctrl-C (or SIGTERM) shuts
uvicorn down gracefully, which runs the lifespan's shutdown and stops every runtime worker the
local backend started.
"""

from __future__ import annotations

import contextlib
import logging
import socket

import uvicorn

from vortex_api import banner, logs
from vortex_api.app import create_app
from vortex_api.settings import Settings, get_settings

log = logging.getLogger("vortex_api")


class _Server(uvicorn.Server):
    """uvicorn's server, which says itself when it listens and when it stops."""

    def __init__(self, config: uvicorn.Config, settings: Settings) -> None:
        super().__init__(config)
        self.settings = settings

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            # The port bound, which VORTEX_PORT=0 leaves to the system.
            port = int(self.servers[0].sockets[0].getsockname()[1])
            banner.announce(self.settings, port)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        log.info("shutting down: finishing executions in flight (Ctrl-C again to force)")
        await super().shutdown(sockets)
        log.info("stopped")


def main() -> None:
    settings = get_settings()
    logs.setup(settings)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    # uvicorn raises Ctrl-C again once it has shut down gracefully; that is a normal exit.
    with contextlib.suppress(KeyboardInterrupt):
        _Server(config, settings).run()


if __name__ == "__main__":
    main()
