"""The autoscaler loop: every `autoscale_interval_s`, scale warm functions with `spec.scale`, and
the shared pool, to the executions in flight.

Started by the kopf startup handler (`handlers.py`), so it runs where kopf runs: on the leader
only (`__main__` starts kopf once it holds the Lease), and a new leader starts it again. Each tick
it reads the load from the API replicas (`loadsource.ApiLoadSource`), feeds one
`autoscale.Scaler` per function (and one for the pool) and acts on a changed decision:

- a function: `spec.replicas` through its scale subresource (the operator's update handler then
  scales the Deployment), an Event (ScaledUp/ScaledDown with the reason), and the status fields
  `desiredReplicas`, `observedConcurrency`, `lastScaleReason`, `lastScaleTime` (the controller
  writes the rest of the status and never these).
- the pool: `spec.replicas` of its Deployment, through the Deployment's scale subresource.

A new leader's windows start empty; it reads the replicas to start from in the specs, so it goes
on scaling toward the load from there (see `autoscale` for why it does not scale down at once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from vortex_kube.contract import KIND, ScaleSpec
from vortex_kube.rollout import Rollout
from vortex_operator.autoscale import Decision, Policy, Scaler
from vortex_operator.conditions import utc_now
from vortex_operator.errors import KubeError
from vortex_operator.events import EventSink
from vortex_operator.loadsource import ApiLoadSource, Loads, SliceApi, VersionCounts, api_source
from vortex_operator.model import FunctionRef
from vortex_operator.reconcile import DeploymentView
from vortex_operator.settings import Settings

log = logging.getLogger("vortex_operator.scaler")

# The key of the pool's scaler: a name no function can have.
POOL_KEY = ":pool"


class ScaleKube(Protocol):
    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def patch_scale(
        self, kind: str, namespace: str, name: str, replicas: int
    ) -> dict[str, Any] | None: ...

    async def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None: ...


class LoadSource(Protocol):
    async def read(self) -> Loads: ...

    def version_counts(self) -> VersionCounts: ...


class Rollouts(Protocol):
    """The controller's rollouts in progress (`Controller.rollouts`, `move_rollout`)."""

    def rollouts(self) -> list[tuple[FunctionRef, Rollout]]: ...

    async def move_rollout(
        self, ref: FunctionRef, now: float, calls: int, errors: int
    ) -> tuple[bool, str, str] | None: ...


@dataclass(frozen=True)
class Scaled:
    """A function the autoscaler looks after, as the controller last saw it."""

    ref: FunctionRef
    scale: ScaleSpec
    replicas: int
    ready: int


@dataclass(frozen=True)
class PoolScale:
    """The shared pool's Deployment and bounds (the chart's `pool.autoscale`)."""

    namespace: str
    deployment: str
    scale: ScaleSpec


class Autoscaler:
    def __init__(
        self,
        kube: ScaleKube,
        source: LoadSource,
        events: EventSink,
        *,
        functions: Callable[[], Iterable[Scaled]],
        shared: Callable[[], set[tuple[str, str]]] = set,
        pool: PoolScale | None = None,
        rollouts: Rollouts | None = None,
        policy: Policy | None = None,
        interval_s: float = 2.0,
        status_every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utc_now,
    ) -> None:
        self.kube = kube
        self.source = source
        self.events = events
        self.functions = functions
        self.shared = shared
        self.pool = pool
        self.rollouts = rollouts
        self.policy = policy or Policy()
        self.interval_s = interval_s
        self.status_every_s = status_every_s
        self.clock = clock
        self.wall = wall
        self.scalers: dict[tuple[str, str], Scaler] = {}
        # What we asked for last, and when we last wrote a function's status.
        self.asked: dict[tuple[str, str], int] = {}
        self.reported: dict[tuple[str, str], tuple[float, float]] = {}

    async def run(self) -> None:
        """Tick until cancelled; a failed tick is logged and the next one tries again."""
        while True:
            started = self.clock()
            try:
                await self.tick()
            except KubeError as exc:
                log.warning("autoscaler tick failed: %s", exc)
            except Exception:
                log.exception("autoscaler tick failed")
            await asyncio.sleep(max(0.0, self.interval_s - (self.clock() - started)))

    def _scaler(self, key: tuple[str, str]) -> Scaler:
        scaler = self.scalers.get(key)
        if scaler is None:
            scaler = self.scalers[key] = Scaler(self.policy)
        return scaler

    async def tick(self) -> None:
        loads = await self.source.read()
        now = self.clock()
        seen: set[tuple[str, str]] = set()
        for fn in self.functions():
            key = fn.ref.key
            seen.add(key)
            scaler = self._scaler(key)
            scaler.observe(now, loads.get(key, 0.0))
            if self.asked.get(key) == fn.replicas:
                self.asked.pop(key)  # the spec has what we asked for
            # Until the update of the spec reaches the controller, what we asked for is current.
            current = self.asked.get(key, fn.replicas)
            decision = scaler.decide(now, fn.scale, current, fn.ready)
            await self._function(fn, current, decision, now)
        if self.pool is not None:
            seen.add((self.pool.namespace, POOL_KEY))
            shared = self.shared()
            load = sum(value for key, value in loads.items() if key in shared)
            await self._pool(self.pool, now, load)
        if self.rollouts is not None:
            await self._rollouts(self.rollouts)
        for gone in set(self.scalers) - seen:
            self.scalers.pop(gone, None)
            self.asked.pop(gone, None)
            if self.reported.pop(gone, None) is not None and gone[1] != POOL_KEY:
                # spec.scale removed (or the function deleted: then there is nothing to patch).
                await self.kube.patch_status(
                    *gone, {"desiredReplicas": None, "observedConcurrency": None}
                )

    async def _function(self, fn: Scaled, current: int, decision: Decision, now: float) -> None:
        key = fn.ref.key
        status: dict[str, Any] = {
            "desiredReplicas": decision.desired,
            "observedConcurrency": round(decision.stable_concurrency, 2),
        }
        if decision.changes(current):
            assert decision.reason is not None
            if await self.kube.patch_scale(KIND, *key, decision.desired) is None:
                return
            up = decision.desired > current
            self.events.normal(fn.ref, "ScaledUp" if up else "ScaledDown", decision.reason)
            log.info("%s/%s scaled: %s", *key, decision.reason)
            self.asked[key] = decision.desired
            status.update(lastScaleReason=decision.reason, lastScaleTime=_stamp(self.wall()))
        else:
            last_at, last_value = self.reported.get(key, (float("-inf"), -1.0))
            fresh = now - last_at < self.status_every_s
            if fresh or last_value == status["observedConcurrency"]:
                return
        if await self.kube.patch_status(*key, status) is not None:
            self.reported[key] = (now, status["observedConcurrency"])

    async def _rollouts(self, rollouts: Rollouts) -> None:
        """Move each rollout in progress along, on the versions' counts the reports carried."""
        counts = self.source.version_counts()
        now = self.wall().timestamp()
        for ref, rollout in rollouts.rollouts():
            calls, errors = counts.get((ref.namespace, ref.name, rollout.version), (0, 0))
            event = await rollouts.move_rollout(ref, now, calls, errors)
            if event is not None:
                warning, reason, message = event
                post = self.events.warning if warning else self.events.normal
                post(ref, reason, message)
                log.info("%s/%s rollout: %s", ref.namespace, ref.name, message)

    async def _pool(self, pool: PoolScale, now: float, load: float) -> None:
        obj = await self.kube.get("Deployment", pool.namespace, pool.deployment)
        if obj is None:
            return
        view = DeploymentView.of(obj)
        scaler = self._scaler((pool.namespace, POOL_KEY))
        scaler.observe(now, load)
        decision = scaler.decide(now, pool.scale, view.desired, view.ready)
        if decision.changes(view.desired):
            await self.kube.patch_scale(
                "Deployment", pool.namespace, pool.deployment, decision.desired
            )
            log.info("pool %s scaled: %s", pool.deployment, decision.reason)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ClusterKube(ScaleKube, SliceApi, Protocol):
    """What the autoscaler and its load source need of `vortex_kube.client.KubeApi`."""


def from_settings(
    settings: Settings,
    kube: ClusterKube,
    events: EventSink,
    *,
    functions: Callable[[], Iterable[Scaled]],
    shared: Callable[[], set[tuple[str, str]]],
    rollouts: Rollouts | None = None,
) -> tuple[Autoscaler, ApiLoadSource] | None:
    """The autoscaler the settings ask for (and its load source, to close), or None if off."""
    if not settings.autoscale or not settings.api_service:
        return None
    source = api_source(settings, kube)
    assert source is not None
    namespace = source.namespace
    pool = None
    if settings.pool_deployment:
        bounds = ScaleSpec(
            min_replicas=settings.pool_min_replicas,
            max_replicas=max(settings.pool_min_replicas, settings.pool_max_replicas),
            target_concurrency=settings.pool_target_concurrency,
        )
        pool = PoolScale(namespace, settings.pool_deployment, bounds)
    autoscaler = Autoscaler(
        kube,
        source,
        events,
        functions=functions,
        shared=shared,
        pool=pool,
        rollouts=rollouts,
        interval_s=settings.autoscale_interval_s,
    )
    return autoscaler, source
