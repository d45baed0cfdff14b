"""Fixtures wiring the Kubernetes backend to `FakeKube` and runtimes to a `FakeRuntime`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from fastapi import FastAPI
from kubernetes_asyncio.client import ApiClient, Configuration

from tests.unit.api.conftest import FakeRuntime
from tests.unit.api.fake_kube import FakeKube
from vortex_api.app import create_app, lifespan
from vortex_api.backends.kubernetes import KubernetesBackend
from vortex_api.kube import KubeClient
from vortex_api.settings import Settings
from vortex_api.transport import HttpxTransport

NS = "vortex-test"
FUNCTIONS = FakeKube.key("/apis/vortex.dev/v1alpha1", NS, "vortexfunctions")
SLICES = FakeKube.key("/apis/discovery.k8s.io/v1", NS, "endpointslices")
PODS = FakeKube.key("/api/v1", NS, "pods")


@pytest.fixture
async def fake_kube() -> AsyncIterator[FakeKube]:
    fake = FakeKube()
    runner = web.AppRunner(fake.app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
def k8s_settings(tmp_path: Path) -> Settings:
    return Settings(
        backend="kubernetes",
        namespace=NS,
        readiness_wait_s=2.0,
        runtime_image="registry.local/vortex-runtime:test",
        data_dir=tmp_path,
    )


@pytest.fixture
async def k8s_backend(
    fake_kube: FakeKube, k8s_settings: Settings, runtime: FakeRuntime
) -> KubernetesBackend:
    api_client = ApiClient(Configuration(host=fake_kube.url))
    return KubernetesBackend(
        k8s_settings,
        HttpxTransport(httpx.MockTransport(runtime)),
        KubeClient(api_client, NS),
    )


@pytest.fixture
def k8s_app(k8s_settings: Settings, k8s_backend: KubernetesBackend) -> FastAPI:
    return create_app(k8s_settings, k8s_backend)


@pytest.fixture
async def k8s_client(k8s_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=k8s_app)
    async with lifespan(k8s_app), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def endpoint_slice(function: str, *ips: str, ready: bool | None = True, suffix: str = "a") -> dict:
    conditions = {} if ready is None else {"ready": ready}
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"vf-{function}-{suffix}",
            "labels": {"kubernetes.io/service-name": f"vf-{function}"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": conditions} for ip in ips],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }
