"""Tenant isolation inside the runtime.

Isolates belong to one function (its name and effective spec, not only its code); nothing of
one invocation is readable by the next; output, logs and errors are bounded in UTF-8 bytes as
they go on the wire; and a result or error that cannot be reported is a JSON 500, never a
plain-text one. After each attack a benign invocation on the same service still answers.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from vortex_api.functions import Function
from vortex_runtime.errors import (
    MAX_ERROR_MESSAGE_BYTES,
    MAX_ERROR_NAME_BYTES,
    MAX_ERROR_STACK_BYTES,
    TRUNCATED,
    FunctionError,
    MemoryLimitExceeded,
    OutputTooLarge,
)
from vortex_runtime.isolate import Isolate, Limits

from .conftest import RunJS, context

SECRET = "s3cr3t"
MAX_DEPTH = Limits().max_result_depth
Client = Callable[..., Awaitable[httpx.AsyncClient]]
IsolateOf = Callable[..., Awaitable[Isolate]]


def api_headers(name: str, env: dict[str, str] | None = None, **spec: int) -> dict[str, str]:
    """The identity headers the API's local backend sends with every invocation of `name`."""
    function = Function(
        function_id=name,
        timeout_ms=spec.get("timeout_ms", 2000),
        memory_mb=spec.get("memory_mb", 64),
        env=env or {},
    )
    return dict(function.prepare(send_env=True).runtime_headers)


def wire_bytes(text: str) -> int:
    """Bytes of `text` inside a JSON string sent as UTF-8 (escapes included)."""
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


@pytest.fixture
async def many(tmp_path: Path, client_for: Client) -> Client:
    """A many-function runtime serving the given files, next to an echo function."""
    (tmp_path / "echo.js").write_text("return event;")

    async def start(files: dict[str, str], **settings: Any) -> httpx.AsyncClient:
        for name, code in files.items():
            (tmp_path / name).write_text(code)
        return await client_for(store_dir=tmp_path, **settings)

    return start


async def still_serves(client: httpx.AsyncClient, key: str = "echo.js") -> None:
    response = await client.post(f"/invoke/{key}", json={"n": 1})
    assert response.status_code == 200, response.text
    assert response.json()["output"] == {"n": 1}


def json_500(response: httpx.Response) -> dict[str, Any]:
    """The body of a JSON 500 from the runtime (raises if it is plain text)."""
    assert response.status_code == 500, response.text[:500]
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = json.loads(response.content.decode("utf-8"))
    assert body["error"]["type"] == "FunctionError"
    return body


# --------------------------------------------------------------------------------------------
# 1. Isolates are per function, not per code


STASHER = """
globalThis.seen = globalThis.seen || [];
const before = globalThis.seen.slice();
globalThis.seen.push(context.functionName + "=" + (context.env.TOKEN || ""));
return { before, env: context.env, name: context.functionName };
"""


async def test_two_functions_with_the_same_code_never_share_an_isolate(many: Client) -> None:
    client = await many({"shared.js": STASHER})
    a = api_headers("tenant-a", {"TOKEN": f"{SECRET}-a"})
    b = api_headers("tenant-b", {"TOKEN": "b"})
    first = (await client.post("/invoke/shared.js", headers=a)).json()["output"]
    assert first == {"before": [], "env": {"TOKEN": f"{SECRET}-a"}, "name": "tenant-a"}
    other = (await client.post("/invoke/shared.js", headers=b)).json()["output"]
    assert other == {"before": [], "env": {"TOKEN": "b"}, "name": "tenant-b"}
    # Each function keeps its own warm isolate: A sees only what A left.
    again = (await client.post("/invoke/shared.js", headers=a)).json()["output"]
    assert again["before"] == [f"tenant-a={SECRET}-a"]
    await still_serves(client)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"env": {"TOKEN": "v1"}}, {"env": {"TOKEN": "v2"}}),
        ({"timeout_ms": 2000}, {"timeout_ms": 3000}),
        ({"memory_mb": 64}, {"memory_mb": 96}),
    ],
    ids=["env", "timeout", "memory"],
)
async def test_a_changed_spec_gets_fresh_isolates(
    many: Client, first: dict[str, Any], second: dict[str, Any]
) -> None:
    client = await many({"shared.js": STASHER})

    def headers(spec: dict[str, Any]) -> dict[str, str]:
        limits = {k: v for k, v in spec.items() if k != "env"}
        return api_headers("f", spec.get("env"), **limits)

    one = await client.post("/invoke/shared.js", headers=headers(first))
    assert one.json()["output"]["before"] == []
    two = await client.post("/invoke/shared.js", headers=headers(second))
    assert two.json()["output"]["before"] == []
    assert two.json()["output"]["env"] == second.get("env", {})


async def test_named_and_anonymous_callers_do_not_share(many: Client) -> None:
    client = await many({"shared.js": STASHER})
    await client.post("/invoke/shared.js", headers=api_headers("named", {"TOKEN": SECRET}))
    anonymous = (await client.post("/invoke/shared.js")).json()["output"]
    assert anonymous["before"] == []
    assert anonymous["env"] == {}


async def test_warm_prepares_the_isolate_its_function_will_use(many: Client) -> None:
    client = await many({"shared.js": STASHER})
    headers = api_headers("warmed", {"TOKEN": "t"})
    assert (await client.post("/warm/shared.js", headers=headers)).json() == {
        "warm": True,
        "started": True,
    }
    response = await client.post("/invoke/shared.js", headers=headers)
    assert "x-vortex-cold-start" not in response.headers
    # Another function with the same code is not served by the warmed isolate.
    other = await client.post("/invoke/shared.js", headers=api_headers("cold", {"TOKEN": "u"}))
    assert other.headers["x-vortex-cold-start"] == "1"
    assert other.json()["output"]["before"] == []


# --------------------------------------------------------------------------------------------
# 2. Nothing of one invocation is readable by the next

SEARCH = r"""
const SECRET = "s3cr3t";
if (event.phase === 1) {
  if (globalThis.searching) { globalThis.caught.push(JSON.stringify([event, context])); return "re-entered"; }
  // What ordinary code does with its input: a regular expression over it.
  /^(s3cr3t-[a-z0-9]+)$/.exec(event.secret);
  String(event.secret).match(/s3cr3t/);
  return "stored nothing";
}
globalThis.searching = true;
globalThis.caught = [];
const found = [];
const seen = new Set();
function bytesText(v) {
  const b = v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  let t = "";
  for (let i = 0; i < b.length; i++) t += String.fromCharCode(b[i]);
  return t;
}
function look(where, v, depth) {
  try {
    if (typeof v === "string") { if (v.includes(SECRET)) found.push(where); return; }
    if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) { if (bytesText(v).includes(SECRET)) found.push(where); return; }
    if (v === null || (typeof v !== "object" && typeof v !== "function") || seen.has(v) || depth > 4) return;
    seen.add(v);
    for (const k of Reflect.ownKeys(v)) {
      let x;
      try { x = v[k]; } catch (e) { continue; }
      look(where + "." + String(k), x, depth + 1);
    }
  } catch (e) {}
}
look("globalThis", globalThis, 0);
for (const name of ["io", "ioBytes", "ioView", "__vortex_io", "current", "ready", "handler", "inv"]) {
  let v;
  try { v = (0, eval)(name); } catch (e) { continue; }
  look(name, v, 0);
  if (typeof v === "function") { try { look(name + "()", v(), 0); } catch (e) { look(name + " threw", String(e), 0); } }
}
for (const k of ["input", "$_", "lastMatch", "$&", "lastParen", "$+", "leftContext", "rightContext", "$1", "$2"]) {
  look("RegExp." + k, RegExp[k], 0);
}
if (event.active) {
  for (const name of Object.getOwnPropertyNames(globalThis).filter((n) => n.startsWith("__vortex"))) {
    for (const args of [[], ["x"], [1, "{}", "{}", "00".repeat(32)]]) {
      try { look(name + "()", globalThis[name](...args), 0); } catch (e) { look(name + " threw", String(e), 0); }
    }
  }
}
look("re-entry", globalThis.caught, 0);
globalThis.searching = false;
return found;
"""


@pytest.mark.parametrize(
    "second_event",
    [{"phase": 2}, {"phase": 2, "pad": "é"}, {"phase": 2, "pad": "x" * 70_000}],
    ids=["through-buffer", "non-ascii", "large"],
)
async def test_previous_event_context_and_env_are_found_nowhere(
    isolate_of: IsolateOf, second_event: dict[str, Any]
) -> None:
    isolate = await isolate_of(SEARCH)
    secret_event = {"phase": 1, "secret": f"{SECRET}-event", "padding": "p" * 2000}
    secret_context = context(
        env={"TOKEN": f"{SECRET}-env"}, headers={"authorization": f"Bearer {SECRET}-header"}
    )
    first = await isolate.invoke(json.dumps(secret_event), secret_context, 2)
    assert json.loads(first.output_json) == "stored nothing"
    second = await isolate.invoke(json.dumps(second_event), context(), 2)
    assert json.loads(second.output_json) == []


async def test_driver_hooks_neither_rerun_nor_reveal_an_invocation(isolate_of: IsolateOf) -> None:
    isolate = await isolate_of(SEARCH)
    secret_event = {"phase": 1, "secret": f"{SECRET}-event"}
    await isolate.invoke(json.dumps(secret_event), context(env={"TOKEN": f"{SECRET}-env"}), 2)
    # Non-ASCII, so that this invocation does not overwrite the I/O buffer.
    second = await isolate.invoke(json.dumps({"phase": 2, "active": True, "é": 1}), context(), 2)
    assert json.loads(second.output_json) == []
    assert isolate.broken is None
    third = await isolate.invoke(json.dumps({"phase": 1, "secret": "x"}), context(), 2)
    assert json.loads(third.output_json) == "stored nothing"


@pytest.mark.parametrize(
    "form",
    ["body", "handler"],
)
async def test_stack_frames_do_not_expose_the_host_scripts(
    isolate_of: IsolateOf, form: str
) -> None:
    # The host's scripts carry the token: no frame may hand back their function or source.
    probe = """
      const seen = [];
      Error.prepareStackTrace = (e, frames) => frames.map((f) => {
        let fn, self;
        try { fn = f.getFunction(); self = f.getThis(); } catch (e) { return null; }
        return [fn === undefined ? null : String(fn), self === undefined ? null : String(self)];
      });
      const frames = new Error().stack;
      Error.prepareStackTrace = undefined;
      let caller = null;
      try { caller = String(probe.caller); } catch (e) {}
      return JSON.stringify([frames, caller]);
    """
    if form == "body":
        code = f"function probe() {{ {probe} }} return probe();"
    else:
        code = f"function probe() {{ {probe} }} export default () => probe();"
    isolate = await isolate_of(code)
    outcome = await isolate.invoke("null", context(), 2)
    text = json.loads(outcome.output_json)
    assert "__vortex" not in text
    assert isolate._token not in text


async def test_io_buffer_is_cleared_once_read(isolate_of: IsolateOf) -> None:
    isolate = await isolate_of("return event.n;")
    outcome = await isolate.invoke(json.dumps({"n": 7, "secret": SECRET}), context(), 2)
    assert outcome.output_json == "7"
    assert isolate._io is not None
    assert not any(isolate._io), "the I/O buffer still holds the last invocation"


async def test_replaced_intrinsics_never_see_the_io_buffer(isolate_of: IsolateOf) -> None:
    # Hooks on the methods the driver might call with the buffer: each records what it got.
    code = r"""
    if (event.install) {
      globalThis.got = [];
      const TA = Object.getPrototypeOf(Uint8Array.prototype);
      for (const name of ["subarray", "slice", "fill", "set", "at"]) {
        const real = TA[name];
        TA[name] = function (...a) { globalThis.got.push(name + ":" + this.byteLength); return real.apply(this, a); };
      }
      for (const name of ["getUint32", "getUint8"]) {
        const real = DataView.prototype[name];
        DataView.prototype[name] = function (...a) { globalThis.got.push(name); return real.apply(this, a); };
      }
      for (const name of ["slice", "split", "indexOf", "substring"]) {
        const real = String.prototype[name];
        String.prototype[name] = function (...a) { if (String(this).includes("s3cr3t")) globalThis.got.push("string:" + name); return real.apply(this, a); };
      }
      globalThis.parseInt = (...a) => { globalThis.got.push("parseInt"); return 0; };
      Object.defineProperty(Uint8Array.prototype, "constructor", { get() { globalThis.got.push("species"); return Uint8Array; } });
      return "installed";
    }
    return globalThis.got.splice(0);
    """
    isolate = await isolate_of(code)
    await isolate.invoke('{"install": true}', context(), 2)
    with_secret = await isolate.invoke(
        json.dumps({"secret": SECRET}), context(env={"K": SECRET}), 2
    )
    assert json.loads(with_secret.output_json) == []
    after = await isolate.invoke("{}", context(), 2)
    assert json.loads(after.output_json) == []


# --------------------------------------------------------------------------------------------
# 3. Size limits count UTF-8 bytes


@pytest.mark.parametrize(
    "code",
    ["return 'é'.repeat(600000);", "return '😀'.repeat(300000);", "return ['€'.repeat(400000)];"],
    ids=["two-byte", "four-byte-emoji", "three-byte-in-array"],
)
async def test_output_over_the_limit_in_utf8_bytes_is_refused(run_js: RunJS, code: str) -> None:
    with pytest.raises(OutputTooLarge, match="bytes"):
        await run_js(code, max_output_bytes=1024 * 1024)


async def test_output_goes_on_the_wire_as_utf8(many: Client) -> None:
    client = await many({"big.js": "return 'é'.repeat(400000);"})
    response = await client.post("/invoke/big.js")
    assert response.status_code == 200
    assert response.json()["output"] == "é" * 400_000
    assert len(response.content) < 800_000 + 2_000  # 2 bytes a character, not \u00e9
    await still_serves(client)


async def test_output_just_under_the_limit_passes(run_js: RunJS) -> None:
    # 349,525 two-byte characters and the quotes: 699,052 bytes, under a 699,052-byte limit.
    output, _ = await run_js("return 'é'.repeat(349525);", max_output_bytes=699_052)
    assert output == "é" * 349_525
    with pytest.raises(OutputTooLarge):
        await run_js("return 'é'.repeat(349525);", max_output_bytes=699_051)


@pytest.mark.parametrize(
    "code",
    [
        "console.log('é'.repeat(300000)); return 1",
        "for (let i = 0; i < 100; i++) console.log('😀'.repeat(2000)); return 1",
        "console.log('\\u0001'.repeat(100000)); return 1",  # six bytes each as \\u0001
    ],
    ids=["one-big-entry", "many-entries", "control-characters"],
)
async def test_logs_are_bounded_in_wire_bytes(run_js: RunJS, code: str) -> None:
    limit = 256 * 1024
    output, logs = await run_js(code, max_log_bytes=limit)
    assert output == 1
    messages = [e["message"] for e in logs if "log entries dropped" not in e["message"]]
    assert sum(wire_bytes(m) for m in messages) <= limit
    assert messages
    assert any(m.endswith(TRUNCATED) for m in messages) or len(messages) < 100


async def test_error_message_stack_and_name_are_bounded(run_js: RunJS) -> None:
    code = "const e = new Error('é'.repeat(1e6)); e.name = 'N'.repeat(1e5); throw e;"
    with pytest.raises(FunctionError) as info:
        await run_js(code)
    error = info.value
    assert wire_bytes(error.message) <= MAX_ERROR_MESSAGE_BYTES
    assert error.message.endswith(TRUNCATED)
    assert wire_bytes(error.stack) <= MAX_ERROR_STACK_BYTES
    assert error.stack.endswith(TRUNCATED)
    assert wire_bytes(error.name) <= MAX_ERROR_NAME_BYTES


async def test_a_forty_megabyte_error_is_a_small_body(many: Client) -> None:
    client = await many({"huge.js": "throw new Error('x'.repeat(40e6));"})
    response = await client.post("/invoke/huge.js", headers={"x-vortex-memory-mb": "512"})
    body = json_500(response)
    assert len(response.content) < MAX_ERROR_MESSAGE_BYTES + MAX_ERROR_STACK_BYTES + 4096
    assert body["error"]["message"].endswith(TRUNCATED)
    await still_serves(client)


async def test_a_huge_error_at_load_time_is_bounded(run_js: RunJS) -> None:
    with pytest.raises(FunctionError) as info:
        await run_js("export default () => 1;\nthrow new Error('y'.repeat(1e6));")
    assert wire_bytes(info.value.message) <= MAX_ERROR_MESSAGE_BYTES
    assert wire_bytes(info.value.stack) <= MAX_ERROR_STACK_BYTES


# --------------------------------------------------------------------------------------------
# 4. The heap limit keeps the logs written before it


@pytest.mark.parametrize(
    "bomb",
    [
        "const a = []; while (true) a.push(new Array(1e5).fill(1));",
        "await null; globalThis.keep = []; while (true) globalThis.keep.push(new Array(1e5).fill(1));",
        "await new Promise((r) => setTimeout(r, 20)); const a = []; while (true) a.push(new Array(1e5).fill(1));",
        "return {toJSON() { const a = []; while (true) a.push(new Array(1e5).fill(1)); }};",
    ],
    ids=["sync", "after-await-retained", "in-a-timer", "while-serialising"],
)
async def test_memory_limit_keeps_earlier_logs(isolate_of: IsolateOf, bomb: str) -> None:
    isolate = await isolate_of(f"console.log('before the bomb'); {bomb}", memory_mb=32)
    with pytest.raises(MemoryLimitExceeded) as info:
        await isolate.invoke("null", context(), 10)
    assert [e["message"] for e in info.value.logs] == ["before the bomb"]
    assert isolate.broken == "memory"


async def test_memory_limit_over_http_keeps_logs(many: Client) -> None:
    client = await many(
        {
            "bomb.js": "console.warn('starting'); const a = []; while (true) a.push(new Array(1e5).fill(1));"
        }
    )
    response = await client.post("/invoke/bomb.js", headers={"x-vortex-memory-mb": "32"})
    assert response.status_code == 507
    assert [e["message"] for e in response.json()["logs"]] == ["starting"]
    await still_serves(client)


# --------------------------------------------------------------------------------------------
# 5. Results that cannot be reported are a JSON 500, and the isolate goes on

UNREPORTABLE = {
    "deep-5000": "let a = []; const top = a; for (let i = 0; i < 5000; i++) { const b = []; a.push(b); a = b; } return top;",
    "deep-objects": "let o = {}; const top = o; for (let i = 0; i < 3000; i++) { o.k = {}; o = o.k; } return top;",
    "bigint": "return {n: 10n};",
    "cyclic": "const o = {}; o.self = o; return o;",
    "throwing-tojson": "return {toJSON() { throw new Error('no'); }};",
    "proxy": "return new Proxy({}, {ownKeys() { throw new Error('trap'); }, get(t, k) { if (k === 'then') return undefined; throw new Error('trap'); }});",
    "throwing-getter": "return {get x() { throw {toString() { throw 1; }}; }};",
}


@pytest.mark.parametrize("code", list(UNREPORTABLE.values()), ids=list(UNREPORTABLE))
async def test_an_unreportable_result_is_a_json_500_and_the_isolate_goes_on(
    many: Client, code: str
) -> None:
    client = await many({"bad.js": f"if (event && event.benign) return 'fine'; {code}"})
    body = json_500(await client.post("/invoke/bad.js"))
    assert body["error"]["name"] == "TypeError"
    assert body["error"]["message"].startswith("The function's result is not JSON-serialisable")
    again = await client.post("/invoke/bad.js", json={"benign": True})
    assert again.status_code == 200
    assert again.json()["output"] == "fine"
    assert "x-vortex-cold-start" not in again.headers  # the same isolate, still healthy
    await still_serves(client)


async def test_deep_result_names_the_depth_limit(run_js: RunJS) -> None:
    with pytest.raises(FunctionError, match=f"more than {MAX_DEPTH} levels"):
        await run_js(UNREPORTABLE["deep-5000"])


async def test_a_result_at_the_depth_limit_passes(many: Client) -> None:
    nest = f"let a = []; const top = a; for (let i = 1; i < {MAX_DEPTH}; i++) {{ const b = ['[{{\\\"]']; a.push(b); a = b; }} return top;"
    client = await many({"deep.js": nest})
    response = await client.post("/invoke/deep.js")
    assert response.status_code == 200, response.text[:300]
    depth, value = 0, response.json()["output"]
    while isinstance(value, list):
        depth += 1
        value = value[-1] if value else None
    assert depth == MAX_DEPTH


async def test_polluted_tojson_then_throw_is_a_json_500(many: Client) -> None:
    code = (
        "if (event && event.benign) return 1;"
        "Object.prototype.toJSON = function () { throw new Error('polluted'); };"
        "Array.prototype.toJSON = function () { throw new Error('polluted'); };"
        "throw new Error('after pollution');"
    )
    client = await many({"polluter.js": code})
    body = json_500(await client.post("/invoke/polluter.js"))
    assert body["error"]["message"] == "after pollution"
    assert body["error"]["name"] == "Error"
    again = await client.post("/invoke/polluter.js", json={"benign": True})
    assert again.status_code == 200
    assert again.json()["output"] == 1
    await still_serves(client)


# --------------------------------------------------------------------------------------------
# More hostile results, errors and logs


async def test_lone_surrogates_in_logs_output_and_errors_stay_valid_utf8(many: Client) -> None:
    client = await many(
        {
            "lone.js": "console.log('a\\ud800b', '\\udfff'); if (event && event.fail) throw new Error('x\\udc00'); return 'o\\ud83d';"
        }
    )
    ok = await client.post("/invoke/lone.js")
    assert ok.status_code == 200
    body = json.loads(ok.content.decode("utf-8"))  # strict UTF-8
    assert body["logs"][0]["message"] == "a\ufffdb \ufffd"
    assert body["output"] == "o\ud83d"  # JSON escapes it, so the bytes stay valid UTF-8
    failed = await client.post("/invoke/lone.js", json={"fail": True})
    assert json_500(failed)["error"]["message"] == "x\ufffd"
    await still_serves(client)


@pytest.mark.parametrize(
    ("throw", "name", "message"),
    [
        (
            "const e = new TypeError('m'); e.message = {[Symbol.toPrimitive]() { throw new Error('trap'); }}; throw e;",
            "TypeError",
            "[the error's message could not be read]",
        ),
        (
            "const e = new RangeError('m'); Object.defineProperty(e, 'stack', {get() { throw new Error('no stack'); }}); throw e;",
            "RangeError",
            "m",
        ),
        (
            "throw new Proxy(new Error('p'), {get() { throw new Error('trap'); }, has() { throw new Error('trap'); }, getPrototypeOf() { throw new Error('trap'); }});",
            "Error",
            None,
        ),
        ("throw {toString() { throw 1; }, toJSON() { throw 2; }};", "Error", None),
        (
            "const e = new Error('n'); Object.defineProperty(e, 'name', {get() { throw e; }}); throw e;",
            "Error",
            "n",
        ),
        ("throw Symbol('s');", "Error", "Uncaught Symbol(s)"),
    ],
    ids=[
        "toPrimitive-message",
        "throwing-stack-getter",
        "proxy",
        "unprintable",
        "name-getter",
        "symbol",
    ],
)
async def test_hostile_errors_are_reported_and_the_isolate_survives(
    isolate_of: IsolateOf, throw: str, name: str, message: str | None
) -> None:
    isolate = await isolate_of(f"if (event) return 'ok'; {throw}")
    with pytest.raises(FunctionError) as info:
        await isolate.invoke("null", context(), 2)
    assert info.value.name == name
    if message is not None:
        assert info.value.message == message
    assert isolate.broken is None
    assert (await isolate.invoke("true", context(), 2)).output_json == '"ok"'


async def test_thenable_with_a_throwing_then_is_a_function_error(isolate_of: IsolateOf) -> None:
    isolate = await isolate_of(
        "if (event) return 'ok'; return {get then() { throw new Error('no then'); }};"
    )
    with pytest.raises(FunctionError, match="no then"):
        await isolate.invoke("null", context(), 2)
    assert isolate.broken is None
    assert (await isolate.invoke("true", context(), 2)).output_json == '"ok"'


async def test_replaced_json_and_string_intrinsics_do_not_bend_the_limits(run_js: RunJS) -> None:
    code = (
        "Object.defineProperty(JSON, 'stringify', {value: () => '1', writable: false});"
        "String.prototype.charCodeAt = () => 0x41;"
        "Object.defineProperty(Array.prototype, '0', {set(v) { globalThis.stolen = v; }, configurable: true});"
        "console.log('still logged');"
        "return 'é'.repeat(600000);"
    )
    with pytest.raises(OutputTooLarge) as info:
        await run_js(code, max_output_bytes=1024 * 1024)
    assert [e["message"] for e in info.value.logs] == ["still logged"]


async def test_a_tojson_that_returns_a_huge_string_is_too_large(run_js: RunJS) -> None:
    with pytest.raises(OutputTooLarge):
        await run_js("return {toJSON() { return '😀'.repeat(300000); }};")


async def test_a_proxy_result_that_answers_is_serialised(run_js: RunJS) -> None:
    output, _ = await run_js(
        "return new Proxy({}, {ownKeys: () => ['a'], getOwnPropertyDescriptor: () => ({value: 1, enumerable: true, configurable: true}), get: () => 1});"
    )
    assert output == {"a": 1}


async def test_env_of_one_function_is_never_read_back_by_another(many: Client) -> None:
    # A reads its env once and keeps it in a closure; B runs the same code with no env.
    code = (
        "globalThis.remember = globalThis.remember || ((env) => () => env)(context.env);"
        "return {mine: context.env, remembered: globalThis.remember()};"
    )
    client = await many({"env.js": code})
    a = await client.post("/invoke/env.js", headers=api_headers("a", {"API_KEY": SECRET}))
    assert a.json()["output"]["remembered"] == {"API_KEY": SECRET}
    b = await client.post("/invoke/env.js", headers=api_headers("b"))
    assert b.json()["output"] == {"mine": {}, "remembered": {}}
    assert SECRET not in b.text
