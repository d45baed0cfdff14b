"""Async invocations (`POST /async/{id}`), in local mode (the SQLite queue) and, through
`bench.cluster_bench`, on the real cluster (NATS JetStream, consumed by the API pods). Each run
prints:

- enqueue throughput: wrk at 16 connections on `/async/{id}` of a trivial function, 202s only,
  against `/execute` of the same function in the same run (the synchronous path is the anchor:
  workerd and the peers publish no figure for a queue of their own on this machine);
- how fast the queue drains what was enqueued, as completed invocations a second;
- enqueue-to-start latency, p50 and p99: from each invocation's `created_at` to its first
  attempt's `started_at` (kept to the millisecond, by the API's clock; on the cluster every API pod shares the node's), with
  invocations sent one every 10 ms to an otherwise idle API.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx

from bench import anchors
from bench.e2e_bench import deploy, local_api
from tests.e2e.kit import metric_sum

CONNECTIONS = 16
LATENCY_SAMPLES = 200
LATENCY_GAP_S = 0.01
DRAIN_TIMEOUT_S = 300.0
RECORD_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class AsyncFigures:
    """One async run against one API: the wrk runs, the drain and the enqueue-to-start delays."""

    sync: anchors.WrkResult
    queued: anchors.WrkResult
    accepted: int
    drained_s: float
    delays_ms: list[float]

    def lines(self) -> list[str]:
        ratio = self.queued.requests_per_s / self.sync.requests_per_s
        return [
            f"/execute, wrk {CONNECTIONS} connections: {self.sync.line()}",
            f"/async,   wrk {CONNECTIONS} connections: {self.queued.line()}",
            f"  enqueue throughput ratio (async 202s / execute 200s): {ratio:.2f}x",
            f"  {self.accepted} queued, all succeeded {self.drained_s:.1f} s after the load"
            f" began: {self.accepted / self.drained_s:.0f} completed/s",
            f"enqueue to start, {len(self.delays_ms)} sent {LATENCY_GAP_S * 1000:g} ms apart:"
            f" p50 {statistics.median(self.delays_ms):.2f} ms,"
            f" p99 {percentile(self.delays_ms, 0.99):.2f} ms",
        ]


def _at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def succeeded_series(function_id: str) -> str:
    """The series counting a function's succeeded attempts, labels written out (for `metric_sum`)."""
    return f'vortex_async_attempts_total{{function="{function_id}",outcome="succeeded"}}'


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _record(client: httpx.Client, url: str, invocation_id: str) -> dict[str, object]:
    deadline = time.monotonic() + RECORD_TIMEOUT_S
    while True:
        reply = client.get(f"{url}/invocations/{invocation_id}")
        doc: dict[str, object] = reply.json()
        if reply.status_code == 200 and doc["status"] == "succeeded":
            return doc
        if reply.status_code == 200 and doc["status"] in ("failed", "dead"):
            raise RuntimeError(f"invocation {invocation_id} ended {doc['status']}: {doc}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"invocation {invocation_id} did not succeed in time: {doc}")
        time.sleep(0.05)


def measure(
    url: str,
    function_id: str,
    succeeded: Callable[[], float],
    duration_s: int,
    headers: dict[str, str] | None = None,
) -> AsyncFigures:
    """The async figures of `function_id` (a trivial function) behind the API at `url`.
    `succeeded` reads the API's count of the function's succeeded attempts (over all its
    processes), which must be 0 when this starts."""
    with httpx.Client(timeout=30, headers=headers) as client:
        sync = anchors.wrk(
            f"{url}/execute/{function_id}", "", CONNECTIONS, duration_s, headers=headers
        )
        started = time.monotonic()
        queued = anchors.wrk(
            f"{url}/async/{function_id}", "", CONNECTIONS, duration_s, headers=headers
        )
        accepted = queued.requests - queued.non2xx
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while succeeded() < accepted:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the queue did not drain {accepted} within {DRAIN_TIMEOUT_S}s")
            time.sleep(0.2)
        drained_s = time.monotonic() - started

        ids = []
        for n in range(LATENCY_SAMPLES):
            reply = client.post(f"{url}/async/{function_id}", json={"n": n})
            if reply.status_code != 202:
                raise RuntimeError(f"/async answered {reply.status_code}: {reply.text}")
            ids.append(reply.json()["invocation_id"])
            time.sleep(LATENCY_GAP_S)
        delays = []
        for invocation_id in ids:
            doc = _record(client, url, invocation_id)
            history = doc["history"]
            assert isinstance(history, list)
            delays.append((_at(history[0]["started_at"]) - _at(str(doc["created_at"]))) * 1000)
    return AsyncFigures(sync, queued, accepted, drained_s, delays)


def main(duration_s: int = 10) -> None:
    print("== async benchmark (local mode, SQLite queue) ==")
    # The bulkhead above the load, so that every request is work done (2xx).
    with local_api(VORTEX_MAX_WORKERS="64") as api, httpx.Client(timeout=30) as client:
        function_id = deploy(client, api.url, "return 42;")
        where = urlsplit(api.url)
        series = succeeded_series(function_id)
        figures = measure(
            api.url,
            function_id,
            lambda: metric_sum(str(where.hostname), series, where.port or 80),
            duration_s,
        )
    for line in figures.lines():
        print(line)
