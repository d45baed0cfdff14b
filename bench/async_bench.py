"""Async invocations in local mode (`POST /async/{id}`, the SQLite queue), printed in one run:

- enqueue throughput: wrk at 16 connections on `/async/{id}` of a trivial function, 202s only,
  against `/execute` of the same function in the same run (the synchronous path is the anchor:
  workerd and the peers publish no figure for a queue of their own on this machine);
- how fast the queue drains what was enqueued, as completed invocations a second;
- enqueue-to-start latency, p50 and p99: from each invocation's `created_at` to its first
  attempt's `started_at` (both the API's clock), with invocations sent one every 10 ms to an
  otherwise idle API.
"""

from __future__ import annotations

import re
import statistics
import time
from datetime import datetime

import httpx

from bench import anchors
from bench.e2e_bench import deploy, local_api

CONNECTIONS = 16
LATENCY_SAMPLES = 200
DRAIN_TIMEOUT_S = 300.0


def _at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _succeeded(client: httpx.Client, url: str, function_id: str) -> float:
    text = client.get(url + "/metrics").text
    pattern = (
        r'vortex_async_attempts_total\{function="'
        + re.escape(function_id)
        + r'",outcome="succeeded"\} ([0-9.e+]+)'
    )
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(duration_s: int = 10) -> None:
    print("== async benchmark (local mode, SQLite queue) ==")
    # The bulkhead above the load, so that every request is work done (2xx).
    with local_api(VORTEX_MAX_WORKERS="64") as api, httpx.Client(timeout=30) as client:
        function_id = deploy(client, api.url, "return 42;")
        sync = anchors.wrk(f"{api.url}/execute/{function_id}", "", CONNECTIONS, duration_s)
        started = time.monotonic()
        queued = anchors.wrk(f"{api.url}/async/{function_id}", "", CONNECTIONS, duration_s)
        accepted = queued.requests - queued.non2xx
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while _succeeded(client, api.url, function_id) < accepted:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the queue did not drain {accepted} within {DRAIN_TIMEOUT_S}s")
            time.sleep(0.2)
        drained_s = time.monotonic() - started
        print(f"/execute, wrk {CONNECTIONS} connections: {sync.line()}")
        print(f"/async,   wrk {CONNECTIONS} connections: {queued.line()}")
        print(
            f"  enqueue throughput ratio (async 202s / execute 200s):"
            f" {queued.requests_per_s / sync.requests_per_s:.2f}x"
        )
        print(
            f"  {accepted} queued, all succeeded {drained_s:.1f} s after the load began:"
            f" {accepted / drained_s:.0f} completed/s"
        )

        ids = []
        for n in range(LATENCY_SAMPLES):
            reply = client.post(f"{api.url}/async/{function_id}", json={"n": n})
            ids.append(reply.json()["invocation_id"])
            time.sleep(0.01)
        delays = []
        for invocation_id in ids:
            while True:
                doc = client.get(f"{api.url}/invocations/{invocation_id}").json()
                if doc["status"] == "succeeded":
                    break
                time.sleep(0.05)
            delays.append((_at(doc["history"][0]["started_at"]) - _at(doc["created_at"])) * 1000)
        print(
            f"enqueue to start, {LATENCY_SAMPLES} sent 10 ms apart: p50"
            f" {statistics.median(delays):.2f} ms, p99 {_percentile(delays, 0.99):.2f} ms"
        )
