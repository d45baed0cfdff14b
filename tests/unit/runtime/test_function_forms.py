"""The two function forms, `event` and `context`, and compile-time checks."""

from __future__ import annotations

import pytest

import vortex_runtime
from vortex_runtime.errors import CompileError, FunctionError

from .conftest import RunJS, context


async def test_seed_form_returns_value_and_captures_log(run_js: RunJS) -> None:
    output, logs = await run_js('console.log("Hello Vortex!"); return 42;')
    assert output == 42
    assert [(e["level"], e["message"]) for e in logs] == [("log", "Hello Vortex!")]


async def test_top_level_await_in_body_form(run_js: RunJS) -> None:
    output, _ = await run_js("const v = await Promise.resolve(20); return v + 1;")
    assert output == 21


async def test_event_is_parsed_body_and_null_without_one(run_js: RunJS) -> None:
    assert (await run_js("return event.a + 1", event={"a": 1}))[0] == 2
    assert (await run_js("return event === null", event=None))[0] is True


async def test_context_carries_request_and_function(run_js: RunJS) -> None:
    ctx = context(method="PUT", path="/x", query={"q": "1"}, headers={"h": "v"}, functionName="fn")
    output, _ = await run_js(
        "return [context.method, context.path, context.query.q, context.headers.h,"
        " context.functionName, context.timeoutMs, typeof context.getRemainingTimeMillis()]",
        ctx=ctx,
        timeout_ms=1500,
    )
    assert output == ["PUT", "/x", "1", "v", "fn", 1000, "number"]


async def test_undefined_result_is_null(run_js: RunJS) -> None:
    assert (await run_js("let x = 1;"))[0] is None


async def test_handler_form_default_export(run_js: RunJS) -> None:
    code = """
const greeting = "hello";
export function helper(name) { return `${greeting} ${name}`; }
export default async function (event, context) {
  return { text: helper(event.name), fn: context.functionName };
}
"""
    output, _ = await run_js(code, event={"name": "ada"})
    assert output == {"text": "hello ada", "fn": "test"}


async def test_handler_form_sync_named_function(run_js: RunJS) -> None:
    output, _ = await run_js("export default function handler(event) { return event * 2 }", event=4)
    assert output == 8


async def test_handler_form_default_must_be_function(run_js: RunJS) -> None:
    with pytest.raises(FunctionError, match="default export must be a function"):
        await run_js("export default 42;")


async def test_thrown_error_has_name_message_and_user_line(run_js: RunJS) -> None:
    with pytest.raises(FunctionError) as info:
        await run_js("const a = 1;\nthrow new TypeError('boom');")
    assert info.value.name == "TypeError"
    assert info.value.message == "boom"
    assert "function.js:2" in info.value.stack


async def test_thrown_non_error_value(run_js: RunJS) -> None:
    with pytest.raises(FunctionError, match="Uncaught"):
        await run_js("throw {code: 7}")


async def test_rejected_promise_is_function_error(run_js: RunJS) -> None:
    with pytest.raises(FunctionError, match="late"):
        await run_js("await new Promise((_, rej) => setTimeout(() => rej(new Error('late')), 5));")


def test_check_accepts_both_forms() -> None:
    vortex_runtime.check("console.log(1); return 42;")
    vortex_runtime.check("export default async function (event) { return event }")


def test_check_reports_line_and_column() -> None:
    with pytest.raises(CompileError) as info:
        vortex_runtime.check("return 1;\n\nlet x = ;")
    assert (info.value.line, info.value.column) == (3, 9)
    assert "Unexpected token" in info.value.message


def test_check_rejects_wrapper_escape_without_running_it() -> None:
    # Closing the wrapper early would run code at compile time; the parser refuses it instead.
    with pytest.raises(CompileError):
        vortex_runtime.check("}); while (true) {} (function () {")


def test_check_does_not_run_module_top_level() -> None:
    vortex_runtime.check("while (true) {}\nexport default function () {}")


async def test_syntax_error_at_isolate_start_is_compile_error(run_js: RunJS) -> None:
    with pytest.raises(CompileError) as info:
        await run_js("let = ;")
    assert info.value.line == 1
