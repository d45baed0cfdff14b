"""Code-form detection and rewriting on hostile input: linear time, exact positions, modules.

`check` runs on every deploy in the API process, so the pathological inputs are checked in a
child process: a regression to super-linear time fails the test instead of stalling the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Awaitable, Callable

import pytest

import vortex_runtime
from vortex_runtime.errors import CompileError, FunctionError
from vortex_runtime.isolate import Isolate

from .conftest import RunJS, context

MIB = 1024 * 1024

# name -> (code, expected outcome: "ok" or a fragment of the CompileError's message)
PATHOLOGICAL: dict[str, tuple[str, str]] = {
    "blank lines": ("\n" * MIB, "ok"),
    "blank lines then a module": ("\n" * (MIB - 100) + "export default () => 1", "ok"),
    "spaces and newlines": (" \n" * (MIB // 2), "ok"),
    "crlf lines then a module": ("\r\n" * (MIB // 2 - 100) + "export default () => 1", "ok"),
    "line separators": ("\u2028" * (MIB // 3), "ok"),
    "export repeated": ("export " * (MIB // 7), "Unexpected token 'export'"),
    "export on every line": ("export\n" * (MIB // 7), "Unexpected token 'export'"),
    "export default on every line": ("export default 1;\n" * (MIB // 18), "Duplicate export"),
    "open braces": ("{" * MIB, "nested too deeply"),
    "one long line": ("x" * MIB, "ok"),
    "await repeated": ("await " * (MIB // 6), "nested too deeply"),
    "top-level await on every line": (
        "await 0;\n" * (MIB // 9 - 10) + "export default () => 1",
        "ok",
    ),
    "empty strings": ("''" * (MIB // 2 - 20) + "\nexport default 1", "Unexpected string"),
    "regex classes": ("(/[" * (MIB // 3 - 20) + "\nexport default 1", "regular expression"),
    "template substitutions": ("`${" * (MIB // 3 - 20) + "export", "nested too deeply"),
    "braces in a template": ("`${" + "{}" * (MIB // 2 - 10) + "export", "template"),
    "empty comments": ("/**/" * (MIB // 4 - 20) + "\nexport default 1", "ok"),
}

_CHILD = """
import json, os, sys, time
import vortex_runtime
cases = json.loads(sys.stdin.buffer.read().decode())
for name, code in cases.items():
    began = time.monotonic()
    try:
        vortex_runtime.check(code)
        outcome = "ok"
    except vortex_runtime.CompileError as exc:
        outcome = exc.message
    print(json.dumps([name, outcome, time.monotonic() - began]), flush=True)
os._exit(0)
"""


@pytest.fixture(scope="module")
def checked() -> dict[str, tuple[str, float]]:
    """Check every pathological case in one child; what it finished in 60 s, with its time."""
    cases = {name: code for name, (code, _) in PATHOLOGICAL.items()}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD],
            input=json.dumps(cases).encode(),
            capture_output=True,
            timeout=60,
            check=True,
        )
        out = done.stdout
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
    results: dict[str, tuple[str, float]] = {}
    for line in out.decode().splitlines():
        name, outcome, seconds = json.loads(line)
        results[name] = (outcome, seconds)
    return results


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_a_mebibyte_of_pathological_code_is_checked_in_linear_time(
    checked: dict[str, tuple[str, float]], name: str
) -> None:
    assert name in checked, f"checking {name!r} did not finish"
    outcome, seconds = checked[name]
    # Generous: it takes well under a second; the quadratic scan took about an hour.
    assert seconds < 5, f"{name!r} took {seconds:.1f} s"
    expected = PATHOLOGICAL[name][1]
    assert outcome == expected if expected == "ok" else expected in outcome, outcome


# ---------------------------------------------------------------------- exact positions
def _error(code: str) -> CompileError:
    with pytest.raises(CompileError) as info:
        vortex_runtime.check(code)
    return info.value


@pytest.mark.parametrize(
    ("code", "line", "column", "reason"),
    [
        # handler form: the error V8 reports before it reaches the sourceURL comment
        (
            "const a = 1;\nexport default function (e) { return (; }",
            2,
            39,
            "Unexpected token ';'",
        ),
        ("export default (a, a) => 1", 1, 20, "Duplicate parameter name"),
        (
            "\n\nexport default function (a, a) { 'use strict'; }",
            3,
            29,
            "Duplicate parameter name",
        ),
        # body form, strict mode
        ('"use strict";\nfunction f(a, a) {}\nreturn 1', 2, 15, "Duplicate parameter name"),
        ("(a, a) => 1", 1, 5, "Duplicate parameter name"),
        ("let x = 1;\nlet x = 2;", 2, 5, "Identifier 'x' has already been declared"),
        ("x\n  export { x }", 2, 3, "Unexpected token 'export'"),
        # the rewritten `export default` keeps every column of its line
        ("export default async (e) => { return e + ; }", 1, 42, "Unexpected token ';'"),
        ("export const a = 1; let b = ;\nexport default () => a;", 1, 29, "Unexpected token"),
        # lines as JavaScript counts them: CRLF is one break, U+2028 is one too
        ("export default () => 1;\r\n\r\nlet y = ;", 3, 9, "Unexpected token ';'"),
        ("x = 1;\u2028let y = ;", 2, 9, "Unexpected token ';'"),
        # a byte-order mark is not a column
        ("\ufefflet x = ;", 1, 9, "Unexpected token ';'"),
        # columns count UTF-16 units, as V8's stack traces and editors' LSP positions do
        ("const s = '\U0001f600'; let x = ;", 1, 25, "Unexpected token ';'"),
        # code that stops short: the end of the user's last line, not V8's wrapper
        ("export default function () {\n  return 1;", 2, 12, "Unexpected end of input"),
        ("return `abc ${", 1, 15, "Unexpected end of input"),
        ("let a = ;\nexport default 1;\nexport default 2;", 1, 9, "Unexpected token ';'"),
        ("export default 1;\nexport default 2;", 2, 1, "Duplicate export of 'default'"),
        ("\n" * 100_000 + "export default () => ;", 100_001, 22, "Unexpected token ';'"),
    ],
)
def test_compile_errors_name_the_exact_line_and_column(
    code: str, line: int, column: int, reason: str
) -> None:
    error = _error(code)
    assert (error.line, error.column) == (line, column), error.message
    assert reason in error.reason
    assert error.reason.startswith("SyntaxError: ")
    assert error.message.endswith(f"(line {line}, column {column})")


async def test_a_handler_form_error_at_isolate_start_is_exact(run_js: RunJS) -> None:
    with pytest.raises(CompileError) as info:
        await run_js("const a = 1;\n\nexport default (e) => { return e + ; };")
    assert (info.value.line, info.value.column) == (3, 36)


def test_deep_nesting_is_a_compile_error_that_says_so() -> None:
    error = _error("x = " + "[" * 200_000)
    assert error.line is None
    assert "nested too deeply" in error.reason


# ---------------------------------------------------------------------- top-level await
async def test_top_level_await_in_a_module(run_js: RunJS) -> None:
    code = (
        "const base = await Promise.resolve(40);\n"
        "const more = await (async () => 2)();\n"
        "export default (event) => base + more + event;"
    )
    vortex_runtime.check(code)
    assert (await run_js(code, event=0))[0] == 42
    assert (await run_js(code, event=1))[0] == 43


async def test_a_module_awaiting_inside_its_handler_only_stays_synchronous(
    run_js: RunJS,
) -> None:
    code = "export default async function (event) { return await Promise.resolve(event); }"
    assert (await run_js(code, event=5))[0] == 5


async def test_a_failing_top_level_await_fails_each_call(
    isolate_of: Callable[..., Awaitable[Isolate]],
) -> None:
    isolate = await isolate_of(
        "await Promise.reject(new RangeError('no config'));\nexport default () => 1;"
    )
    for _ in range(2):
        with pytest.raises(FunctionError) as info:
            await isolate.invoke("null", context(), 1.0)
        assert (info.value.name, info.value.message) == ("RangeError", "no config")


async def test_an_async_module_must_still_export_a_function(run_js: RunJS) -> None:
    with pytest.raises(FunctionError, match="default export must be a function"):
        await run_js("await 0;\nexport default 42;")


def test_top_level_await_with_a_syntax_error_names_it() -> None:
    error = _error("await 0;\nexport default () => {;")
    assert (error.line, error.reason) == (2, "SyntaxError: Unexpected end of input")
    error = _error("const v = await 1;\nfunction f() { await 2; }\nexport default f;")
    assert (error.line, error.column) == (2, 16)
    assert "await is only valid" in error.reason


# ---------------------------------------------------------------------- hostile forms
async def test_export_default_in_a_comment_is_not_a_module(run_js: RunJS) -> None:
    code = "/*\nexport default nothing\n*/\nreturn 'body';"
    assert not vortex_runtime.is_handler_form(code)
    assert (await run_js(code))[0] == "body"


async def test_export_default_in_strings_templates_and_regexes_is_left_alone(
    run_js: RunJS,
) -> None:
    code = (
        "const doc = `\nexport default ${'`'}\n`;\n"
        "const str = 'a\\\nexport default b';\n"
        "const re = /^export default$/m;\n"
        "// export default nope\n"
        "export default () => [doc, str, re.test('export default')];"
    )
    output, _ = await run_js(code)
    assert output == ["\nexport default `\n", "aexport default b", True]


@pytest.mark.parametrize(
    ("code", "output"),
    [
        ("const r = /'/; export default () => r.source;", "'"),
        ("// it's a comment\nexport default () => 1;", 1),
        ("const h = (4) / 2, s = '/'; export default () => h + s;", "2/"),
        (
            "const q = ['export default', \"x\"], d = 4 / 2; export default () => q[0] + d;",
            "export default2",
        ),
        ("const t = `${ { a: '}' }.a }`; export default () => t;", "}"),
        ("const n = 1 <!-- export default 2\nexport default () => n;", 1),
    ],
)
async def test_the_scanner_tells_code_from_literals(
    run_js: RunJS, code: str, output: object
) -> None:
    assert (await run_js(code))[0] == output


async def test_export_default_after_code_on_the_same_line(run_js: RunJS) -> None:
    assert (await run_js("const a = 2; export default (e) => a * e;", event=21))[0] == 42


async def test_export_default_after_a_line_separator(run_js: RunJS) -> None:
    assert (await run_js("const a = 7;\u2028export default () => a;"))[0] == 7


async def test_crlf_and_a_byte_order_mark(run_js: RunJS) -> None:
    code = (
        "\ufeffconst a = 1;\r\n"
        "export function b() { return 2; }\r\n"
        "export default () => a + b();\r\n"
    )
    assert (await run_js(code))[0] == 3


async def test_a_named_default_export_is_bound_in_the_module(run_js: RunJS) -> None:
    code = (
        "export default function handler(event) { return handler.tag + event; }\nhandler.tag = 1;"
    )
    assert (await run_js(code, event=1))[0] == 2


def test_export_default_inside_a_block_is_refused_where_it_stands() -> None:
    error = _error("if (true) {\n  export default () => 1;\n}")
    assert (error.line, error.column) == (2, 3)
    assert "Unexpected token 'export'" in error.reason


def test_names_that_contain_export_are_code() -> None:
    vortex_runtime.check("const o = { export: 1 }; const exported = o.export; return exported;")
    assert not vortex_runtime.is_handler_form("let exportdefault = 1; return exportdefault;")
