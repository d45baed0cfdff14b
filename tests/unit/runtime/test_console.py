"""console.* is captured per invocation, formatted readably, and bounded."""

from __future__ import annotations

import re

from .conftest import RunJS


async def test_levels_and_iso_timestamps(run_js: RunJS) -> None:
    _, logs = await run_js(
        "console.log('a'); console.info('b'); console.warn('c'); console.error('d');"
        " console.debug('e');"
    )
    assert [(e["level"], e["message"]) for e in logs] == [
        ("log", "a"),
        ("info", "b"),
        ("warn", "c"),
        ("error", "d"),
        ("debug", "e"),
    ]
    for entry in logs:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["timestamp"])


async def test_arguments_joined_and_objects_rendered(run_js: RunJS) -> None:
    _, logs = await run_js(
        "const o = {a: 1, nested: {b: [1, 'x']}}; o.self = o;"
        "console.log('v', 1, true, null, undefined, o, [1, 2], new Map([[1, 2]]), new Set([3]),"
        " () => 1, 10n, Symbol('s'));"
    )
    message = logs[0]["message"]
    assert "[object Object]" not in message
    assert message.startswith(
        'v 1 true null undefined { a: 1, nested: { b: [ 1, "x" ] }, self: [Circular] }'
    )
    assert "[ 1, 2 ]" in message
    assert "Map(1) { 1 => 2 }" in message
    assert "Set(1) { 3 }" in message
    assert "[Function: (anonymous)]" in message
    assert "10n" in message
    assert "Symbol(s)" in message


async def test_error_objects_show_their_stack(run_js: RunJS) -> None:
    _, logs = await run_js("console.error(new RangeError('bad'));")
    assert logs[0]["message"].startswith("RangeError: bad")


async def test_log_flood_is_truncated_with_marker_not_an_error(run_js: RunJS) -> None:
    output, logs = await run_js(
        "for (let i = 0; i < 100000; i++) console.log('line', i); return 'done';",
        max_log_entries=50,
    )
    assert output == "done"
    assert len(logs) == 51
    assert "99950 more log entries dropped" in logs[-1]["message"]


async def test_huge_single_message_is_cut(run_js: RunJS) -> None:
    output, logs = await run_js("console.log('x'.repeat(1e6)); return 1", max_log_bytes=1000)
    assert output == 1
    assert logs[0]["message"].endswith("... [truncated]")
    assert len(logs[0]["message"]) < 1100


async def test_logs_do_not_leak_into_next_invocation(isolate_of) -> None:  # type: ignore[no-untyped-def]
    from .conftest import context

    isolate = await isolate_of(
        "setTimeout(() => console.log('late'), 50); console.log('now'); return 1", timeout_ms=1000
    )
    first = await isolate.invoke("null", context(), 1)
    second = await isolate.invoke("null", context(), 1)
    assert [e["message"] for e in first.logs] == ["now"]
    assert [e["message"] for e in second.logs] == ["now"]
