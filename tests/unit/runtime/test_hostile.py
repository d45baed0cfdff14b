"""Hostile code is contained: each attack fails alone and the runtime keeps serving.

Runaway loops, memory bombs, floods, prototype pollution, reaching for host globals, and
trying to read another function's state. Every test also checks that a neighbour (or the next
invocation) still gets a correct answer.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from vortex_runtime.errors import (
    FunctionError,
    InvocationTimeout,
    MemoryLimitExceeded,
    OutputTooLarge,
)

from .conftest import RunJS, context


async def _still_serves(client: httpx.AsyncClient, key: str | None = None) -> None:
    response = await client.post(f"/invoke/{key}" if key else "/invoke", json={"n": 1})
    assert response.status_code == 200, response.text
    assert response.json()["output"] == {"n": 1}


@pytest.fixture
async def store(tmp_path, client_for):  # type: ignore[no-untyped-def]
    """A many-function runtime with an echo function next to whatever the test adds."""
    (tmp_path / "echo.js").write_text("return event;")

    async def add(name: str, code: str, **settings: object) -> httpx.AsyncClient:
        (tmp_path / name).write_text(code)
        return await client_for(store_dir=tmp_path, **settings)

    return add


@pytest.mark.parametrize(
    "code",
    [
        "while (true) {}",
        "for (;;) { Math.random() }",
        "while (true) { await null }",  # a microtask loop: the event loop never turns
        "(async () => { while (true) { await null } })(); await new Promise(() => {});",
        "await new Promise(() => {});",  # never settles
        "setInterval(() => { for (let i = 0; i < 1e6; i++); }, 0); await new Promise(() => {});",
    ],
    ids=[
        "sync-loop",
        "sync-loop-2",
        "await-loop",
        "detached-await-loop",
        "never-settles",
        "busy-interval",
    ],
)
async def test_runaway_code_times_out_within_50ms_and_neighbours_serve(store, code: str) -> None:  # type: ignore[no-untyped-def]
    client = await store("bad.js", code)
    started = time.monotonic()
    response = await client.post("/invoke/bad.js", headers={"x-vortex-timeout-ms": "300"})
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "Timeout"
    assert elapsed < 0.3 + 0.05 + 0.1  # the limit plus 50 ms, plus isolate start-up
    await _still_serves(client, "echo.js")
    # The broken isolate was recycled: the same function answers again (and times out again).
    again = await client.post("/invoke/bad.js", headers={"x-vortex-timeout-ms": "200"})
    assert again.status_code == 504


async def test_timeout_precision_on_warm_isolate(isolate_of) -> None:  # type: ignore[no-untyped-def]
    # The answer comes within the timeout plus 50 ms. Best of three, so that a busy CI machine
    # descheduling the test process for a moment does not count as the runtime being late.
    elapsed = []
    for _ in range(3):
        isolate = await isolate_of("if (event) { while (true) {} } return 1", timeout_ms=5000)
        await isolate.invoke("null", context(), 1)
        started = time.monotonic()
        with pytest.raises(InvocationTimeout):
            await isolate.invoke("true", context(), 0.2)
        elapsed.append(time.monotonic() - started)
        assert isolate.broken == "timeout"
    assert min(elapsed) < 0.25, elapsed


@pytest.mark.parametrize(
    "code",
    [
        "const a = []; while (true) a.push(new Array(1e5).fill(1));",
        "let s = 'x'; while (true) s += s;",
        "const a = []; while (true) { a.push({k: Math.random()}); if (a.length % 1e5 === 0) await null; }",
        "await null; const m = new Map(); let i = 0; while (true) m.set(i++, 'v'.repeat(100));",
    ],
    ids=["arrays", "string-doubling", "objects-with-awaits", "map-after-await"],
)
async def test_memory_bomb_fails_only_its_invocation(store, code: str) -> None:  # type: ignore[no-untyped-def]
    client = await store("bomb.js", code)
    response = await client.post(
        "/invoke/bomb.js", headers={"x-vortex-memory-mb": "32", "x-vortex-timeout-ms": "10000"}
    )
    assert response.status_code in (507, 500), response.text
    body = response.json()
    if response.status_code == 500:
        # V8 may refuse one oversized allocation with a RangeError before the heap limit trips.
        assert body["error"]["name"] == "RangeError"
    else:
        assert body["error"]["type"] == "MemoryLimitExceeded"
    await _still_serves(client, "echo.js")


async def test_memory_limit_marks_isolate_for_recycling(isolate_of) -> None:  # type: ignore[no-untyped-def]
    isolate = await isolate_of(
        "const a = []; while (true) a.push(new Array(1e5).fill(1));", memory_mb=32
    )
    with pytest.raises(MemoryLimitExceeded):
        await isolate.invoke("null", context(), 10)
    assert isolate.broken == "memory"


async def test_deep_recursion_is_a_range_error(run_js: RunJS) -> None:
    with pytest.raises(FunctionError) as info:
        await run_js("function f(n) { return f(n + 1) + 1 } return f(0);")
    assert info.value.name == "RangeError"


async def test_huge_output_is_refused(run_js: RunJS) -> None:
    with pytest.raises(OutputTooLarge):
        await run_js("return 'x'.repeat(2e6);", max_output_bytes=1024 * 1024)


async def test_unserialisable_output_is_an_error(run_js: RunJS) -> None:
    with pytest.raises(FunctionError, match="JSON"):
        await run_js("const o = {}; o.o = o; return o;")
    with pytest.raises(FunctionError, match="JSON"):
        await run_js("return 10n;")


HOST_GLOBALS = [
    "require",
    "process",
    "Deno",
    "Bun",
    "module",
    "exports",
    "__dirname",
    "WebSocket",
    "XMLHttpRequest",
    "EventSource",
    "importScripts",
    "Buffer",
    "global",
    "window",
    "self",
    "navigator",
    "document",
    "location",
    "performance.now",
    "os",
    "fs",
    "child_process",
    "__vortex_install",
    "__vortex_set_handler",
    "__timer_manager",
]


async def test_no_host_globals(run_js: RunJS) -> None:
    output, _ = await run_js(
        f"const names = {json.dumps(HOST_GLOBALS)};"
        "const found = {};"
        "for (const n of names) { try { found[n] = typeof eval(n) } catch (e) { found[n] = 'undefined' } }"
        "return found;"
    )
    exposed = {k: v for k, v in output.items() if v != "undefined" and k != "__timer_manager"}
    assert (
        exposed == {"__vortex_install": "function", "__vortex_set_handler": "function"}
        or not exposed
    )


@pytest.mark.parametrize(
    "attempt",
    [
        "return this.constructor.constructor('return typeof process')()",
        "return Function('return typeof require')()",
        "return [].constructor.constructor('return typeof Deno')()",
        "return Object.getPrototypeOf(async function(){}).constructor('return typeof XMLHttpRequest')().then(x => x)",
        "try { await import('fs'); return 'imported' } catch (e) { return 'undefined' }",
        "try { return typeof WebAssembly.Module.customSections } catch (e) { return 'undefined' }",
    ],
)
async def test_escape_attempts_find_nothing(run_js: RunJS, attempt: str) -> None:
    output, _ = await run_js(attempt)
    assert output in ("undefined", "function")  # WebAssembly is part of the isolate, not the host
    if "WebAssembly" not in attempt:
        assert output == "undefined"


async def test_driver_cannot_be_hijacked(run_js: RunJS) -> None:
    # Replacing the globals the driver uses changes nothing about how results are reported.
    output, logs = await run_js(
        "JSON.stringify = () => 'hacked'; JSON.parse = () => 'hacked';"
        "Promise.prototype.then = function () { throw new Error('hacked') };"
        "Array.prototype.push = function () { throw new Error('hacked') };"
        "Date.prototype.toISOString = () => 'hacked';"
        "console.log('still logged'); return {ok: true};"
    )
    assert output == {"ok": True}
    assert logs[0]["message"] == "still logged"
    assert logs[0]["timestamp"] != "hacked"


async def test_prototype_pollution_stays_inside_its_function(store) -> None:  # type: ignore[no-untyped-def]
    client = await store(
        "polluter.js",
        "Object.prototype.isAdmin = true; Array.prototype.map = () => 'hacked';"
        "String.prototype.toUpperCase = () => 'hacked'; return ({}).isAdmin;",
    )
    (store_path := None)  # noqa: F841 - the store fixture owns the directory
    polluted = await client.post("/invoke/polluter.js")
    assert polluted.json()["output"] is True
    victim_code = "return [({}).isAdmin === undefined, [1].map(x => x + 1), 'a'.toUpperCase()];"
    client2 = await store("victim.js", victim_code)
    response = await client2.post("/invoke/victim.js")
    assert response.json()["output"] == [True, [2], "A"]
    # and the polluter's own runtime still serves others
    await _still_serves(client, "echo.js")


async def test_state_never_leaks_between_functions(store) -> None:  # type: ignore[no-untyped-def]
    client = await store(
        "writer.js", "globalThis.secret = 'token-123'; var leaked = 'v'; return 1;"
    )
    reader = "return [typeof globalThis.secret, typeof leaked];"
    (await client.post("/invoke/writer.js")).raise_for_status()
    client2 = await store("reader.js", reader)
    assert (await client2.post("/invoke/reader.js")).json()["output"] == ["undefined", "undefined"]


async def test_what_persists_within_one_function(isolate_of) -> None:  # type: ignore[no-untyped-def]
    isolate = await isolate_of("globalThis.n = (globalThis.n || 0) + 1; return n;")
    outputs = [(await isolate.invoke("null", context(), 1)).output_json for _ in range(3)]
    assert outputs == ["1", "2", "3"]  # the documented warm-isolate behaviour


async def test_concurrent_neighbour_unaffected_by_runaway(store) -> None:  # type: ignore[no-untyped-def]
    client = await store("spin.js", "while (true) {}")
    slow = asyncio.ensure_future(
        client.post("/invoke/spin.js", headers={"x-vortex-timeout-ms": "1000"})
    )
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await _still_serves(client, "echo.js")
    assert time.monotonic() - started < 0.5
    assert (await slow).status_code == 504


# ------------------------------------------------------------------ after the invocation
# Work a function leaves behind must never run once its invocation has ended: the idle isolate
# would spin, unbilled, and the next call of the function would wait behind it.
SPIN = "() => { while (true) {} }"
WAIT_ASYNC = "Atomics.waitAsync(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20).value"
EMPTY_WASM = "new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])"


@pytest.mark.parametrize(
    "code",
    [
        f"{WAIT_ASYNC}.then({SPIN}); return 1",
        f"Promise.resolve().then(() => {WAIT_ASYNC}).then({SPIN}); return 1",
        f"try {{ __timer_manager.setTimeout({SPIN}, 20) }} catch (e) {{}} return 1",
        f"try {{ new __TimerManager().setTimeout({SPIN}, 20) }} catch (e) {{}} return 1",
        f"WebAssembly.compile({EMPTY_WASM}).then(() => {WAIT_ASYNC}).then({SPIN}); return 1",
        f"WebAssembly.instantiate({EMPTY_WASM}).then(() => {WAIT_ASYNC}).then({SPIN}); return 1",
        f"setTimeout({SPIN}, 20); return 1",
        f"setInterval({SPIN}, 20); return 1",
        f"Promise.resolve().then(() => setTimeout({SPIN}, 20)); return 1",
        f"(async () => {{ await new Promise((r) => setTimeout(r, 5)); ({SPIN})(); }})(); return 1",
        f"const r = new FinalizationRegistry({SPIN});"
        " for (let i = 0; i < 1e4; i++) r.register({}, i);"
        " for (let i = 0; i < 2e5; i++) new Array(50); return 1",
        f"await null; {WAIT_ASYNC}.then({SPIN}); return 1",
    ],
    ids=[
        "wait-async",
        "wait-async-in-a-later-microtask",
        "host-timer-manager",
        "host-timer-class",
        "wasm-compile",
        "wasm-instantiate",
        "set-timeout",
        "set-interval",
        "timer-from-a-later-microtask",
        "detached-async-function",
        "finalization-registry",
        "wait-async-after-await",
    ],
)
async def test_nothing_runs_after_the_invocation_ends(isolate_of, code: str) -> None:  # type: ignore[no-untyped-def]
    isolate = await isolate_of(code)
    for _ in range(2):
        outcome = await isolate.invoke("null", context(), 2)
        assert outcome.output_json == "1"
        await asyncio.sleep(0.1)  # past every delay the code asked for
        started = time.monotonic()
        assert await isolate.probe(0.5), "the idle isolate is running the function's leftovers"
        assert time.monotonic() - started < 0.2
    assert isolate.broken is None


async def test_host_hooks_are_out_of_reach(run_js: RunJS) -> None:
    output, _ = await run_js(
        "return [typeof __timer_manager, typeof __TimerManager, typeof gc,"
        " typeof getV8Statistics, typeof __vortex_probe]"
    )
    assert output[:4] == ["undefined"] * 4
    with pytest.raises(FunctionError, match="runtime's own hook"):
        await run_js("return __vortex_probe('x')")


async def test_gated_promises_still_work_within_the_invocation(run_js: RunJS) -> None:
    output, _ = await run_js(
        f"const r = await {WAIT_ASYNC};"
        f" const m = await WebAssembly.compile({EMPTY_WASM});"
        f" const {{ instance }} = await WebAssembly.instantiate({EMPTY_WASM});"
        " await new Promise((done) => setTimeout(done, 5));"
        " return [r, m instanceof WebAssembly.Module, instance instanceof WebAssembly.Instance]"
    )
    assert output == ["timed-out", True, True]


async def test_module_top_level_may_await_webassembly(run_js: RunJS) -> None:
    output, _ = await run_js(
        f"const {{ instance }} = await WebAssembly.instantiate({EMPTY_WASM});"
        " export default () => typeof instance.exports"
    )
    assert output == "object"


async def test_an_idle_isolate_found_busy_is_recycled_and_counted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The backstop, for leftovers no gate knows: work started in an idle isolate (here by the
    test itself, on the isolate's thread) is found by the prober, which never blocks the loop;
    the isolate is closed, counted, and the function and its neighbours keep serving."""
    from vortex_runtime import metrics, watchdog
    from vortex_runtime.loader import StoreLoader
    from vortex_runtime.server import create_app
    from vortex_runtime.service import ManyFunctionService
    from vortex_runtime.settings import RuntimeSettings

    (tmp_path / "victim.js").write_text("return 'victim'")
    (tmp_path / "echo.js").write_text("return event;")
    settings = RuntimeSettings(store_dir=tmp_path, probe_interval_ms=100, probe_timeout_ms=100)
    service = ManyFunctionService(settings, StoreLoader(tmp_path))
    await service.start()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(service)), base_url="http://runtime"
    )
    try:
        await _busy_isolate_is_recycled(client, service, metrics)
    finally:
        await client.aclose()
        service.close()
        assert await asyncio.to_thread(watchdog.wait_idle, 10)


async def _busy_isolate_is_recycled(client, service, metrics) -> None:  # type: ignore[no-untyped-def]
    assert (await client.post("/invoke/victim.js")).json()["output"] == "victim"
    (pool,) = [p for p in service._registry.pools if p.name == "victim.js"]
    (isolate,) = pool._idle
    before = metrics.RECYCLES.labels(reason="busy")._value.get()
    spin = asyncio.ensure_future(isolate._mr.eval_cancelable("while (true) {}"))
    try:
        for _ in range(50):  # the loop keeps turning: metrics and neighbours answer meanwhile
            started = time.monotonic()
            assert (await client.get("/metrics")).status_code == 200
            await _still_serves(client, "echo.js")
            assert time.monotonic() - started < 0.1
            if isolate.broken:
                break
            await asyncio.sleep(0.02)
        assert isolate.broken == "busy"
        assert metrics.RECYCLES.labels(reason="busy")._value.get() == before + 1
        assert isolate not in pool._idle
        assert (await client.post("/invoke/victim.js")).json()["output"] == "victim"
    finally:
        spin.cancel()


# ------------------------------------------------------------------ memory outside the heap
# The memory limit covers what lives outside V8's heap too: ArrayBuffers, typed arrays,
# WebAssembly memory. Each of these would have returned 200 holding 4 to 16 times the limit.
WASM_OWN_MEMORY_1GIB = "new Uint8Array([0,97,115,109,1,0,0,0, 5,5,1,0,128,128,1])"  # 16384 pages


@pytest.mark.parametrize(
    "code",
    [
        "globalThis.keep = new ArrayBuffer(1 << 30); return 1",
        "try { globalThis.keep = new ArrayBuffer(1 << 30) } catch (e) {} return 1",
        "const k = []; for (let i = 0; i < 2048; i++) k.push(new ArrayBuffer(1 << 20));"
        " globalThis.keep = k; return 1",
        "globalThis.keep = new Float64Array(64e6); return 1",
        "globalThis.keep = Uint8Array.from({ length: 5e8 }); return 1",
        "globalThis.keep = new SharedArrayBuffer(1 << 30); return 1",
        "globalThis.keep = new ArrayBuffer(1, { maxByteLength: 1 << 30 }); return 1",
        "const a = new Uint8Array(100 << 20); globalThis.keep = [a, a.toReversed()]; return 1",
        "const a = new Uint8Array(50 << 20); a.constructor = undefined;"
        " globalThis.keep = [a, a.slice(), a.slice(), a.slice()]; return 1",
        "const a = new ArrayBuffer(50 << 20); a.constructor = undefined;"
        " globalThis.keep = [a, a.slice(0), a.slice(0)]; return 1",
        "const a = new Uint8Array(50 << 20); globalThis.keep = [a, a.map((x) => x), a.filter(() => true)];"
        " return 1",
        "globalThis.keep = new ArrayBuffer(8).transfer(1 << 30); return 1",
        "globalThis.keep = new WebAssembly.Memory({ initial: 16384 }); return 1",
        "const m = new WebAssembly.Memory({ initial: 1 }); m.grow(4000); globalThis.keep = m; return 1",
        f"globalThis.keep = new WebAssembly.Instance(new WebAssembly.Module({WASM_OWN_MEMORY_1GIB}));"
        " return 1",
        f"globalThis.keep = (await WebAssembly.instantiate({WASM_OWN_MEMORY_1GIB})).instance;"
        " return 1",
        "class Big extends ArrayBuffer {} globalThis.keep = new Big(1 << 30); return 1",
        "globalThis.keep = new (Object.getPrototypeOf(new Uint8Array(100)).constructor)(1 << 30);"
        " return 1",
        "globalThis.keep = Reflect.construct(Int32Array, [1 << 28]); return 1",
        "globalThis.keep = new Uint8Array({ valueOf: () => 1 } && (1 << 30)); return 1",
        "globalThis.keep = 'x'.repeat(2 ** 29 - 24).toUpperCase(); return 1",
    ],
    ids=[
        "array-buffer-1g",
        "array-buffer-1g-caught",
        "2g-of-1m-buffers",
        "float64array-512m",
        "typed-array-from",
        "shared-array-buffer",
        "resizable-buffer-maximum",
        "to-reversed-copy",
        "slice-with-species-removed",
        "buffer-slice-with-species-removed",
        "map-and-filter-copies",
        "transfer-to-larger",
        "wasm-memory-1g",
        "wasm-memory-grow",
        "wasm-module-own-memory",
        "wasm-instantiate-own-memory",
        "subclassed-buffer",
        "constructor-from-prototype",
        "reflect-construct",
        "typed-array-1g",
        "flat-512m-string",
    ],
)
async def test_memory_outside_the_heap_counts(isolate_of, code: str) -> None:  # type: ignore[no-untyped-def]
    isolate = await isolate_of(code, memory_mb=128, timeout_ms=10000)
    with pytest.raises(MemoryLimitExceeded):
        await isolate.invoke("null", context(), 10)
    # The memory never stays in an idle isolate: it is recycled, or serves on (demoted) only
    # once a collection has shown that what the function allocated is gone.
    if isolate.broken != "memory":
        assert isolate.broken is None
        assert isolate.demoted
        assert await isolate.probe(1.0)
        assert isolate.memory_bytes() <= (128 << 20) // 4


async def test_an_isolate_stopped_at_its_limit_serves_on_when_nothing_of_it_stays(
    isolate_of,
) -> None:  # type: ignore[no-untyped-def]
    """A bomb whose buffers are its own temporaries never got past its limit: no new isolate
    is needed for its next call (a churn of isolates would cost its neighbours CPU)."""
    isolate = await isolate_of(
        "globalThis.calls = (globalThis.calls || 0) + 1;"
        " if (event) { const k = []; for (let i = 0; i < 4096; i++) k.push(new ArrayBuffer(1 << 20)); }"
        " return globalThis.calls",
        memory_mb=64,
    )
    with pytest.raises(MemoryLimitExceeded):
        await isolate.invoke("true", context(), 10)
    assert isolate.broken is None
    assert isolate.demoted
    assert (await isolate.invoke("false", context(), 10)).output_json == "2"


async def test_an_isolate_stopped_at_its_limit_is_recycled_when_its_memory_stays(
    isolate_of,
) -> None:  # type: ignore[no-untyped-def]
    isolate = await isolate_of(
        "globalThis.k = []; for (let i = 0; i < 4096; i++) globalThis.k.push(new ArrayBuffer(1 << 20));",
        memory_mb=64,
    )
    with pytest.raises(MemoryLimitExceeded):
        await isolate.invoke("null", context(), 10)
    assert isolate.broken == "memory"


@pytest.mark.parametrize(
    "code",
    [
        # temporaries are credited back when V8 collects them
        "let n = 0; for (let i = 0; i < 400; i++) n += new Uint8Array(1 << 20).length; return n > 0",
        "const m = new WebAssembly.Memory({ initial: 1, maximum: 1000 }); m.grow(800);"
        " return m.buffer.byteLength === 801 * 65536",
        "return new TextEncoder().encode('héllo').length === 6",
        "return structuredClone(new Uint8Array(1 << 20)).length === 1 << 20",
        "globalThis.keep = new Uint8Array(100 << 20); return true",
        # a length is read once: the charge and the allocation see the same size
        "let n = 0; const b = new ArrayBuffer({ valueOf: () => (n++ ? 1 << 30 : 1) });"
        " return b.byteLength === 1 && n === 1",
    ],
    ids=[
        "temporaries",
        "wasm-within-limit",
        "text-encoder",
        "structured-clone",
        "100m-of-128m",
        "length-read-once",
    ],
)
async def test_memory_within_the_limit_is_fine(run_js: RunJS, code: str) -> None:
    output, _ = await run_js(code, memory_mb=128, timeout_ms=10000)
    assert output is True


async def test_the_budget_counts_memory_outside_the_heap(isolate_of) -> None:  # type: ignore[no-untyped-def]
    isolate = await isolate_of(
        "globalThis.keep = new Uint8Array(40 << 20); return 1", memory_mb=128
    )
    await isolate.invoke("null", context(), 2)
    assert await isolate.probe(1.0)
    assert isolate.outside_used >= 40 << 20
    assert isolate.memory_bytes() >= 40 << 20


async def test_memory_limit_failure_keeps_logs_and_neighbours_serve(store) -> None:  # type: ignore[no-untyped-def]
    client = await store(
        "buffers.js", "console.log('before'); globalThis.k = new ArrayBuffer(1 << 30); return 1"
    )
    response = await client.post("/invoke/buffers.js", headers={"x-vortex-memory-mb": "64"})
    assert response.status_code == 507
    body = response.json()
    assert body["error"]["type"] == "MemoryLimitExceeded"
    assert [entry["message"] for entry in body["logs"]] == ["before"]
    await _still_serves(client, "echo.js")


async def test_isolate_threads_yield_to_the_event_loop(isolate_of) -> None:  # type: ignore[no-untyped-def]
    """An isolate's thread runs at the priority of the thread that serves every function's
    HTTP (a lower one would make each answer a GIL ping-pong), with a longer slice, so that the
    server preempts JavaScript as soon as it wakes up."""
    import os
    import threading

    from vortex_runtime import sched
    from vortex_runtime.isolate import ISOLATE_NICE

    before = set(os.listdir("/proc/self/task"))
    isolate = await isolate_of("return 1")
    new = set(os.listdir("/proc/self/task")) - before
    assert new, "the isolate started no thread of its own"
    loop_priority = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert {os.getpriority(os.PRIO_PROCESS, int(tid)) for tid in new} == {ISOLATE_NICE}
    assert ISOLATE_NICE == loop_priority == 0
    slices = {sched.thread_slice_ns(tid) for tid in isolate._blank.threads}
    assert slices == {sched.SHORT_SLICE_NS}
    assert sched.LOOP_SLICE_NS < sched.SHORT_SLICE_NS


async def test_cpu_bound_invocation_drops_its_thread_to_the_lowest_priority(isolate_of) -> None:  # type: ignore[no-untyped-def]
    """An invocation that keeps a CPU busy yields the cores to its neighbours' short ones; an
    isolate that only does short work keeps its priority."""
    import os

    from vortex_runtime import sched
    from vortex_runtime.isolate import DEMOTED_NICE, ISOLATE_NICE

    code = "if (event) { const end = Date.now() + 150; while (Date.now() < end) {} } return 1"
    busy = await isolate_of(code)
    quick = await isolate_of(code)
    for _ in range(5):
        await quick.invoke("null", context(), 2)
    await busy.invoke("true", context(), 2)
    assert busy.demoted
    assert not quick.demoted

    def nice(isolate) -> set[int]:  # type: ignore[no-untyped-def]
        return {os.getpriority(os.PRIO_PROCESS, tid) for tid in isolate._blank.threads}

    assert nice(busy) == {DEMOTED_NICE}
    assert nice(quick) == {ISOLATE_NICE}
    # ... and the longest slice, so that the quick ones preempt it the moment they wake up
    slices = {sched.thread_slice_ns(tid) for tid in busy._blank.threads}
    assert slices == {sched.LONG_SLICE_NS}
    assert {sched.thread_slice_ns(tid) for tid in quick._blank.threads} == {sched.SHORT_SLICE_NS}
    assert (await busy.invoke("null", context(), 2)).output_json == "1"  # still serves
