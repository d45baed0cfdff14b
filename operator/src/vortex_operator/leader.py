"""Leader election on a `coordination.k8s.io/v1` Lease, so two operator replicas never both act.

The same protocol client-go's leaderelection uses: the holder renews `renewTime` every
`lease_renew_s`; another candidate takes the Lease over once `renewTime + leaseDurationSeconds` has
passed (or at once if the holder released it, or if the holder is itself: a restarted container of
the same pod). Writes are compare-and-swap on resourceVersion. `__main__` acquires before starting
kopf, holds while it runs, and releases on a clean shutdown; a lost Lease stops the operator.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from vortex_operator.conditions import parse_time
from vortex_operator.errors import KubeError

log = logging.getLogger("vortex_operator.leader")


class LeaseApi(Protocol):
    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]: ...

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any]: ...


def micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        api: LeaseApi,
        *,
        namespace: str,
        name: str,
        identity: str,
        duration_s: int,
        renew_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration_s = duration_s
        self.renew_s = renew_s
        self.clock = clock
        self.leading = False
        self.renewed_at = 0.0  # time.monotonic() of the last successful write

    def _body(self, current: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        spec = dict((current or {}).get("spec") or {})
        taking_over = spec.get("holderIdentity") != self.identity
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=self.duration_s,
            renewTime=micro_time(now),
        )
        if taking_over or not spec.get("acquireTime"):
            spec["acquireTime"] = micro_time(now)
            if current is not None and taking_over:
                spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if current is not None:
            meta["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion")
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": spec,
        }

    def _free(self, current: dict[str, Any], now: datetime) -> bool:
        spec = current.get("spec") or {}
        holder = spec.get("holderIdentity")
        if not holder or holder == self.identity:
            return True
        renewed = parse_time(spec.get("renewTime") or spec.get("acquireTime"))
        duration = int(spec.get("leaseDurationSeconds") or self.duration_s)
        return renewed is None or now > renewed + timedelta(seconds=duration)

    async def try_acquire(self) -> bool:
        """One attempt to take or renew the Lease; True if we hold it now."""
        now = self.clock()
        try:
            current = await self.api.get("Lease", self.namespace, self.name)
            if current is None:
                await self.api.create(self._body(None, now))
            elif self._free(current, now):
                await self.api.replace(self._body(current, now))
            else:
                return False
        except KubeError as exc:
            if exc.status not in (409, 0) and exc.status < 500:
                raise
            log.debug("lease %s not taken: %s", self.name, exc)
            return False
        if not self.leading:
            log.info("became the leader (%s/%s as %s)", self.namespace, self.name, self.identity)
        self.leading = True
        self.renewed_at = time.monotonic()
        return True

    async def acquire(self, retry_s: float = 2.0) -> None:
        """Wait until we hold the Lease."""
        while True:
            if await self.try_acquire():
                return
            await asyncio.sleep(retry_s)

    async def hold(self) -> None:
        """Renew until the Lease is lost (returns then), or until cancelled."""
        deadline_s = self.duration_s * 2 / 3
        while True:
            await asyncio.sleep(self.renew_s)
            try:
                renewed = await self.try_acquire()
            except KubeError as exc:
                log.warning("renewing the lease failed: %s", exc)
                renewed = False
            if not renewed and time.monotonic() - self.renewed_at > deadline_s:
                self.leading = False
                log.error("lost the lease %s/%s", self.namespace, self.name)
                return

    def healthy(self) -> bool:
        """Leading with a fresh renewal, or not leading at all (a standby is healthy)."""
        if not self.leading:
            return True
        return time.monotonic() - self.renewed_at < self.duration_s

    async def release(self) -> None:
        """Give the Lease up so a standby takes over at once."""
        if not self.leading:
            return
        self.leading = False
        try:
            current = await self.api.get("Lease", self.namespace, self.name)
            if (
                current is None
                or (current.get("spec") or {}).get("holderIdentity") != self.identity
            ):
                return
            body = self._body(current, self.clock())
            body["spec"]["holderIdentity"] = None
            body["spec"]["leaseDurationSeconds"] = 1
            await self.api.replace(body)
            log.info("released the lease %s/%s", self.namespace, self.name)
        except KubeError as exc:
            log.warning("releasing the lease failed: %s", exc)
