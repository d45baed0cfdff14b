"""CPU time per invocation: measured on the isolate's thread (waiting on timers is not counted),
reported as `cpu_time_ms` in the reply, its header and the record, and limited by
`cpuLimitMs` (504 `CpuLimitExceeded`, the isolate recycled, the next call served)."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from vortex_runtime import metrics
from vortex_runtime.errors import CpuLimitExceeded
from vortex_runtime.isolate import Isolate
from vortex_runtime.records import RecordWriter

from .conftest import context

SPIN = "const end = Date.now() + (event || 200); let n = 0; while (Date.now() < end) n++; return n;"
SLEEP = "await new Promise((r) => setTimeout(r, 200)); return 'slept';"
FOREVER = "while (true) {}"


def _recycled(reason: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value(
            "vortex_runtime_isolate_recycles_total", {"reason": reason}
        )
        or 0.0
    )


async def test_a_spin_reports_its_cpu_time_and_a_timer_wait_almost_none(
    isolate_of: Callable[..., Awaitable[Isolate]],
) -> None:
    spinner = await isolate_of(SPIN)
    spun = await spinner.invoke("200", context(), 2.0)
    assert spun.cpu_time_ms is not None
    assert spun.cpu_time_ms >= 180, spun.cpu_time_ms
    sleeper = await isolate_of(SLEEP)
    started = time.monotonic()
    slept = await sleeper.invoke("null", context(), 2.0)
    assert time.monotonic() - started >= 0.19  # it did wait for its timer
    assert json.loads(slept.output_json) == "slept"
    assert slept.cpu_time_ms is not None
    assert slept.cpu_time_ms < 20, slept.cpu_time_ms


async def test_past_its_cpu_limit_an_invocation_stops_and_its_isolate_goes(
    isolate_of: Callable[..., Awaitable[Isolate]],
) -> None:
    isolate = await isolate_of(SPIN)
    with pytest.raises(CpuLimitExceeded) as raised:
        await isolate.invoke("2000", context(), 5.0, cpu_limit_ms=50)
    cpu = raised.value.cpu_time_ms
    assert cpu is not None
    assert 50 <= cpu < 100, cpu
    assert raised.value.status == 504
    assert "50 ms" in raised.value.message
    assert isolate.broken == "cpu"


async def test_a_timer_wait_longer_than_the_cpu_limit_is_not_stopped(
    isolate_of: Callable[..., Awaitable[Isolate]],
) -> None:
    isolate = await isolate_of(SLEEP)
    outcome = await isolate.invoke("null", context(), 2.0, cpu_limit_ms=20)
    assert json.loads(outcome.output_json) == "slept"
    assert isolate.broken is None


async def test_the_reply_header_and_record_carry_cpu_time_and_the_limit_recycles(
    client_for: Callable[..., Awaitable[httpx.AsyncClient]],
    code_file: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    writer = RecordWriter(tmp_path / "records.jsonl", 1 << 20)
    client = await client_for(code_file=code_file(SPIN), writer=writer)
    ok = await client.post("/invoke", json=100)
    assert ok.status_code == 200
    body = ok.json()
    assert set(body) == {"output", "logs", "execution_time_ms", "cpu_time_ms"}
    assert 80 <= body["cpu_time_ms"] <= body["execution_time_ms"] + 1
    assert float(ok.headers["x-vortex-cpu-time-ms"]) == body["cpu_time_ms"]

    before = _recycled("cpu")
    limited = await client.post("/invoke", json=3000, headers={"x-vortex-cpu-limit-ms": "50"})
    assert limited.status_code == 504
    error = limited.json()
    assert error["error"]["type"] == "CpuLimitExceeded"
    assert 50 <= error["cpu_time_ms"] < 100
    assert error["execution_time_ms"] < 1000  # stopped at its CPU budget, not its timeout
    assert _recycled("cpu") == before + 1
    after = await client.post("/invoke", json=10, headers={"x-vortex-cpu-limit-ms": "50"})
    assert after.status_code == 200  # a fresh isolate serves the next call

    writer.flush()
    lines = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert [r["status"] for r in lines] == ["ok", "error", "ok"]
    assert lines[1]["error_type"] == "CpuLimitExceeded"
    assert all(isinstance(r["cpu_time_ms"], float | int) for r in lines)


@pytest.mark.parametrize("bad", ["0", "-5", "x", "900001"])
async def test_a_bad_cpu_limit_header_is_a_400(
    client_for: Callable[..., Awaitable[httpx.AsyncClient]],
    code_file: Callable[[str], Path],
    bad: str,
) -> None:
    client = await client_for(code_file=code_file("return 1;"))
    response = await client.post("/invoke", json=0, headers={"x-vortex-cpu-limit-ms": bad})
    assert response.status_code == 400
    assert "x-vortex-cpu-limit-ms" in response.json()["error"]["message"]


async def test_the_setting_is_the_default_limit(
    client_for: Callable[..., Awaitable[httpx.AsyncClient]],
    code_file: Callable[[str], Path],
) -> None:
    client = await client_for(code_file=code_file(FOREVER), cpu_limit_ms=30, timeout_ms=5000)
    response = await client.post("/invoke", json=0)
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "CpuLimitExceeded"
