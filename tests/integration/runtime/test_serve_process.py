"""`python -m vortex_runtime serve` as a real process: both modes, shutdown, and the watchdog."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

from vortex_runtime.watchdog import EXIT_STATUS


def test_single_function_from_file(start_runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code = tmp_path / "hello.js"
    code.write_text('console.log("Hello Vortex!"); return 42;')
    runtime = start_runtime("--code-file", str(code))
    runtime.wait_ready()
    body = httpx.post(runtime.url + "/invoke").json()
    assert body["output"] == 42
    assert body["logs"][0]["message"] == "Hello Vortex!"
    # Logs are JSON lines, and the function's console output reaches the output only inside
    # its invocation record (one JSON line on stdout).
    runtime.process.terminate()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why.
    assert runtime.process.wait(10) in (0, -15)
    assert "Application shutdown complete" in runtime.log()
    lines = [json.loads(line) for line in runtime.log().splitlines() if line.startswith("{")]
    assert any(
        line["message"].startswith("function") and "ready" in line["message"] for line in lines
    )
    carrying = [line for line in runtime.log().splitlines() if "Hello Vortex!" in line]
    assert len(carrying) == 1
    record = json.loads(carrying[0])
    assert record["status"] == "ok"
    assert record["logs"][0]["message"] == "Hello Vortex!"


def test_the_event_loop_runs_with_the_shortest_slice(start_runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The thread that serves every function's HTTP preempts the process's other threads."""
    import os

    from vortex_runtime import sched

    (tmp_path / "a.js").write_text("return 1")
    runtime = start_runtime("--store", str(tmp_path))
    runtime.wait_ready()
    assert httpx.post(runtime.url + "/invoke/a.js").json()["output"] == 1
    pid = runtime.process.pid
    assert sched.thread_slice_ns(pid) == sched.LOOP_SLICE_NS  # the main thread runs the loop
    others = {int(t) for t in os.listdir(f"/proc/{pid}/task")} - {pid}
    slices = {sched.thread_slice_ns(tid) for tid in others}
    assert sched.SHORT_SLICE_NS in slices  # the isolates
    assert sched.HELPER_SLICE_NS in slices  # the thread that makes them


def test_a_local_mode_worker_serves_on_one_cpu(start_runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With VORTEX_SERVE_CPU=auto, local mode's workers each pin their serving threads to a
    CPU of their own; by default, or without a worker index (a pod), every CPU is the kernel's."""
    import os

    allowed = sorted(os.sched_getaffinity(0))
    (tmp_path / "a.js").write_text("return 1")
    worker = start_runtime(
        "--store", str(tmp_path), env={"VORTEX_WORKER_INDEX": "1", "VORTEX_SERVE_CPU": "auto"}
    )
    free = start_runtime("--store", str(tmp_path), env={"VORTEX_SERVE_CPU": "auto"})
    default = start_runtime("--store", str(tmp_path), env={"VORTEX_WORKER_INDEX": "1"})
    for runtime in (worker, free, default):
        runtime.wait_ready()
        assert httpx.post(runtime.url + "/invoke/a.js").json()["output"] == 1
    pid = worker.process.pid
    assert os.sched_getaffinity(pid) == {allowed[1]}  # the event loop
    tasks = os.listdir(f"/proc/{pid}/task")
    # The isolate serving a.js beside it; the stock of blank isolates, made on the other CPUs.
    assert {frozenset(os.sched_getaffinity(int(tid))) for tid in tasks} == {
        frozenset({allowed[1]}),
        frozenset(set(allowed) - {allowed[1]}),
    }
    assert os.sched_getaffinity(free.process.pid) == set(allowed)
    assert os.sched_getaffinity(default.process.pid) == set(allowed)


def test_many_functions_from_store(start_runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.js").write_text("return event.n * 2")
    runtime = start_runtime("--store", str(tmp_path), "--pool-size", "2")
    runtime.wait_ready()
    assert httpx.post(runtime.url + "/invoke/a.js", json={"n": 21}).json()["output"] == 42


def test_watchdog_exits_when_an_isolate_cannot_be_terminated(start_runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Simulate an isolate V8 will not let go of: closing it blocks forever. The runtime must
    # notice within the grace period and exit non-zero so that the pod restarts.
    launcher = tmp_path / "launch.py"
    launcher.write_text(
        textwrap.dedent(
            """
            import sys, threading
            from vortex_runtime import isolate
            isolate.Isolate.close_now = lambda self: threading.Event().wait()
            from vortex_runtime.__main__ import main
            sys.exit(main(sys.argv[1:]))
            """
        )
    )
    code = tmp_path / "spin.js"
    code.write_text("while (true) {}")
    runtime = start_runtime(
        "--code-file",
        str(code),
        "--timeout-ms",
        "200",
        env={"VORTEX_WATCHDOG_GRACE_MS": "500"},
        python=[sys.executable, str(launcher)],
    )
    runtime.wait_ready()
    response = httpx.post(runtime.url + "/invoke", timeout=10)
    assert response.status_code == 504
    try:
        status = runtime.process.wait(10)
    except subprocess.TimeoutExpired:
        raise AssertionError("the watchdog did not fire") from None
    assert status == EXIT_STATUS
    assert "could not be terminated" in runtime.log()


def test_uninterruptible_builtin_drains_the_process_and_neighbours_finish(
    start_runtime, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A sort V8 cannot interrupt outlives its timeout and the watchdog's grace. The process
    stops taking calls (a new connection is refused, so a caller can go elsewhere), the
    neighbour's call in flight on another isolate still gets its answer, and only then does
    the process exit for a restart."""
    # Filled in slices, each well inside the timeout even on a loaded machine; then one sort
    # of 24 million doubles, seconds long and uninterruptible, past the timeout and the grace
    # even on a fast one.
    (tmp_path / "sort.js").write_text(
        "globalThis.a ??= new Float64Array(24e6); globalThis.n ??= 0;"
        " if (event && event.fill) { const end = Math.min(a.length, n + 2e6);"
        " for (let i = n; i < end; i++) a[i] = Math.random(); n = end; return n; }"
        " a.sort(); return 'sorted'"
    )
    (tmp_path / "slow.js").write_text(
        "await new Promise((done) => setTimeout(done, 5000)); return 'neighbour'"
    )
    runtime = start_runtime("--store", str(tmp_path), env={"VORTEX_WATCHDOG_GRACE_MS": "300"})
    runtime.wait_ready()

    attack_headers = {"x-vortex-timeout-ms": "1000", "x-vortex-memory-mb": "512"}

    async def scenario() -> tuple[httpx.Response, httpx.Response, bool]:
        async with httpx.AsyncClient(base_url=runtime.url, timeout=30) as client:
            filled = 0
            while filled < 24e6:
                response = await client.post(
                    "/invoke/sort.js", json={"fill": True}, headers=attack_headers
                )
                assert response.status_code == 200, response.text
                filled = response.json()["output"]
            neighbour = asyncio.ensure_future(
                client.post("/invoke/slow.js", headers={"x-vortex-timeout-ms": "10000"})
            )
            await asyncio.sleep(0.3)
            attack = await client.post("/invoke/sort.js", headers=attack_headers)
            for _ in range(100):  # past the grace, once the server has stopped listening
                if "Shutting down" in runtime.log():
                    break
                await asyncio.sleep(0.05)
            refused = False
            try:
                async with httpx.AsyncClient(base_url=runtime.url, timeout=2) as fresh:
                    await fresh.post("/invoke/slow.js")
            except httpx.ConnectError:
                refused = True
            return attack, await neighbour, refused

    attack, neighbour, refused = asyncio.run(scenario())
    assert attack.status_code == 504, attack.text
    assert neighbour.status_code == 200, neighbour.text
    assert neighbour.json()["output"] == "neighbour"
    assert refused, "a draining runtime still took a new connection"
    try:
        status = runtime.process.wait(15)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the drained runtime did not exit:\n{runtime.log()}") from None
    assert status == EXIT_STATUS
    assert "draining" in runtime.log()


def test_runtime_survives_hostile_run_and_keeps_serving(start_runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "spin.js").write_text("while (true) {}")
    (tmp_path / "bomb.js").write_text("const a = []; while (true) a.push(new Array(1e5).fill(1));")
    (tmp_path / "ok.js").write_text("return 'ok'")
    runtime = start_runtime("--store", str(tmp_path), "--memory-mb", "32")
    runtime.wait_ready()
    with httpx.Client(base_url=runtime.url, timeout=20) as client:
        for _ in range(3):
            assert (
                client.post("/invoke/spin.js", headers={"x-vortex-timeout-ms": "100"}).status_code
                == 504
            )
            assert client.post("/invoke/bomb.js").status_code == 507
            assert client.post("/invoke/ok.js").json()["output"] == "ok"
        metrics = client.get("/metrics").text
    assert 'vortex_runtime_isolate_recycles_total{reason="timeout"} 3.0' in metrics
    assert 'vortex_runtime_isolate_recycles_total{reason="memory"} 3.0' in metrics
    assert runtime.process.poll() is None
