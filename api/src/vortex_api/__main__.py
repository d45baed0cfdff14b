"""`python -m vortex_api`: serve the API (local mode by default) on 127.0.0.1:$VORTEX_PORT.

Ctrl-C (or SIGTERM) shuts uvicorn down gracefully, which runs the lifespan's shutdown and stops
every runtime worker the local backend started.
"""

from __future__ import annotations

import logging

import uvicorn

from vortex_api.app import create_app
from vortex_api.settings import get_settings


def main() -> None:
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # One line per runtime request would cost more than the request itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
