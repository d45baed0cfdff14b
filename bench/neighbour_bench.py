"""Neighbour benchmark: a benign function's latency on a worker while other functions attack.

One real `python -m vortex_runtime serve --store` worker serves a benign echo function and a set
of hostile ones: a loop to its timeout, heap and buffer bombs past their memory limit, work left
to run after the invocation, a flood of timers. The benign function is called serially, on a
quiet worker and while one attacker (another process, as another tenant calls from elsewhere)
runs every attack in turn, back to back, beside it; quiet and attacked phases alternate. The
anchor is the same function's quiet p99, measured in the same run; the goal is an attacked p99 within 2x of it, and
no failed benign call. Run by `python -m bench neighbours` (and `all`).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import statistics
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

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


def _benign(conn: http.client.HTTPConnection, runs: int) -> tuple[list[float], int]:
    """Serial calls on one kept-alive connection, with the standard library's client: the load
    generator stays light, so that its own CPU does not crowd the 2-core worker it measures."""
    samples: list[float] = []
    failures = 0
    for i in range(runs):
        body = json.dumps({"i": i})
        started = time.perf_counter()
        conn.request("POST", f"/invoke/{BENIGN}", body, {"content-type": "application/json"})
        response = conn.getresponse()
        answer = response.read()
        samples.append((time.perf_counter() - started) * 1000)
        if response.status != 200 or json.loads(answer).get("output") != {"i": i}:
            failures += 1
    return samples, failures


def _attack(url: str, go: Any, done: Any, count: Any) -> None:
    """One attacker, in a process of its own (another tenant, with its own client): every
    attack in turn, back to back, while `go` is set, until `done` is."""
    with httpx.Client(base_url=url, timeout=30) as client:
        while not done.is_set():
            if not go.wait(0.1):
                continue
            for name, (_code, headers) in ATTACKS.items():
                client.post(f"/invoke/{name}", headers=headers)
                with count.get_lock():
                    count.value += 1


def _run(url: str, runs: int, rounds: int = 8) -> dict[str, float]:
    """Quiet and attacked phases alternate, `rounds` of each, so that the machine's own
    drift over the run weighs on both alike."""
    context = multiprocessing.get_context("fork")
    go, done, count = context.Event(), context.Event(), context.Value("i", 0)
    attacker = context.Process(target=_attack, args=(url, go, done, count), daemon=True)
    attacker.start()
    quiet: list[float] = []
    attacked: list[float] = []
    failures = 0
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=30)
    try:
        _benign(conn, 200)  # warm
        for _ in range(rounds):
            samples, failed = _benign(conn, runs // rounds)
            quiet += samples
            go.set()
            time.sleep(0.5)  # under way
            samples, more = _benign(conn, runs // rounds)
            attacked += samples
            go.clear()
            time.sleep(0.5)  # the last attack over
            failures += failed + more
    finally:
        conn.close()
    done.set()
    attacker.join(60)
    return {
        "quiet_p50": statistics.median(quiet),
        "quiet_p99": statistics.quantiles(quiet, n=100)[98],
        "attacked_p50": statistics.median(attacked),
        "attacked_p99": statistics.quantiles(attacked, n=100)[98],
        "failures": failures,
        "attacks": count.value,
    }


def main(runs: int = 4000) -> None:
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
            figures = _run(url, runs)
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
