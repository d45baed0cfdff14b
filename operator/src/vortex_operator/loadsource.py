"""The operator's calls to the API: the autoscaler's load, and the cron ticker's ticks.

`ApiLoadSource.queue_tick` (called by `cron.Ticker`) posts a tick to `POST /internal/ticks/{name}`
of one ready API replica (the next one if it fails), which queues it on the async queue.

Where the autoscaler reads the load: `GET /internal/concurrency` of every API replica. The same
reports carry each function version's executions and failures, which the controller's
rollouts are judged by (`version_counts`).

`ApiLoadSource.read` (called by `scaler.Autoscaler` each tick) finds the API pods from the
EndpointSlices of the API Service, asks each one for its report (admin key) and turns the reports
into the average executions in flight per function over the tick, summed over the replicas:
`LoadAverager` keeps each replica's previous report and divides the growth of a function's
`inflight_seconds` by the time between the two reports, so a burst between two ticks counts
in full. A replica seen for the first time (or restarted: a new `instance`) counts with its
executions in flight at that moment. A replica that does not answer is left out of that tick.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from vortex_kube.contract import CONCURRENCY_PATH, SERVICE_NAME_LABEL, TICKS_PATH
from vortex_operator.errors import TickNotQueued
from vortex_operator.settings import Settings

log = logging.getLogger("vortex_operator.loadsource")

TICK_TIMEOUT_S = 10.0

# (namespace, function name) -> executions in flight, averaged over the tick.
Loads = dict[tuple[str, str], float]
# (namespace, function name, version) -> (executions, failures) so far, summed over the replicas
# that answered (each counts since it started): what a rollout judges a new version by.
VersionCounts = dict[tuple[str, str, int], tuple[int, int]]


class SliceApi(Protocol):
    async def list(
        self, kind: str, namespace: str, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]: ...


def api_addresses(slices: list[dict[str, Any]], port_name: str = "http") -> list[str]:
    """`host:port` of every ready endpoint in the API Service's EndpointSlices."""
    found: list[str] = []
    for obj in slices:
        ports = [p for p in obj.get("ports") or [] if p.get("port")]
        port = next((p["port"] for p in ports if p.get("name") == port_name), None)
        if port is None and ports:
            port = ports[0]["port"]
        if port is None:
            continue
        for endpoint in obj.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for address in endpoint.get("addresses") or []:
                host = f"[{address}]" if ":" in address else address
                found.append(f"{host}:{port}")
    return sorted(set(found))


@dataclass
class _Reading:
    instance: str
    at: float
    seconds: dict[str, float]


@dataclass
class LoadAverager:
    """Turns successive reports of the replicas into average loads (pure)."""

    previous: dict[str, _Reading] = field(default_factory=dict)
    counts: VersionCounts = field(default_factory=dict)  # of the last reports absorbed

    def absorb(self, reports: dict[str, dict[str, Any]]) -> Loads:
        """The summed loads of these reports (address -> `ConcurrencyReport` as JSON)."""
        loads: Loads = {}
        counts: VersionCounts = {}
        for address, report in reports.items():
            namespace = str(report.get("namespace") or "default")
            functions = report.get("functions") or {}
            for fid, load in functions.items():
                for number, (calls, errors) in (load.get("versions") or {}).items():
                    key3 = (namespace, fid, int(number))
                    had = counts.get(key3, (0, 0))
                    counts[key3] = (had[0] + int(calls), had[1] + int(errors))
            reading = _Reading(
                instance=str(report.get("instance")),
                at=float(report.get("at") or 0.0),
                seconds={
                    fid: float(load.get("inflight_seconds") or 0.0)
                    for fid, load in functions.items()
                },
            )
            before = self.previous.get(address)
            elapsed = reading.at - before.at if before else 0.0
            comparable = before is not None and before.instance == reading.instance and elapsed > 0
            for fid, load in functions.items():
                if comparable:
                    assert before is not None
                    grown = reading.seconds[fid] - before.seconds.get(fid, 0.0)
                    value = max(0.0, grown / elapsed)
                else:
                    value = float(load.get("inflight") or 0)
                key = (namespace, fid)
                loads[key] = loads.get(key, 0.0) + value
            self.previous[address] = reading
        for gone in set(self.previous) - set(reports):
            del self.previous[gone]
        self.counts = counts
        return loads


class ApiLoadSource:
    """Reads every API replica once per tick."""

    def __init__(
        self,
        kube: SliceApi,
        *,
        namespace: str,
        service: str,
        admin_key: str | None,
        timeout_s: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.service = service
        headers = {"Authorization": f"Bearer {admin_key}"} if admin_key else {}
        self.http = httpx.AsyncClient(headers=headers, timeout=timeout_s, transport=transport)
        self.averager = LoadAverager()

    async def close(self) -> None:
        await self.http.aclose()

    async def _report(self, address: str) -> dict[str, Any] | None:
        try:
            response = await self.http.get(f"http://{address}{CONCURRENCY_PATH}")
            response.raise_for_status()
            report: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("no load report from API replica %s: %s", address, exc)
            return None
        return report

    async def _addresses(self) -> list[str]:
        slices, _ = await self.kube.list(
            "EndpointSlice", self.namespace, f"{SERVICE_NAME_LABEL}={self.service}"
        )
        return api_addresses(slices)

    async def queue_tick(self, name: str, tick: datetime) -> str:
        """Queue function `name`'s cron tick at `tick` through an API replica; the id of its
        invocation. Raises `TickNotQueued` if no replica queued it."""
        failures: list[str] = []
        for address in await self._addresses():
            try:
                response = await self.http.post(
                    f"http://{address}{TICKS_PATH}/{name}",
                    json={"tick": tick.isoformat()},
                    timeout=TICK_TIMEOUT_S,
                )
                if response.status_code == 200:
                    return str(response.json()["invocation_id"])
                failures.append(f"{address}: {response.status_code} {response.text[:200]}")
                if response.status_code < 500:  # the same answer from every replica
                    break
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                failures.append(f"{address}: {exc!r}")
        raise TickNotQueued("; ".join(failures) or "no API replica is ready")

    async def read(self) -> Loads:
        """The load per function over the last tick, summed over the API replicas."""
        addresses = await self._addresses()
        answers = await asyncio.gather(*(self._report(a) for a in addresses))
        reports = {a: r for a, r in zip(addresses, answers, strict=True) if r is not None}
        return self.averager.absorb(reports)

    def version_counts(self) -> VersionCounts:
        """Executions and failures per function version in the reports of the last `read`."""
        return self.averager.counts


def api_source(settings: Settings, kube: SliceApi) -> ApiLoadSource | None:
    """The client of the API Service the settings name (its namespace: the operator's own when
    unset), or None if they name none."""
    if not settings.api_service:
        return None
    namespace = settings.api_namespace or settings.lease_namespace or "default"
    admin_key = settings.api_admin_key.get_secret_value() if settings.api_admin_key else None
    return ApiLoadSource(
        kube, namespace=namespace, service=settings.api_service, admin_key=admin_key
    )
