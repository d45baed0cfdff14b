"""Small test helpers shared by the API unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(predicate: Callable[[], object], timeout_s: float = 3.0) -> None:
    """Wait until `predicate()` is true, polling: the state lives in another component."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - nothing to wait on but the state itself
            await asyncio.sleep(0.005)
