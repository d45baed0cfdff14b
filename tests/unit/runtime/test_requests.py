"""Hostile and malformed requests to the runtime's HTTP app: every one is answered with the
documented JSON error, none costs the function its warm isolate, and none leaves the
`vortex_runtime_inflight` gauge raised.

An event is RFC 8259 JSON text in UTF-8, nested at most `events.MAX_DEPTH` deep; anything else is
a 400 `InvalidJSON` decided before an isolate sees it (vortex_runtime/events.py).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from vortex_runtime import events, metrics, watchdog
from vortex_runtime.errors import InvalidJSON
from vortex_runtime.server import create_app
from vortex_runtime.service import ManyFunctionService, SingleFunctionService, build_service
from vortex_runtime.settings import RuntimeSettings

MIB = 1024 * 1024


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels or {}) or 0.0


def inflight() -> float:
    return _sample("vortex_runtime_inflight")


def cold_starts() -> float:
    return _sample("vortex_runtime_cold_starts_total")


def recycles() -> float:
    return sum(
        _sample("vortex_runtime_isolate_recycles_total", {"reason": reason})
        for reason in ("timeout", "memory", "terminated", "load")
    )


@dataclass
class Runtime:
    client: httpx.AsyncClient
    service: SingleFunctionService | ManyFunctionService
    app: Any


@pytest.fixture
async def make_runtime(tmp_path: Path) -> AsyncIterator[Any]:
    """A runtime app around `code` (single-function mode) with its service at hand.

    The client raises any exception that escapes the app, so a request path that fails to answer
    with JSON fails the test instead of turning into a plain-text 500."""
    made: list[Runtime] = []

    async def make(code: str = "return event;", **settings: Any) -> Runtime:
        path = tmp_path / f"f{len(made)}.js"
        path.write_text(code)
        service = build_service(RuntimeSettings(code_file=path, **settings))
        assert isinstance(service, SingleFunctionService)
        await service.start()
        for _ in range(300):
            if service.ready:
                break
            await asyncio.sleep(0.01)
        assert service.ready
        app = create_app(service)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rt")
        runtime = Runtime(client, service, app)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        await runtime.client.aclose()
        runtime.service.close()
    assert await asyncio.to_thread(watchdog.wait_idle, 10)


@pytest.fixture
async def echo(make_runtime: Any) -> Runtime:
    runtime: Runtime = await make_runtime()
    # The first call may be the one that starts the pool's isolate; after it, every call is warm.
    assert (await runtime.client.post("/invoke", json=0)).status_code == 200
    return runtime


async def _assert_invalid_json(client: httpx.AsyncClient, body: bytes, why: str) -> None:
    before = inflight()
    response = await client.post(
        "/invoke", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "InvalidJSON"
    assert why.lower() in error["message"].lower(), error["message"]
    assert inflight() == before


async def _assert_still_warm(runtime: Runtime, cold_before: float, recycled_before: float) -> None:
    response = await runtime.client.post("/invoke", json={"n": 1})
    assert response.status_code == 200, response.text
    assert response.json()["output"] == {"n": 1}
    assert "x-vortex-cold-start" not in response.headers
    assert cold_starts() == cold_before
    assert recycles() == recycled_before
    assert runtime.service.isolates() == 1


# --------------------------------------------------------------- finding 1: bad JSON, warm isolate
@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"NaN", "NaN"),
        (b"Infinity", "Infinity"),
        (b"-Infinity", "Infinity"),
        (b'{"a": [1, NaN]}', "NaN"),
        (b'{"a": -Infinity}', "Infinity"),
        (b'\xef\xbb\xbf{"a": 1}', "byte order mark"),
        (b"\xef\xbb\xbf", "byte order mark"),
    ],
    ids=["nan", "infinity", "minus-infinity", "nested-nan", "nested-minus-inf", "bom", "only-bom"],
)
async def test_non_json_numbers_and_bom_are_400_and_keep_the_isolate(
    echo: Runtime, body: bytes, why: str
) -> None:
    cold, recycled = cold_starts(), recycles()
    await _assert_invalid_json(echo.client, body, why)
    await _assert_still_warm(echo, cold, recycled)


# ------------------------------------------------ finding 2: contract breaks, JSON, gauge restored
@pytest.mark.parametrize(
    ("body", "why"),
    [
        ('{"a": 1}'.encode("utf-16"), "UTF-16"),
        ('{"a": 1}'.encode("utf-16-le"), "UTF-8"),
        ('{"a": 1}'.encode("utf-16-be"), "UTF-8"),
        ('{"a": 1}'.encode("utf-32"), "UTF-32"),
        ('{"a": 1}'.encode("utf-32-le"), "UTF-8"),
        (b'"\xed\xa0\x80"', "UTF-8"),  # a surrogate encoded in UTF-8 (CESU), not UTF-8
        (b'["\xc3\x28"]', "UTF-8"),  # a lead byte followed by a non-continuation byte
        (b'"\x80"', "UTF-8"),  # a continuation byte on its own
        (b'"\xc0\xaf"', "UTF-8"),  # an overlong encoding of "/"
        (b"[" * 5000 + b"]" * 5000, "deeper than 512"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "deeper than 512"),
        (b"[" * 100_000, "deeper than 512"),
    ],
    ids=[
        "utf16-bom",
        "utf16-le",
        "utf16-be",
        "utf32-bom",
        "utf32-le",
        "cesu-surrogate",
        "bad-continuation",
        "lone-continuation",
        "overlong",
        "arrays-5000-deep",
        "objects-5000-deep",
        "unclosed-100k-deep",
    ],
)
async def test_wrong_encodings_and_deep_nesting_are_400_json(
    echo: Runtime, body: bytes, why: str
) -> None:
    cold, recycled = cold_starts(), recycles()
    await _assert_invalid_json(echo.client, body, why)
    await _assert_still_warm(echo, cold, recycled)


async def test_nesting_up_to_512_is_served_and_513_is_refused(echo: Runtime) -> None:
    deepest = b"[" * 512 + b"]" * 512
    response = await echo.client.post("/invoke", content=deepest)
    assert response.status_code == 200, response.text
    output: Any = response.json()["output"]
    for _ in range(511):
        output = output[0]
    assert output == []
    mixed = b'{"a":[' * 256 + b"]}" * 256  # 512 levels, objects and arrays
    assert (await echo.client.post("/invoke", content=mixed)).status_code == 200
    await _assert_invalid_json(echo.client, b"[" * 513 + b"]" * 513, "deeper than 512")
    # Brackets inside strings are text, not nesting.
    text = json.dumps(["[" * 600 + "{" * 600]).encode()
    response = await echo.client.post("/invoke", content=text)
    assert response.status_code == 200
    assert response.json()["output"] == ["[" * 600 + "{" * 600]
    escaped = json.dumps(['\\"' + "[" * 600, '"]]]', "\\"]).encode()
    assert (await echo.client.post("/invoke", content=escaped)).json()["output"] == json.loads(
        escaped
    )


async def test_unexpected_exception_in_invoke_is_json_500_and_the_gauge_falls(
    echo: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(key: str | None, request: Any) -> Any:
        raise RuntimeError("secret detail /etc/vortex")

    monkeypatch.setattr(echo.service, "invoke", broken)
    before = inflight()
    response = await echo.client.post("/invoke", json={"a": 1})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"]["type"] == "InternalError"
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert set(body) == {"error", "logs", "execution_time_ms"}
    assert inflight() == before
    assert _sample("vortex_runtime_invocations_total", {"outcome": "internal"}) >= 1


async def test_unexpected_exception_elsewhere_is_json_500(
    echo: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_args: Any) -> bytes:
        raise RuntimeError("secret detail")

    monkeypatch.setattr("vortex_runtime.server.generate_latest", boom)
    response = await echo.client.get("/metrics")
    assert response.status_code == 500
    error = response.json()["error"]
    assert response.json() == {"error": {"type": "InternalError", "message": error["message"]}}
    assert "secret" not in response.text

    monkeypatch.setattr("vortex_runtime.server._build_request", boom)
    response = await echo.client.post("/warm/anything")
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "InternalError"
    assert "secret" not in response.text


async def test_header_parsing_failures_leave_no_gauge_raised(echo: Runtime) -> None:
    before = inflight()
    deep_env = "[" * 5000 + "]" * 5000
    for headers in (
        {"x-vortex-env": deep_env},
        {"x-vortex-env": '{"A": NaN}'},
        {"x-vortex-timeout-ms": "9" * 5000},
    ):
        response = await echo.client.post("/invoke", headers=headers)
        assert response.status_code == 400, headers
        assert response.json()["error"]["type"] == "InvalidRequest"
    assert inflight() == before


async def test_client_disconnecting_mid_body_runs_nothing(make_runtime: Any) -> None:
    runtime: Runtime = await make_runtime(
        "globalThis.runs = (globalThis.runs || 0) + 1; return [runs, event];"
    )
    before = inflight()
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"12", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/invoke",
        "query_string": b"",
        "headers": [],
    }
    await runtime.app(scope, receive, send)
    assert inflight() == before
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"])["error"]["type"] == "InvalidRequest"
    # The truncated event "12" (of, say, "123") never ran: this is the function's first run.
    assert (await runtime.client.post("/invoke", content=b"3")).json()["output"] == [1, 3]


# --------------------------------------------------------------------- further hostile requests
@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"a": 1} x', "Extra data"),
        (b'{"a": 1}{"b": 2}', "Extra data"),
        (b"[1, 2,]", "Expecting value"),
        (b"{'a': 1}", "property name"),
        (b'"tab\there"', "control character"),
        (b'"\\x41"', "escape"),
        (b'"\\ud80"', "escape"),
        (b"01", "Extra data"),
        (b"+1", "Expecting value"),
        (b".5", "Expecting value"),
        (b"True", "Expecting value"),
        (b"\x0b", "Expecting value"),
        (b"\x00", "NUL"),
        (b'{"a": "\x00"}', "NUL"),
        (b"//comment\n1", "Expecting value"),
    ],
    ids=[
        "trailing-garbage",
        "two-documents",
        "trailing-comma",
        "single-quotes",
        "raw-tab-in-string",
        "bad-escape",
        "short-unicode-escape",
        "leading-zero",
        "plus-sign",
        "bare-fraction",
        "python-true",
        "vertical-tab-only",
        "nul-only",
        "nul-in-string",
        "comment",
    ],
)
async def test_malformed_json_is_400_and_keeps_the_isolate(
    echo: Runtime, body: bytes, why: str
) -> None:
    cold, recycled = cold_starts(), recycles()
    await _assert_invalid_json(echo.client, body, why)
    await _assert_still_warm(echo, cold, recycled)


async def test_oversized_bracket_flood_is_413_and_a_limit_sized_one_400(echo: Runtime) -> None:
    before = inflight()
    over = await echo.client.post("/invoke", content=b"[" * (6 * MIB + 1))
    assert over.status_code == 413
    assert over.json()["error"]["type"] == "PayloadTooLarge"
    started = time.monotonic()
    await _assert_invalid_json(echo.client, b"[" * (6 * MIB), "deeper than 512")
    # Linear, and refused long before parsing: generous, for a busy machine.
    assert time.monotonic() - started < 5
    assert inflight() == before


async def test_wide_flood_at_the_limit_is_answered_in_linear_time(echo: Runtime) -> None:
    # Brackets that never nest past 2 levels but fill the limit: the depth scan reads them all.
    body = b"[" + b"[]," * (2 * MIB - 2) + b"[]]"
    assert len(body) + 1 <= 6 * MIB
    started = time.monotonic()
    response = await echo.client.post("/invoke", content=body + b"x")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "InvalidJSON"
    assert time.monotonic() - started < 10


async def test_empty_and_whitespace_bodies_are_a_null_event(echo: Runtime) -> None:
    for body in (b"", b" ", b"\r\n\t "):
        response = await echo.client.post(
            "/invoke", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, body
        assert response.json()["output"] is None


async def test_valid_edge_cases_reach_the_function_as_javascript_reads_them(
    make_runtime: Any,
) -> None:
    runtime: Runtime = await make_runtime(
        "return {type: typeof event, str: String(event).slice(0, 20),"
        " len: typeof event === 'string' ? event.length : null,"
        " code: typeof event === 'string' ? event.charCodeAt(0) : null,"
        " a: event && event.a}"
    )

    async def seen(body: bytes) -> dict[str, Any]:
        response = await runtime.client.post("/invoke", content=body)
        assert response.status_code == 200, response.text
        output: dict[str, Any] = response.json()["output"]
        return output

    # A lone surrogate escape is JSON grammar (RFC 8259 section 8.2) and JavaScript strings
    # hold one: the function gets a one-unit string.
    lone = await seen(b'"\\ud800"')
    assert (lone["type"], lone["len"], lone["code"]) == ("string", 1, 0xD800)
    # Numbers are grammar, not range: what overflows a double is Infinity, as in JSON.parse.
    assert (await seen(b"1e999"))["str"] == "Infinity"
    assert (await seen(b"-1e999"))["str"] == "-Infinity"
    huge = await seen(b"9" * 1_000_000)
    assert (huge["type"], huge["str"]) == ("number", "Infinity")
    long_fraction = await seen(b"0." + b"3" * 1_000_000)
    assert long_fraction["str"].startswith("0.333")
    # Duplicate names: the last one wins, as in JSON.parse.
    assert (await seen(b'{"a": 1, "a": 2}'))["a"] == 2
    # Raw UTF-8 (not escapes) and the line separators JSON allows in strings.
    assert (await seen('"é\u2028"'.encode()))["len"] == 2


async def test_extremely_long_and_non_latin1_headers(echo: Runtime) -> None:
    before = inflight()
    long_value = "v" * (1 * MIB)
    response = await echo.client.post("/invoke", json=1, headers={"x-long": long_value})
    assert response.status_code == 200
    assert response.json()["output"] == 1
    # Header bytes are read as latin-1 (ASGI gives bytes): a UTF-8 name is passed as read.
    name = "fünf€".encode()
    response = await echo.client.post("/invoke", json=1, headers=[(b"x-vortex-function", name)])
    assert response.status_code == 200
    bad = await echo.client.post(
        "/invoke", json=1, headers=[(b"x-vortex-timeout-ms", "\u0661\u0660\u0660".encode())]
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "InvalidRequest"
    env = await echo.client.post(
        "/invoke", json=1, headers=[(b"x-vortex-env", '{"A": "é"}'.encode())]
    )
    assert env.status_code == 200
    assert inflight() == before


# ------------------------------------------------------------- the validator against a reference
def _reference_depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_reference_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_reference_depth(v) for v in value.values()), default=0)
    return 0


def _reference_accepts(body: bytes) -> bool:
    """RFC 8259 in UTF-8 as JSON.parse reads it, within the depth bound (slow and recursive)."""
    if not body.strip(b" \t\n\r"):
        return True
    if body.startswith(b"\xef\xbb\xbf"):
        return False
    try:
        text = body.decode("utf-8")
        value = json.loads(text, parse_constant=_refuse, parse_int=len)
    except (ValueError, RecursionError):
        return False
    return _reference_depth(value) <= events.MAX_DEPTH


def _refuse(name: str) -> None:
    raise ValueError(name)


def _random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(8 if depth < 12 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 12, 1.5, -2.5e-7, 10**30, 1e300])
    if kind in (2, 3, 4):
        alphabet = '[]{}"\\/ab\u00e9\u2028\U0001f600,:\n\t'
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(8)))
    if kind in (5, 6):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        str(_random_value(rng, 99)): _random_value(rng, depth + 1) for _ in range(rng.randrange(4))
    }


def test_validator_matches_the_reference_on_random_and_mutated_json() -> None:
    rng = random.Random(8259)
    mutations = [b"[", b"]", b"{", b"}", b'"', b"\\", b",", b":", b"N", b"\x00", b"\xff", b" "]
    for _ in range(3000):
        value = _random_value(rng, 0)
        body = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
        assert events.event_json(body) == body.decode()
        events.screen(body)
        for _ in range(3):
            at = rng.randrange(len(body) + 1)
            mutated = body[:at] + rng.choice(mutations) + body[at + rng.randrange(2) :]
            accepted = _reference_accepts(mutated)
            try:
                events.event_json(mutated)
            except InvalidJSON:
                assert not accepted, mutated
            else:
                assert accepted, mutated
            if accepted:  # the screen refuses nothing the runtime would take
                events.screen(mutated)


def test_depth_scan_is_exact_at_the_bound() -> None:
    for depth in (511, 512, 513):
        for opener, closer in ((b"[", b"]"), (b'{"k":', b"}")):
            body = opener * depth + b"0" + closer * depth
            if depth <= events.MAX_DEPTH:
                assert events.event_json(body)
                events.screen(body)
            else:
                with pytest.raises(InvalidJSON, match="deeper than 512"):
                    events.event_json(body)
                with pytest.raises(InvalidJSON, match="deeper than 512"):
                    events.screen(body)
    # Wide documents with many brackets, and depth counted across chunk boundaries.
    wide = b"[" + b"[[[]]]," * 100_000 + b"[]]"
    assert events.event_json(wide)
    events.screen(wide)
    late = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(InvalidJSON, match="deeper"):
        events.screen(late)
    climbing = b"[" + b"[[]" * 600 + b"]" * 600 + b"]"  # one level more every three brackets
    with pytest.raises(InvalidJSON, match="deeper"):
        events.screen(climbing)


@pytest.mark.parametrize(
    "body",
    [
        b"NaN",
        b"[-Infinity]",
        b'{"a": Infinity}',
        b"\xef\xbb\xbf1",
        '"x"'.encode("utf-16"),
        '"x"'.encode("utf-16-le"),
        '"x"'.encode("utf-32"),
        b'"\xed\xa0\x80"',
        b'"\xc3\x28"',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_screen_refuses_without_parsing(body: bytes) -> None:
    with pytest.raises(InvalidJSON):
        events.screen(body)
    with pytest.raises(InvalidJSON):
        events.event_json(body)


def test_screen_lets_through_what_only_a_parse_finds() -> None:
    for body in (
        b"[1 2]",
        b'{"a" 1}',
        b'"\\x"',
        b"[1,]",
        b'"tab\there"',
        b"// comment\n1",
        b"{'a': 1}",
        b"True",
        b'["NaN", "-Infinity"] x',
    ):
        events.screen(body)
        with pytest.raises(InvalidJSON, match="not valid JSON"):
            events.event_json(body)
