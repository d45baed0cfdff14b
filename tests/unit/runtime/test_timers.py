"""Timers and microtasks run on a real event loop and never outlive their invocation."""

from __future__ import annotations

import asyncio
import time

import pytest

from vortex_runtime.errors import FunctionError

from .conftest import RunJS, context


async def test_set_timeout_order_and_args(run_js: RunJS) -> None:
    output, _ = await run_js(
        "const seen = [];"
        "await new Promise(done => {"
        "  setTimeout((x) => seen.push(x), 30, 'b');"
        "  setTimeout((x) => seen.push(x), 10, 'a');"
        "  setTimeout(done, 60);"
        "});"
        "return seen;"
    )
    assert output == ["a", "b"]


async def test_timeout_really_waits(run_js: RunJS) -> None:
    started = time.monotonic()
    output, _ = await run_js(
        "const t = Date.now(); await new Promise(r => setTimeout(r, 200)); return Date.now() - t;"
    )
    assert output >= 190
    assert time.monotonic() - started >= 0.19


async def test_clear_timeout(run_js: RunJS) -> None:
    output, _ = await run_js(
        "let fired = false; const id = setTimeout(() => { fired = true }, 10); clearTimeout(id);"
        "await new Promise(r => setTimeout(r, 40)); return fired;"
    )
    assert output is False


async def test_set_interval_and_clear_interval(run_js: RunJS) -> None:
    output, _ = await run_js(
        "let n = 0; await new Promise(done => { const id = setInterval(() => {"
        "  if (++n === 3) { clearInterval(id); done(); } }, 5); });"
        "await new Promise(r => setTimeout(r, 30)); return n;"
    )
    assert output == 3


async def test_queue_microtask_runs_before_timers(run_js: RunJS) -> None:
    output, _ = await run_js(
        "const seen = []; setTimeout(() => seen.push('timer'), 0);"
        "queueMicrotask(() => seen.push('micro')); seen.push('sync');"
        "await new Promise(r => setTimeout(r, 10)); return seen;"
    )
    assert output == ["sync", "micro", "timer"]


async def test_errors_in_callbacks_are_logged_not_fatal(run_js: RunJS) -> None:
    output, logs = await run_js(
        "setTimeout(() => { throw new Error('in timer') }, 0);"
        "await new Promise(r => setTimeout(r, 20)); return 'alive';"
    )
    assert output == "alive"
    assert any("in timer" in e["message"] and e["level"] == "error" for e in logs)


async def test_pending_timers_are_cancelled_when_the_function_returns(isolate_of) -> None:  # type: ignore[no-untyped-def]
    isolate = await isolate_of(
        "globalThis.count = (globalThis.count || 0);"
        "setInterval(() => { globalThis.count++ }, 1);"
        "return globalThis.count;",
        timeout_ms=1000,
    )
    first = await isolate.invoke("null", context(), 1)
    await asyncio.sleep(0.05)
    second = await isolate.invoke("null", context(), 1)
    assert first.output_json == "0"
    assert second.output_json == "0"


async def test_timer_flood_is_refused(run_js: RunJS) -> None:
    with pytest.raises(FunctionError, match="Too many pending timers"):
        await run_js("for (let i = 0; i < 1e6; i++) setTimeout(() => {}, 100000);", max_timers=100)
