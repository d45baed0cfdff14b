"""Leader election over a Lease: one holder, takeover after expiry, release for a fast handover."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from vortex_operator.errors import KubeError
from vortex_operator.leader import LeaderElector


class LeaseServer:
    """One Lease with compare-and-swap on resourceVersion, like the API server."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self._rv = itertools.count(1)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.lease)

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.lease is not None:
            raise KubeError(409, "already exists")
        self.lease = copy.deepcopy(obj)
        self.lease["metadata"]["resourceVersion"] = str(next(self._rv))
        return copy.deepcopy(self.lease)

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        assert self.lease is not None
        if obj["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise KubeError(409, "conflict")
        self.lease = copy.deepcopy(obj)
        self.lease["metadata"]["resourceVersion"] = str(next(self._rv))
        return copy.deepcopy(self.lease)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def elector(server: LeaseServer, identity: str, clock: Clock) -> LeaderElector:
    return LeaderElector(
        server,
        namespace="vortex-system",
        name="vortex-operator",
        identity=identity,
        duration_s=15,
        renew_s=5,
        clock=clock,
    )


async def test_one_holder_at_a_time() -> None:
    server, clock = LeaseServer(), Clock()
    a, b = elector(server, "a", clock), elector(server, "b", clock)
    assert await a.try_acquire()
    assert not await b.try_acquire()
    assert server.lease is not None
    assert server.lease["spec"]["holderIdentity"] == "a"
    clock.now += timedelta(seconds=10)
    assert await a.try_acquire()  # renewal
    assert not await b.try_acquire()
    assert a.leading
    assert not b.leading


async def test_takeover_after_expiry_counts_a_transition() -> None:
    server, clock = LeaseServer(), Clock()
    a, b = elector(server, "a", clock), elector(server, "b", clock)
    await a.try_acquire()
    clock.now += timedelta(seconds=16)
    assert await b.try_acquire()
    assert server.lease is not None
    assert server.lease["spec"]["holderIdentity"] == "b"
    assert server.lease["spec"]["leaseTransitions"] == 1


async def test_same_identity_reacquires_at_once() -> None:
    server, clock = LeaseServer(), Clock()
    await elector(server, "pod-1", clock).try_acquire()
    restarted = elector(server, "pod-1", clock)  # the container restarted in the same pod
    assert await restarted.try_acquire()


async def test_release_hands_over_immediately() -> None:
    server, clock = LeaseServer(), Clock()
    a, b = elector(server, "a", clock), elector(server, "b", clock)
    await a.try_acquire()
    await a.release()
    assert not a.leading
    assert server.lease is not None
    assert server.lease["spec"]["holderIdentity"] is None
    assert await b.try_acquire()


async def test_health_reflects_renewals() -> None:
    server, clock = LeaseServer(), Clock()
    a = elector(server, "a", clock)
    assert a.healthy()  # a standby is healthy
    await a.try_acquire()
    assert a.healthy()
    a.renewed_at -= 60
    assert not a.healthy()
