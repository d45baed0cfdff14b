"""`python -m vortex_runtime serve` as a real process: both modes, shutdown, and the watchdog."""

from __future__ import annotations

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
    # Logs are JSON lines, and the function's console output never reaches stdout.
    runtime.process.terminate()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why.
    assert runtime.process.wait(10) in (0, -15)
    assert "Application shutdown complete" in runtime.log()
    lines = [json.loads(line) for line in runtime.log().splitlines() if line.startswith("{")]
    assert any(
        line["message"].startswith("function") and "ready" in line["message"] for line in lines
    )
    assert "Hello Vortex!" not in runtime.log()


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
