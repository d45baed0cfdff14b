"""Density benchmark: how many functions one runtime process keeps warm, and what each costs.

One real `python -m vortex_runtime serve --store` worker (many-function mode, with a memory
budget of BUDGET_MB, as a pool pod would be given) gets N distinct functions, each called twice over HTTP: the first call is a cold
start (from a pre-warmed isolate when the stock has one), the second must be warm. The figures
are the process's RSS growth per function kept warm (MB per idle warm function, goal <= 1 MB),
how many stayed warm (goal >= 1,000 per process), and how many second calls were cold (evicted
by the budget in between). Run by `python -m bench density` (and `all`).
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from pathlib import Path

import httpx

from bench import anchors

_GAUGE = re.compile(r"^vortex_runtime_isolates (\S+)$", re.M)
BUDGET_MB = 1536


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def _run(url: str, pid: int, count: int) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await client.post("/invoke/f0.js")  # the process has started V8 and its stock
        await asyncio.sleep(0.5)
        before = _rss_bytes(pid)
        started = time.perf_counter()
        failures = cold_second = 0
        for i in range(count):
            for call in range(2):
                response = await client.post(
                    f"/invoke/f{i}.js", headers={"x-vortex-function": f"f{i}"}, json={"n": i}
                )
                if response.status_code != 200 or response.json().get("output") != i:
                    failures += 1
                elif call == 1 and response.headers.get("x-vortex-cold-start") == "1":
                    cold_second += 1
        seconds = time.perf_counter() - started
        await asyncio.sleep(1.5)  # a probe round: the budget sees every idle isolate
        metrics = (await client.get("/metrics")).text
        match = _GAUGE.search(metrics)
        isolates = float(match.group(1)) if match else 0.0
        grown = _rss_bytes(pid) - before
    return {
        "failures": failures,
        "cold_second": cold_second,
        "isolates": isolates,
        "mb_per_function": grown / 1e6 / max(1.0, isolates),
        "rss_mb": _rss_bytes(pid) / 1e6,
        "calls_per_s": 2 * count / seconds,
    }


def main(count: int = 1000) -> None:
    print("== density benchmark ==")
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        for i in range(count):
            (store / f"f{i}.js").write_text(f"return event.n === {i} ? {i} : -1;")
        port = anchors.free_port()
        worker = anchors.runtime_server(
            port, "--store", str(store), env={"VORTEX_MEMORY_BUDGET_MB": str(BUDGET_MB)}
        )
        try:
            url = f"http://127.0.0.1:{port}"
            anchors.wait_http(url + "/readyz")
            figures = asyncio.run(_run(url, worker.pid, count))
        finally:
            worker.terminate()
            worker.wait(10)
    print(
        f"{count} functions, each called twice, on one runtime process ({BUDGET_MB} MB budget):"
        f" {figures['failures']:.0f} failed calls, {figures['cold_second']:.0f} second calls"
        f" cold, {figures['calls_per_s']:.0f} calls/s"
    )
    print(
        f"  warm functions kept: {figures['isolates']:.0f}   (goal >= 1,000 per process);"
        f" process RSS {figures['rss_mb']:.0f} MB"
    )
    print(f"  memory per idle warm function: {figures['mb_per_function']:.2f} MB   (goal <= 1 MB)")
