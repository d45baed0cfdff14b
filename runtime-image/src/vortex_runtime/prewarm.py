"""Pre-warmed isolates: a few blank isolates (V8 started, bootstrap evaluated) kept ready.

A new function's first invocation, or a pool growing under load, takes one (`take`) and pays
only for installing its limits and compiling its own code; the stock is refilled in the
background, one isolate at a time, on the server's event loop. `FunctionPool` takes from it;
service.py makes one per process (`VORTEX_PREWARM_ISOLATES`, 0 turns it off).
"""

from __future__ import annotations

import asyncio
import logging

from vortex_runtime import watchdog
from vortex_runtime.isolate import Blank

log = logging.getLogger("vortex_runtime.prewarm")

_RETRY_S = 1.0


class Prewarmer:
    """Keeps up to `target` blank isolates ready. All methods run on the server's event loop."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._ready: list[Blank] = []
        self._filling: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def ready(self) -> int:
        return len(self._ready)

    async def fill(self) -> None:
        """Fill the stock now (start-up), rather than in the background."""
        self._refill()
        if self._filling is not None:
            await asyncio.shield(self._filling)

    def take(self) -> Blank | None:
        """A blank isolate if one is ready (the stock refills behind it), else None."""
        blank = self._ready.pop() if self._ready else None
        self._refill()
        return blank

    def _refill(self) -> None:
        if self._closed or len(self._ready) >= self.target:
            return
        if self._filling is None or self._filling.done():
            self._filling = asyncio.ensure_future(self._fill())

    async def _fill(self) -> None:
        while not self._closed and len(self._ready) < self.target:
            try:
                blank = await Blank.start()
            except Exception:
                log.exception("starting a pre-warmed isolate failed; retrying")
                await asyncio.sleep(_RETRY_S)
                continue
            if self._closed:
                watchdog.close(blank, what="pre-warmed isolate")
                return
            self._ready.append(blank)

    def close(self) -> None:
        self._closed = True
        if self._filling is not None:
            self._filling.cancel()
        while self._ready:
            watchdog.close(self._ready.pop(), what="pre-warmed isolate")
