"""Neighbour benchmark: a benign function's latency on a worker while other functions attack.

One real `python -m vortex_runtime serve --store` worker serves a benign echo function and a set
of hostile ones: a loop to its timeout, heap and buffer bombs past their memory limit, work left
to run after the invocation, a flood of timers. The benign function is called serially, first
on a quiet worker, then while one attacker runs every attack in turn, back to back, beside it. The anchor is the same
function's quiet p99, measured in the same run; the goal is an attacked p99 within 2x of it, and
no failed benign call. Run by `python -m bench neighbours` (and `all`).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench import anchors

ATTACKS = {
    "spin.js": ("while (true) {}", {"x-vortex-timeout-ms": "100"}),
    "heap.js": (
        "const a = []; while (true) a.push(new Array(1e5).fill(1));",
        {"x-vortex-memory-mb": "32"},
    ),
    "buffers.js": (
        "const k = []; for (let i = 0; i < 4096; i++) k.push(new ArrayBuffer(1 << 20)); return 1",
        {"x-vortex-memory-mb": "64"},
    ),
    "leftover.js": (
        "Atomics.waitAsync(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5).value"
        ".then(() => { while (true) {} }); return 1",
        {},
    ),
    "timers.js": (
        "for (let i = 0; i < 1000; i++) setTimeout(() => {}, 1);"
        " await new Promise((r) => setTimeout(r, 20)); return 1",
        {},
    ),
}
BENIGN = "echo.js"


async def _benign(client: httpx.AsyncClient, runs: int) -> tuple[list[float], int]:
    samples: list[float] = []
    failures = 0
    for i in range(runs):
        started = time.perf_counter()
        response = await client.post(f"/invoke/{BENIGN}", json={"i": i})
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200 or response.json().get("output") != {"i": i}:
            failures += 1
    return samples, failures


async def _attack(client: httpx.AsyncClient, stop: asyncio.Event) -> int:
    """One attacker: every attack in turn, back to back, until told to stop."""
    count = 0
    while not stop.is_set():
        for name, (_code, headers) in ATTACKS.items():
            await client.post(f"/invoke/{name}", headers=headers)
            count += 1
    return count


async def _run(url: str, runs: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=4)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await _benign(client, 200)  # warm
        quiet, quiet_failures = await _benign(client, runs)
        stop = asyncio.Event()
        attacker = asyncio.ensure_future(_attack(client, stop))
        await asyncio.sleep(1.0)  # under way
        attacked, attacked_failures = await _benign(client, runs)
        stop.set()
        attacks = await attacker
    return {
        "quiet_p50": statistics.median(quiet),
        "quiet_p99": statistics.quantiles(quiet, n=100)[98],
        "attacked_p50": statistics.median(attacked),
        "attacked_p99": statistics.quantiles(attacked, n=100)[98],
        "failures": quiet_failures + attacked_failures,
        "attacks": attacks,
    }


def main(runs: int = 2000) -> None:
    print("== neighbour benchmark ==")
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        (store / BENIGN).write_text("return event;")
        for name, (code, _headers) in ATTACKS.items():
            (store / name).write_text(code)
        port = anchors.free_port()
        worker = anchors.runtime_server(port, "--store", str(store))
        try:
            url = f"http://127.0.0.1:{port}"
            anchors.wait_http(url + "/readyz")
            figures = asyncio.run(_run(url, runs))
        finally:
            worker.terminate()
            worker.wait(10)
    ratio = figures["attacked_p99"] / figures["quiet_p99"]
    print(
        f"benign /invoke, serial, {runs} calls each: quiet p50 {figures['quiet_p50']:.2f} ms,"
        f" p99 {figures['quiet_p99']:.2f} ms; beside an attacker cycling {len(ATTACKS)} attacks"
        f" ({figures['attacks']:.0f} attacks) p50 {figures['attacked_p50']:.2f} ms,"
        f" p99 {figures['attacked_p99']:.2f} ms"
    )
    print(f"  attacked p99 / quiet p99: {ratio:.2f}x   (goal <= 2x)")
    print(f"  failed benign calls: {figures['failures']:.0f}   (goal 0)")
