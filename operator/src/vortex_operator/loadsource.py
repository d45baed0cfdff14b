"""Where the autoscaler reads the load: `GET /internal/concurrency` of every API replica.

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
from typing import Any, Protocol

import httpx

from vortex_kube.contract import CONCURRENCY_PATH, SERVICE_NAME_LABEL

log = logging.getLogger("vortex_operator.loadsource")

# (namespace, function name) -> executions in flight, averaged over the tick.
Loads = dict[tuple[str, str], float]


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

    def absorb(self, reports: dict[str, dict[str, Any]]) -> Loads:
        """The summed loads of these reports (address -> `ConcurrencyReport` as JSON)."""
        loads: Loads = {}
        for address, report in reports.items():
            namespace = str(report.get("namespace") or "default")
            functions = report.get("functions") or {}
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

    async def read(self) -> Loads:
        """The load per function over the last tick, summed over the API replicas."""
        slices, _ = await self.kube.list(
            "EndpointSlice", self.namespace, f"{SERVICE_NAME_LABEL}={self.service}"
        )
        addresses = api_addresses(slices)
        answers = await asyncio.gather(*(self._report(a) for a in addresses))
        reports = {a: r for a, r in zip(addresses, answers, strict=True) if r is not None}
        return self.averager.absorb(reports)
