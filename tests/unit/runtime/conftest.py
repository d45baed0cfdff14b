"""Fixtures for runtime tests: real isolates in the test's event loop, and the ASGI app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from vortex_runtime import watchdog
from vortex_runtime.isolate import Isolate, Limits
from vortex_runtime.records import RecordWriter
from vortex_runtime.server import create_app
from vortex_runtime.service import ManyFunctionService, SingleFunctionService, build_service
from vortex_runtime.settings import RuntimeSettings

RunJS = Callable[..., Awaitable[Any]]


def context(**extra: Any) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/invoke",
        "query": {},
        "headers": {},
        "invocationId": "test",
        "functionName": "test",
        "timeoutMs": 1000,
        "env": {},
        **extra,
    }


@pytest.fixture
async def isolate_of() -> AsyncIterator[Callable[..., Awaitable[Isolate]]]:
    """Start isolates for code; closes them all at the end of the test."""
    started: list[Isolate] = []

    async def make(code: str, **limits: Any) -> Isolate:
        isolate = await Isolate.create(code, Limits(**limits))
        started.append(isolate)
        return isolate

    yield make
    for isolate in started:
        isolate.close_now()


@pytest.fixture
async def run_js(isolate_of: Callable[..., Awaitable[Isolate]]) -> RunJS:
    """Run code once in a fresh isolate; returns (output, logs) or raises the RuntimeFailure."""

    async def run(
        code: str,
        event: Any = None,
        timeout_ms: int = 2000,
        ctx: dict[str, Any] | None = None,
        **limits: Any,
    ) -> tuple[Any, list[dict[str, Any]]]:
        isolate = await isolate_of(code, timeout_ms=timeout_ms, **limits)
        outcome = await isolate.invoke(
            json.dumps(event), ctx or context(timeoutMs=timeout_ms), timeout_ms / 1000
        )
        return json.loads(outcome.output_json), outcome.logs

    return run


@pytest.fixture
def code_file(tmp_path: Path) -> Callable[[str], Path]:
    def write(code: str) -> Path:
        path = tmp_path / "function.js"
        path.write_text(code)
        return path

    return write


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[..., Awaitable[httpx.AsyncClient]]]:
    """An httpx client on the runtime's ASGI app, with its service started and ready."""
    services: list[SingleFunctionService | ManyFunctionService] = []
    clients: list[httpx.AsyncClient] = []

    async def make(
        wait_ready: bool = True, writer: RecordWriter | None = None, **settings: Any
    ) -> httpx.AsyncClient:
        service = build_service(RuntimeSettings(**settings))
        assert isinstance(service, SingleFunctionService | ManyFunctionService)
        services.append(service)
        await service.start()
        if wait_ready:
            for _ in range(200):
                if service.ready:
                    break
                await asyncio.sleep(0.01)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(service, writer)),
            base_url="http://runtime",
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
    for service in services:
        service.close()
    # Closing isolates happens on helper threads; V8 may call back until each one is freed.
    assert await asyncio.to_thread(watchdog.wait_idle, 10)
