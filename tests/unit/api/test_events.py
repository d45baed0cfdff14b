"""The API refuses events a runtime would refuse for their encoding, their depth or a NaN or
Infinity with a 400 `InvalidJSON` of its own, before forwarding, in both backends; every other
event is forwarded byte for byte (a runtime parses it and answers any remaining fault, such as a
missing comma, with its own 400 `InvalidJSON`, which the API passes through)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.unit.api.conftest import FakeRuntime
from tests.unit.api.kube_fixtures import SLICES, endpoint_slice
from tests.unit.fake_kube import FakeKube
from vortex_api import events
from vortex_api.errors import BadRequest

REFUSED = [
    (b"NaN", "NaN"),
    (b"Infinity", "Infinity"),
    (b"-Infinity", "Infinity"),
    (b'{"a": [NaN]}', "NaN"),
    (b'\xef\xbb\xbf{"a": 1}', "byte order mark"),
    ('{"a": 1}'.encode("utf-16"), "UTF-16"),
    ('{"a": 1}'.encode("utf-16-le"), "UTF-8"),
    ('{"a": 1}'.encode("utf-32"), "UTF-32"),
    (b'"\xed\xa0\x80"', "UTF-8"),
    (b'["\xc3\x28"]', "UTF-8"),
    (b"[" * 5000 + b"]" * 5000, "deeper than 512"),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, "deeper than 512"),
    (b"[" * 513 + b"]" * 513, "deeper than 512"),
]
REFUSED_IDS = [
    "nan",
    "infinity",
    "minus-infinity",
    "nested-nan",
    "bom",
    "utf16-bom",
    "utf16-le",
    "utf32-bom",
    "cesu-surrogate",
    "bad-continuation",
    "arrays-5000-deep",
    "objects-5000-deep",
    "513-deep",
]

FORWARDED = [
    b'"\\ud800"',  # a lone surrogate escape: JSON grammar, and JavaScript takes it
    b"1e999",  # Infinity to the function, as JSON.parse reads it
    b"9" * 100_000,
    b'{"a": 1, "a": 2}',  # the last name wins, as in JSON.parse
    b"[" * 512 + b"]" * 512,
    json.dumps(["[" * 600, '\\"{{{{', "\u00e9\u2028"], ensure_ascii=False).encode(),
    b" \r\n",
    b'["NaN", "Infinity", "[[[["]',
]


async def _execute_refused(
    client: httpx.AsyncClient, runtime: FakeRuntime, path: str, body: bytes, why: str
) -> None:
    before = len(runtime.requests)
    response = await client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "InvalidJSON"
    assert why.lower() in error["message"].lower(), error["message"]
    assert len(runtime.requests) == before  # never forwarded


@pytest.mark.parametrize(("body", "why"), REFUSED, ids=REFUSED_IDS)
async def test_local_backend_refuses_before_forwarding(
    client: httpx.AsyncClient,
    runtime: FakeRuntime,
    deploy: Callable[..., Any],
    body: bytes,
    why: str,
) -> None:
    fn = await deploy("return event;")
    await _execute_refused(client, runtime, f"/execute/{fn.function_id}", body, why)
    # GET passes its body through too, so it is screened the same way.
    response = await client.request("GET", f"/execute/{fn.function_id}", content=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "InvalidJSON"
    assert runtime.requests == []
    # The bulkhead slot was never taken, or was given back: a good event still runs.
    assert (await client.post(f"/execute/{fn.function_id}", json={"n": 1})).status_code == 200


async def test_kubernetes_backend_refuses_before_forwarding(
    k8s_client: httpx.AsyncClient, fake_kube: FakeKube, runtime: FakeRuntime
) -> None:
    created = await k8s_client.post(
        "/deploy", json={"code": "return event;", "name": "ev", "isolation": "warm"}
    )
    assert created.status_code == 201
    await fake_kube.put(SLICES, endpoint_slice("ev", "10.0.0.1"))
    for body, why in REFUSED:
        await _execute_refused(k8s_client, runtime, "/execute/ev", body, why)
    assert runtime.requests == []
    good = await k8s_client.post("/execute/ev", content=b'{"n": 1}')
    assert good.status_code == 200
    assert runtime.last.content == b'{"n": 1}'


@pytest.mark.parametrize("body", FORWARDED)
async def test_valid_edge_cases_are_forwarded_unchanged(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any], body: bytes
) -> None:
    fn = await deploy("return event;")
    runtime.handler = lambda request: httpx.Response(200, json={"output": None, "logs": []})
    response = await client.post(f"/execute/{fn.function_id}", content=body)
    assert response.status_code == 200, response.text
    assert runtime.last.content == body


async def test_malformed_json_the_screen_lets_through_gets_the_runtime_400(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any]
) -> None:
    fn = await deploy("return event;")
    answer = {"error": {"type": "InvalidJSON", "message": "The event is not valid JSON: ..."}}
    runtime.handler = lambda request: httpx.Response(400, json={**answer, "logs": []})
    for body in (b"[1 2]", b"{'a': 1}", b"// comment\n1", b'"\\x"'):
        response = await client.post(f"/execute/{fn.function_id}", content=body)
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "InvalidJSON"
        assert runtime.last.content == body


async def test_empty_body_with_a_json_content_type_is_forwarded_as_no_event(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any]
) -> None:
    fn = await deploy("return event;")
    response = await client.post(
        f"/execute/{fn.function_id}", content=b"", headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert runtime.last.content == b""


async def test_size_limit_comes_before_the_screen(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any], settings: Any
) -> None:
    fn = await deploy()
    settings.max_event_bytes = 1000
    response = await client.post(f"/execute/{fn.function_id}", content=b"[" * 1001)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "PayloadTooLarge"
    assert runtime.requests == []


def test_check_event_raises_the_api_error() -> None:
    with pytest.raises(BadRequest) as caught:
        events.check_event(b"NaN")
    assert caught.value.status == 400
    assert caught.value.error_type == "InvalidJSON"
    events.check_event(b'{"a": 1}')
    events.check_event(b"")


def test_screening_a_megabyte_event_is_cheap() -> None:
    items = [
        {"id": i, "name": f"user {i}", "score": i * 0.37, "tags": ["a", "[b]"], "ok": True}
        for i in range(14_000)
    ]
    body = json.dumps(items).encode()
    assert len(body) > 1_000_000
    best = min(_timed(lambda: events.check_event(body)) for _ in range(5))
    # Measured around 5 ms on a developer machine; generous for a busy CI one.
    assert best < 0.25


def _timed(call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started
