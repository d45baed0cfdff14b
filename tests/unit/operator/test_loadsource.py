"""The load source: API pod addresses from EndpointSlices, averages from successive reports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from tests.unit.fake_kube import FakeKube
from vortex_kube.client import KubeApi
from vortex_operator.errors import TickNotQueued
from vortex_operator.loadsource import ApiLoadSource, LoadAverager, api_addresses


def report(instance: str, at: float, **seconds: tuple[int, float]) -> dict[str, object]:
    return {
        "instance": instance,
        "at": at,
        "namespace": "fns",
        "functions": {
            fid: {"inflight": n, "inflight_seconds": s} for fid, (n, s) in seconds.items()
        },
    }


def test_addresses_of_ready_endpoints_on_the_http_port() -> None:
    slices = [
        {
            "ports": [{"name": "metrics", "port": 9090}, {"name": "http", "port": 8080}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": False}},
                {"addresses": ["fd00::3"]},
            ],
        },
        {"ports": [], "endpoints": [{"addresses": ["10.0.0.9"]}]},
    ]
    assert api_addresses(slices) == ["10.0.0.1:8080", "[fd00::3]:8080"]


def test_the_average_over_a_tick_counts_a_burst_between_readings() -> None:
    averager = LoadAverager()
    first = averager.absorb({"a": report("i1", 10.0, hot=(2, 5.0))})
    assert first == {("fns", "hot"): 2.0}  # first sight: what is in flight now
    # 6 execution-seconds in 2 s: 3 in flight on average, though none is at the moment.
    second = averager.absorb({"a": report("i1", 12.0, hot=(0, 11.0))})
    assert second == {("fns", "hot"): pytest.approx(3.0)}


def test_replicas_add_up_and_a_restarted_one_starts_over() -> None:
    averager = LoadAverager()
    averager.absorb({"a": report("i1", 10.0, hot=(1, 0.0)), "b": report("j1", 50.0)})
    loads = averager.absorb(
        {"a": report("i1", 12.0, hot=(1, 2.0)), "b": report("j2", 1.0, hot=(4, 0.5))}
    )
    assert loads == {("fns", "hot"): pytest.approx(1.0 + 4)}


def test_version_counts_add_up_over_the_replicas() -> None:
    averager = LoadAverager()
    one = report("i1", 10.0, hot=(1, 0.0))
    one["functions"]["hot"]["versions"] = {"1": [10, 1], "2": [3, 3]}
    two = report("j1", 10.0, hot=(0, 0.0))
    two["functions"]["hot"]["versions"] = {"2": [5, 0]}
    averager.absorb({"a": one, "b": two})
    assert averager.counts == {("fns", "hot", 1): (10, 1), ("fns", "hot", 2): (8, 3)}
    averager.absorb({"a": report("i1", 11.0, hot=(0, 0.0))})  # reports without counts
    assert averager.counts == {}


def test_a_silent_replica_is_left_out() -> None:
    averager = LoadAverager()
    averager.absorb({"a": report("i1", 10.0), "b": report("j1", 10.0)})
    averager.absorb({"a": report("i1", 12.0)})
    assert set(averager.previous) == {"a"}


def _source(kube_api: KubeApi, answer: Callable[[httpx.Request], httpx.Response]) -> ApiLoadSource:
    return ApiLoadSource(
        kube_api,
        namespace="vortex",
        service="v-api",
        admin_key="k",
        transport=httpx.MockTransport(answer),
    )


async def _api_slice(kube: FakeKube) -> None:
    await kube.put(
        FakeKube.collection("EndpointSlice", "vortex"),
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "v-api-x",
                "namespace": "vortex",
                "labels": {"kubernetes.io/service-name": "v-api"},
            },
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}],
        },
    )


async def test_read_asks_every_api_pod_with_the_admin_key(
    kube: FakeKube, kube_api: KubeApi
) -> None:
    await _api_slice(kube)
    seen: list[tuple[str, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        if request.url.host == "10.0.0.2":
            return httpx.Response(503)
        return httpx.Response(200, json=report("i1", 1.0, hot=(3, 0.0)))

    source = _source(kube_api, answer)
    try:
        loads = await source.read()
    finally:
        await source.close()
    assert loads == {("fns", "hot"): 3.0}
    assert sorted(seen) == [("10.0.0.1", "Bearer k"), ("10.0.0.2", "Bearer k")]


async def test_a_tick_goes_to_one_replica_and_on_to_the_next_if_it_fails(
    kube: FakeKube, kube_api: KubeApi
) -> None:
    await _api_slice(kube)
    posted: list[tuple[str, str, bytes]] = []
    answers = {"10.0.0.1": httpx.Response(503), "10.0.0.2": None}

    def answer(request: httpx.Request) -> httpx.Response:
        posted.append((request.url.host, request.url.path, request.content))
        return answers[request.url.host] or httpx.Response(
            200, json={"invocation_id": "cron.20261207T1000Z", "created": True}
        )

    source = _source(kube_api, answer)
    tick = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    try:
        assert await source.queue_tick("cron", tick) == "cron.20261207T1000Z"
        assert [(h, p) for h, p, _ in posted] == [
            ("10.0.0.1", "/internal/ticks/cron"),
            ("10.0.0.2", "/internal/ticks/cron"),
        ]
        assert posted[-1][2] == b'{"tick":"2026-12-07T10:00:00+00:00"}'
        # a refusal (the function has no schedule any more) is every replica's: asked once
        answers["10.0.0.1"] = httpx.Response(409, json={"error": {"type": "Conflict"}})
        posted.clear()
        with pytest.raises(TickNotQueued, match="409"):
            await source.queue_tick("cron", tick)
        assert len(posted) == 1
    finally:
        await source.close()
