"""CPU time per execution on real local-mode workers: reported as `cpu_time_ms` (waits not
counted), kept in the invocation record and the API's histogram, and limited by `cpu_limit_ms`."""

from __future__ import annotations

import re

import httpx

from .test_execute import deploy, first_records

SPIN = "const end = Date.now() + 200; let n = 0; while (Date.now() < end) n++; return n;"
SLEEP = "await new Promise((r) => setTimeout(r, 200)); return 'slept';"
BURN = "let n = 0; for (;;) n++;"


def _histogram_count(text: str, function_id: str) -> float:
    pattern = rf'^vortex_execution_cpu_seconds_count\{{function="{function_id}"\}} (\S+)$'
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_cpu_time_counts_spinning_and_not_waiting(client: httpx.AsyncClient) -> None:
    spinner = await deploy(client, SPIN)
    sleeper = await deploy(client, SLEEP)
    spun = await client.post(f"/execute/{spinner}")
    slept = await client.post(f"/execute/{sleeper}")
    assert spun.status_code == slept.status_code == 200, (spun.text, slept.text)
    assert spun.json()["cpu_time_ms"] >= 180, spun.json()
    assert slept.json()["execution_time_ms"] >= 190
    assert slept.json()["cpu_time_ms"] < 20, slept.json()

    metrics = (await client.get("/metrics")).text
    assert _histogram_count(metrics, spinner) == 1
    assert _histogram_count(metrics, sleeper) == 1

    records = await first_records(client, spinner)
    assert records[0]["cpu_time_ms"] == spun.json()["cpu_time_ms"]


async def test_a_cpu_limit_stops_a_spinner_and_the_next_call_succeeds(
    client: httpx.AsyncClient,
) -> None:
    fid = await deploy(
        client,
        "if (event && event.spin) { let n = 0; for (;;) n++; } return 'ok';",
        cpu_limit_ms=50,
        timeout_ms=5000,
    )
    info = (await client.get(f"/functions/{fid}")).json()
    assert info["spec"]["cpu_limit_ms"] == 50

    stopped = await client.post(f"/execute/{fid}", json={"spin": True})
    assert stopped.status_code == 504, stopped.text
    body = stopped.json()
    assert body["error"]["type"] == "CpuLimitExceeded"
    assert "50 ms" in body["error"]["message"]
    assert 50 <= body["cpu_time_ms"] < 100, body
    assert body["execution_time_ms"] < 1000, body  # its CPU budget, not its 5 s timeout

    after = await client.post(f"/execute/{fid}")
    assert after.status_code == 200, after.text
    assert after.json()["output"] == "ok"
    metrics = (await client.get("/metrics")).text
    assert f'vortex_executions_total{{function="{fid}",outcome="cpu_limit"}} 1.0' in metrics


async def test_a_bad_cpu_limit_is_a_400_naming_the_field(client: httpx.AsyncClient) -> None:
    for bad in (0, -1, 300_001, "50"):
        response = await client.post("/deploy", json={"code": BURN, "cpu_limit_ms": bad})
        assert response.status_code == 400, (bad, response.text)
        error = response.json()["error"]
        assert error["type"] == "InvalidRequest"
        assert "cpu_limit_ms" in error["message"]
