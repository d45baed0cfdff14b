"""Runtime benchmark (issue goals), printed in one run against the anchors:

- in-process overhead per warm invocation (us), through `Isolate.invoke`;
- isolate start to ready (ms) and memory per warm isolate (MB);
- the cold start of a new function in a warm process, from a pre-warmed isolate (ms), beside
  Cloudflare Workers' published 5 ms and Fission's published p50 of 110 ms;
- `/invoke` throughput and p50/p99 under wrk at 16 connections, against workerd serving the
  same trivial function on the same machine;
- per-invocation time against a process per execution (the seed's design).
"""

from __future__ import annotations

import gc
import os
import statistics
import time

import uvloop

from bench import anchors


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _overhead_us(runs: int) -> list[float]:
    """`Isolate.invoke` of a trivial function, timed `runs` times after a warm-up."""
    from vortex_runtime.isolate import Isolate, Limits

    context = dict(anchors.CONTEXT)
    isolate = await Isolate.create(anchors.TRIVIAL_BODY, Limits())
    for _ in range(500):
        await isolate.invoke("null", context, 5)
    samples = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        await isolate.invoke("null", context, 5)
        samples.append((time.perf_counter_ns() - started) / 1000)
    isolate.close_now()
    return samples


async def in_process(runs: int = 5000) -> dict[str, float]:
    from vortex_runtime import sched
    from vortex_runtime.isolate import Blank, Isolate, Limits

    context = dict(anchors.CONTEXT)
    # As a pod serves (the kernel places the threads), then as a local-mode worker does
    # (VORTEX_SERVE_CPU=auto: the event loop and the isolates serving share one CPU).
    samples = await _overhead_us(runs)

    starts = []
    for _ in range(30):
        started = time.perf_counter()
        created = await Isolate.create(anchors.TRIVIAL_BODY, Limits())
        starts.append((time.perf_counter() - started) * 1000)
        created.close_now()

    prewarmed = []
    for i in range(30):
        blank = await Blank.start()
        started = time.perf_counter()
        created = await Isolate.create(f"return {i}", Limits(), blank)
        prewarmed.append((time.perf_counter() - started) * 1000)
        created.close_now()

    gc.collect()
    count = 50
    before = _rss_bytes()
    warm = [await Isolate.create(anchors.TRIVIAL_BODY, Limits()) for _ in range(count)]
    for isolate in warm:
        await isolate.invoke("null", context, 5)
    per_isolate = (_rss_bytes() - before) / count
    for isolate in warm:
        isolate.close_now()
    pinned: list[float] = []  # last: sched keeps its serving CPU for the rest of the process
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1 and sched.pin_serving(cpus[0]):
        pinned = await _overhead_us(runs)
        os.sched_setaffinity(0, set(cpus))
    return {
        "overhead_us_median": statistics.median(samples),
        "overhead_us_mean": statistics.fmean(samples),
        "overhead_us_p99": statistics.quantiles(samples, n=100)[98],
        "pinned_us_median": statistics.median(pinned) if pinned else 0.0,
        "pinned_us_p99": statistics.quantiles(pinned, n=100)[98] if pinned else 0.0,
        "isolate_ready_ms": statistics.median(starts),
        "prewarmed_cold_start_ms": statistics.median(prewarmed),
        "isolate_mb": per_isolate / 1e6,
    }


def main(duration_s: int = 10) -> None:
    print("== runtime benchmark ==")
    figures = uvloop.run(in_process())  # the event loop the runtime serves on (uvicorn's)
    print(
        f"in-process overhead per warm invocation: median {figures['overhead_us_median']:.1f} us,"
        f" mean {figures['overhead_us_mean']:.1f} us, p99 {figures['overhead_us_p99']:.1f} us"
        f"   (goal <= 50 us)"
    )
    if figures["pinned_us_median"]:
        print(
            f"  with the event loop and the isolate on one CPU (local-mode workers,"
            f" VORTEX_SERVE_CPU=auto): median {figures['pinned_us_median']:.1f} us,"
            f" p99 {figures['pinned_us_p99']:.1f} us   (goal <= 50 us)"
        )
    print(f"isolate start to ready: median {figures['isolate_ready_ms']:.2f} ms   (goal <= 5 ms)")
    cold = figures["prewarmed_cold_start_ms"]
    print(
        f"cold start of a new function from a pre-warmed isolate: median {cold:.2f} ms"
        f"   (goal <= 1 ms; Cloudflare Workers publish 5 ms: {5 / cold:.1f}x;"
        f" Fission publishes p50 110 ms: {110 / cold:.0f}x)"
    )
    print(f"memory per warm isolate: {figures['isolate_mb']:.2f} MB   (goal <= 5 MB)")

    with anchors.trivial_runtime() as url:
        ours = anchors.wrk(url + "/invoke", duration_s=duration_s)
        ours_serial = anchors.serial_latency_ms(url + "/invoke")
    with anchors.workerd() as url:
        theirs = anchors.wrk(url + "/", duration_s=duration_s)
        theirs_serial = anchors.serial_latency_ms(url + "/")
    print(f"/invoke under wrk, 16 connections, {duration_s}s:")
    print(f"  vortex runtime: {ours.line()}")
    print(f"  workerd:        {theirs.line()}")
    print(
        f"  throughput ratio (vortex/workerd): {ours.requests_per_s / theirs.requests_per_s:.2f}x"
        f"   (goal >= 1.0x)"
    )
    print(f"  p99 ratio (vortex/workerd): {ours.p99_ms / theirs.p99_ms:.2f}x   (goal <= 2x)")
    print(f"  serial request latency: vortex {ours_serial:.3f} ms, workerd {theirs_serial:.3f} ms")

    node = anchors.process_per_execution("node")
    python = anchors.process_per_execution("python")
    print("per-invocation time against a process per execution (the seed's design):")
    print(f"  node process: {node:.1f} ms -> {node / ours_serial:.0f}x slower than a warm /invoke")
    print(f"  python + mini-racer process: {python:.1f} ms -> {python / ours_serial:.0f}x slower")
