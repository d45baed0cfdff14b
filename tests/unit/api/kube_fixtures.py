"""Fixtures wiring the Kubernetes backend to `FakeKube` and runtimes to a `FakeRuntime`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from kubernetes_asyncio.client import ApiClient, Configuration

from tests.unit.api.conftest import FakeRuntime
from tests.unit.fake_kube import FakeKube, serve
from vortex_api.app import create_app, lifespan
from vortex_api.backends.kubernetes import KubernetesBackend
from vortex_api.settings import Settings
from vortex_kube.client import KubeApi

NS = "vortex-test"
FUNCTIONS = FakeKube.key("/apis/vortex.dev/v1alpha1", NS, "vortexfunctions")
SLICES = FakeKube.key("/apis/discovery.k8s.io/v1", NS, "endpointslices")
PODS = FakeKube.key("/api/v1", NS, "pods")
POOL_SERVICE = "vortex-pool"


@pytest.fixture
async def fake_kube() -> AsyncIterator[FakeKube]:
    async with serve() as fake:
        yield fake


@pytest.fixture
def k8s_settings(tmp_path: Path) -> Settings:
    return Settings(
        backend="kubernetes",
        namespace=NS,
        readiness_wait_s=2.0,
        deploy_wait_s=0.5,
        pool_service=POOL_SERVICE,
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
        runtime.transport(),
        KubeApi(api_client, "vortex-api"),
    )


@pytest.fixture
def k8s_app(k8s_settings: Settings, k8s_backend: KubernetesBackend) -> FastAPI:
    return create_app(k8s_settings, k8s_backend)


@pytest.fixture
async def k8s_client(k8s_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=k8s_app)
    async with lifespan(k8s_app), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def _slice(name: str, labels: dict[str, str], ips: tuple[str, ...], ready: bool | None) -> dict:
    conditions = {} if ready is None else {"ready": ready}
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": labels},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": conditions} for ip in ips],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


def endpoint_slice(function: str, *ips: str, ready: bool | None = True, suffix: str = "a") -> dict:
    # The EndpointSlice controller copies the Service's labels (the operator's).
    labels = {
        "kubernetes.io/service-name": f"vf-{function}",
        "app.kubernetes.io/name": "vortex-function",
        "app.kubernetes.io/managed-by": "vortex-operator",
        "vortex.dev/function": function,
    }
    return _slice(f"vf-{function}-{suffix}", labels, ips, ready)


def pool_slice(*ips: str, ready: bool | None = True, suffix: str = "a") -> dict:
    """An EndpointSlice of the shared pool's Service (labels as the chart sets them)."""
    labels = {"kubernetes.io/service-name": POOL_SERVICE, "app.kubernetes.io/component": "pool"}
    return _slice(f"{POOL_SERVICE}-{suffix}", labels, ips, ready)
