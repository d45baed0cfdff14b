"""The autoscaler loop: scale subresource writes, Events, status fields, the pool, a new leader."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from tests.unit.fake_kube import FakeKube
from tests.unit.operator.conftest import function
from vortex_kube.client import KubeApi
from vortex_kube.contract import ScaleSpec
from vortex_kube.rollout import Rollout, RolloutSpec
from vortex_operator.controller import Controller
from vortex_operator.events import RecordedEvents
from vortex_operator.loadsource import Loads, VersionCounts
from vortex_operator.model import FunctionRef
from vortex_operator.scaler import Autoscaler, PoolScale, Scaled, from_settings
from vortex_operator.settings import Settings

REF = FunctionRef("fns", "hot", "uid-hot")
SCALE = ScaleSpec(min_replicas=1, max_replicas=10, target_concurrency=5)


class Loaded:
    def __init__(self) -> None:
        self.loads: Loads = {}
        self.counts: VersionCounts = {}

    async def read(self) -> Loads:
        return dict(self.loads)

    def version_counts(self) -> VersionCounts:
        return dict(self.counts)


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(
    kube_api: KubeApi, state: dict[str, int], events: RecordedEvents, **kw: Any
) -> tuple[Autoscaler, Loaded, Ticks]:
    source, ticks = Loaded(), Ticks()

    def functions() -> list[Scaled]:
        return [Scaled(REF, SCALE, state["replicas"], state["ready"])]

    scaler = Autoscaler(kube_api, source, events, functions=functions, clock=ticks, **kw)
    return scaler, source, ticks


async def put_function(kube: FakeKube, replicas: int) -> None:
    await kube.put(
        FakeKube.collection("VortexFunction", "fns"),
        {
            "apiVersion": "vortex.dev/v1alpha1",
            "kind": "VortexFunction",
            "metadata": {"name": "hot", "namespace": "fns", "uid": "uid-hot"},
            "spec": {"isolation": "warm", "replicas": replicas, "scale": {}},
        },
    )


async def test_a_burst_writes_replicas_an_event_and_the_status(
    kube: FakeKube, kube_api: KubeApi, events: RecordedEvents
) -> None:
    await put_function(kube, 1)
    state = {"replicas": 1, "ready": 1}
    scaler, source, ticks = make(kube_api, state, events)
    source.loads = {("fns", "hot"): 30.0}
    await scaler.tick()

    obj = kube.obj("VortexFunction", "fns", "hot")
    assert obj["spec"]["replicas"] == 6
    assert ("patch_scale", "VortexFunction", "hot") in kube.calls
    assert events.reasons() == ["ScaledUp"]
    status = obj["status"]
    assert status["desiredReplicas"] == 6
    assert status["observedConcurrency"] == 30.0
    assert status["lastScaleReason"].startswith("1 -> 6: panic")
    assert status["lastScaleTime"].endswith("Z")

    # The spec update has not reached the controller yet: no second write, no second Event.
    ticks.now += 2
    await scaler.tick()
    assert kube.calls.count(("patch_scale", "VortexFunction", "hot")) == 1
    assert events.reasons() == ["ScaledUp"]


async def test_a_steady_load_writes_the_status_now_and_then(
    kube: FakeKube, kube_api: KubeApi, events: RecordedEvents
) -> None:
    await put_function(kube, 2)
    state = {"replicas": 2, "ready": 2}
    scaler, source, ticks = make(kube_api, state, events)
    for tick in range(10):
        # Unchanged for 10 s, then changing every tick: written once each 10 s.
        source.loads = {("fns", "hot"): 7.0 if tick < 5 else 9.0}
        await scaler.tick()
        ticks.now += 2
    assert kube.calls.count(("patch_status", "VortexFunction", "hot")) == 2
    assert events.items == []
    assert kube.obj("VortexFunction", "fns", "hot")["status"]["desiredReplicas"] == 2


async def test_the_pool_scales_on_the_load_of_shared_functions(
    kube: FakeKube, kube_api: KubeApi, events: RecordedEvents
) -> None:
    await kube.put(
        FakeKube.collection("Deployment", "vortex"),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "v-pool", "namespace": "vortex", "generation": 1},
            "spec": {"replicas": 2},
            "status": {"replicas": 2, "readyReplicas": 2, "observedGeneration": 1},
        },
    )
    source, ticks = Loaded(), Ticks()
    pool = PoolScale("vortex", "v-pool", ScaleSpec(2, 6, 10))
    scaler = Autoscaler(
        kube_api,
        source,
        events,
        functions=list,
        shared=lambda: {("fns", "a"), ("fns", "b")},
        pool=pool,
        clock=ticks,
    )
    source.loads = {("fns", "a"): 30.0, ("fns", "b"): 20.0, ("fns", "warm-one"): 500.0}
    await scaler.tick()
    assert kube.obj("Deployment", "vortex", "v-pool")["spec"]["replicas"] == 5


async def test_a_function_without_scale_any_more_is_forgotten(
    kube: FakeKube, kube_api: KubeApi, events: RecordedEvents
) -> None:
    await put_function(kube, 1)
    state = {"replicas": 1, "ready": 1}
    scaler, _, _ = make(kube_api, state, events)
    await scaler.tick()
    assert ("fns", "hot") in scaler.scalers
    assert kube.obj("VortexFunction", "fns", "hot")["status"]["desiredReplicas"] == 1
    scaler.functions = list  # spec.scale removed
    await scaler.tick()
    assert scaler.scalers == {}
    status = kube.obj("VortexFunction", "fns", "hot")["status"]
    assert "desiredReplicas" not in status
    assert "observedConcurrency" not in status


async def test_from_settings_is_off_without_the_api_service(
    kube_api: KubeApi, events: RecordedEvents
) -> None:

    assert from_settings(Settings(), kube_api, events, functions=list, shared=set) is None
    off = Settings(api_service="v-api", autoscale=False)
    assert from_settings(off, kube_api, events, functions=list, shared=set) is None


async def test_from_settings_reads_the_api_and_the_pool(
    kube_api: KubeApi, events: RecordedEvents
) -> None:

    settings = Settings(
        api_service="v-api",
        lease_namespace="vortex",
        api_admin_key=SecretStr("k"),
        pool_deployment="v-pool",
        pool_min_replicas=2,
        pool_max_replicas=6,
        pool_target_concurrency=30,
        autoscale_interval_s=1.5,
    )
    made = from_settings(settings, kube_api, events, functions=list, shared=set)
    assert made is not None
    autoscaler, source = made
    try:
        assert (source.namespace, source.service) == ("vortex", "v-api")
        assert source.http.headers["authorization"] == "Bearer k"
        assert autoscaler.pool == PoolScale("vortex", "v-pool", ScaleSpec(2, 6, 30.0))
        assert autoscaler.interval_s == 1.5
    finally:
        await source.close()


async def test_the_controller_hands_over_warm_functions_with_scale_once_they_serve(
    controller: Controller,
) -> None:
    await controller.reconcile(function("hot", uid="uid-hot", replicas=2, scale={"maxReplicas": 4}))
    await controller.reconcile(function("fixed", uid="uid-fixed"))
    await controller.reconcile(function("pooled", uid="uid-pooled", isolation="shared"))
    [hot] = controller.autoscaled()
    assert (hot.ref.name, hot.replicas, hot.ready) == ("hot", 2, 0)
    assert hot.scale.max_replicas == 4
    assert controller.shared() == {("fns", "pooled")}


class Rollouts:
    def __init__(self) -> None:
        self.rollout = Rollout.start(RolloutSpec(), version=2, stable=1, now=0.0)
        self.seen: list[tuple[FunctionRef, float, int, int]] = []

    def rollouts(self) -> list[tuple[FunctionRef, Rollout]]:
        return [(REF, self.rollout)]

    async def move_rollout(
        self, ref: FunctionRef, now: float, calls: int, errors: int
    ) -> tuple[bool, str, str] | None:
        self.seen.append((ref, now, calls, errors))
        return True, "RolledBack", "version 2 failed"


async def test_each_tick_moves_rollouts_on_the_reported_counts(
    kube_api: KubeApi, events: RecordedEvents
) -> None:
    rollouts = Rollouts()
    scaler, source, _ = make(kube_api, {"replicas": 1, "ready": 1}, events, rollouts=rollouts)
    source.counts = {("fns", "hot", 2): (40, 12), ("fns", "hot", 1): (400, 0)}
    await scaler.tick()
    assert [(ref, calls, errors) for ref, _, calls, errors in rollouts.seen] == [(REF, 40, 12)]
    assert ("Warning", "fns/hot", "RolledBack", "version 2 failed") in events.items
