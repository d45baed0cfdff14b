"""Fixtures for the API unit tests: the app over httpx.ASGITransport, runtimes over loopback.

The local backend runs with its real data dir (a temporary directory) but starts no worker
processes: the tests register fake worker URLs in its endpoint table, and a `FakeRuntime` answers
the runtime protocol for them from a real loopback server (`loopback.py`), which the backends'
production `FastTransport` dials for every runtime URL.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.unit.api.loopback import Handler, LoopbackServer
from vortex_api.app import create_app, lifespan
from vortex_api.backends.local import LocalBackend
from vortex_api.backends.supervisor import GROUP
from vortex_api.fasthttp import FastTransport
from vortex_api.functions import Function
from vortex_api.models import DeployRequest
from vortex_api.settings import Settings


def ok(output: Any = None, *, logs: list[dict[str, str]] | None = None) -> httpx.Response:
    return httpx.Response(
        200, json={"output": output, "logs": logs or [], "execution_time_ms": 0.25}
    )


def refused_by(host: str, output: Any) -> Callable[[httpx.Request], httpx.Response]:
    """A runtime handler: `host` refuses connections, every other runtime answers `output`."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == host:
            raise httpx.ConnectError("refused", request=request)
        return ok(output)

    return handler


class FakeRuntime:
    """Answers runtime requests with `handler` and keeps every request it saw."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.warms: list[httpx.Request] = []  # deploy's warm-ups, apart from invocations
        self.handler: Handler = lambda request: ok(json.loads(request.content or b"null"))
        self.server = LoopbackServer(self)

    def transport(self) -> FastTransport:
        """A `FastTransport` whose connections to any runtime URL come to this fake."""
        return self.server.transport()

    def __call__(self, request: httpx.Request) -> httpx.Response | Awaitable[httpx.Response]:
        if request.url.path.startswith("/warm/"):
            self.warms.append(request)
            return httpx.Response(200, json={"warm": True, "started": True})
        self.requests.append(request)
        return self.handler(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", worker_start_timeout_s=0.2)


@pytest.fixture
async def runtime() -> AsyncIterator[FakeRuntime]:
    fake = FakeRuntime()
    async with fake.server:
        yield fake


@pytest.fixture
def backend(settings: Settings, runtime: FakeRuntime) -> LocalBackend:
    backend = LocalBackend(settings, runtime.transport(), supervise=False)
    backend.table.add(GROUP, "http://worker-0")
    return backend


@pytest.fixture
def app(settings: Settings, backend: LocalBackend) -> FastAPI:
    return create_app(settings, backend)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        lifespan(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client,
    ):
        yield client


@pytest.fixture
def deploy(backend: LocalBackend) -> Callable[..., Any]:
    """Store a function directly in the backend (no compile check), returning it."""

    async def _deploy(code: str = "return 1;", **fields: Any) -> Function:
        return await backend.deploy(DeployRequest(code=code, **fields))

    return _deploy


from tests.unit.api.kube_fixtures import (  # noqa: E402
    fake_kube,
    k8s_app,
    k8s_backend,
    k8s_client,
    k8s_settings,
)

__all__ = ["fake_kube", "k8s_app", "k8s_backend", "k8s_client", "k8s_settings"]
