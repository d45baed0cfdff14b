"""Fixtures for operator unit tests: a controller over the fake API server and a fixed clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.unit.fake_kube import FakeKube, serve
from tests.unit.operator.fakes import FakeStore
from vortex_kube.client import KubeApi
from vortex_operator.controller import Controller
from vortex_operator.events import RecordedEvents
from vortex_operator.settings import Settings
from vortex_runtime.settings import MinioSettings


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        minio=MinioSettings(
            endpoint="10.201.0.1:9000", access_key="operator-key", secret_key="operator-secret"
        ),
        runtime_image="localhost/vortex-runtime:test",
        delete_timeout_s=10,
    )


@pytest.fixture
async def kube() -> AsyncIterator[FakeKube]:
    async with serve() as fake:
        fake.implicit_functions = True  # tests hand the controller bodies directly
        yield fake


@pytest.fixture
async def kube_api(kube: FakeKube) -> AsyncIterator[KubeApi]:
    api = KubeApi.for_host(kube.url, "vortex-operator")
    try:
        yield api
    finally:
        await api.close()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def events() -> RecordedEvents:
    return RecordedEvents()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def controller(
    settings: Settings, kube_api: KubeApi, store: FakeStore, events: RecordedEvents, clock: Clock
) -> Controller:
    return Controller(settings, kube_api, store, events, clock=clock)


def function(
    name: str = "hello",
    code: str | None = "return 42;",
    *,
    namespace: str = "fns",
    generation: int = 1,
    uid: str = "uid-hello",
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A VortexFunction body as the API server hands it out (warm unless `isolation` is given:
    most tests here are about a function's own children)."""
    body_spec: dict[str, Any] = {"isolation": "warm", **spec}
    if code is not None:
        body_spec["code"] = code
    return {
        "apiVersion": "vortex.dev/v1alpha1",
        "kind": "VortexFunction",
        "metadata": {"name": name, "namespace": namespace, "uid": uid, "generation": generation},
        "spec": body_spec,
        "status": status or {},
    }
