"""POST /deploy with hostile code: the API keeps answering, the check is bounded, errors exact."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

import vortex_runtime
from vortex_api import codecheck

MIB = 1024 * 1024


async def _deploy_while_polling_health(
    client: httpx.AsyncClient, code: str
) -> tuple[httpx.Response, float, list[float]]:
    """Deploy `code`; meanwhile ask for /health over and over. The deploy's response and time,
    and how long each /health took."""
    began = time.monotonic()
    deploy = asyncio.ensure_future(client.post("/deploy", json={"code": code}))
    waits: list[float] = []
    while not deploy.done() and time.monotonic() - began < 30:
        asked = time.monotonic()
        health = await client.get("/health")
        waits.append(time.monotonic() - asked)
        assert health.status_code in (200, 503)
        await asyncio.sleep(0.01)
    response = await deploy
    return response, time.monotonic() - began, waits


@pytest.mark.parametrize(
    ("code", "status"),
    [
        # the quadratic `^\s*export` scan spent about 12 s of held GIL on this one
        ("\n" * (64 * 1024) + "return 1;", 201),
        ("\n" * (MIB - 100) + "export default () => 1;", 201),
        ("export " * (MIB // 7), 400),
        ("{" * MIB, 400),
        ("x" * (MIB - 10) + ";return 1", 201),
        ("await " * (MIB // 6), 400),
        ("\r\n" * (MIB // 2 - 50) + "export default () => 1;", 201),
    ],
    ids=["64k blank lines", "blank MiB", "export", "braces", "long line", "await", "crlf"],
)
async def test_health_answers_while_a_pathological_deploy_is_checked(
    client: httpx.AsyncClient, code: str, status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check's own 1 s bound is the next test's; here a loaded machine must not turn the
    # expected answer into a 413.
    monkeypatch.setattr(codecheck, "CHECK_TIMEOUT_S", 4.0)
    response, seconds, waits = await _deploy_while_polling_health(client, code)

    assert response.status_code == status, response.text
    assert seconds < 5
    assert waits, "no /health answered while the deploy was in flight"
    assert max(waits) < 1.0, waits


async def test_a_check_past_the_bound_is_413_and_health_answers_meanwhile(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def stuck(code: str) -> None:
        release.wait(10)

    monkeypatch.setattr(codecheck, "CHECK_TIMEOUT_S", 0.3)
    monkeypatch.setattr(vortex_runtime, "check", stuck)
    try:
        response, seconds, waits = await _deploy_while_polling_health(client, "return 1;")
    finally:
        release.set()

    assert response.status_code == 413
    error = response.json()["error"]
    assert error["type"] == "PayloadTooLarge"
    assert "0.3 s" in error["message"]
    assert seconds < 3
    assert waits
    assert max(waits) < 1.0
    assert (await client.get("/functions")).json() == {"functions": []}


async def test_a_deploy_waiting_behind_another_check_is_not_charged_for_the_wait(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow(code: str) -> None:
        time.sleep(0.4)

    monkeypatch.setattr(codecheck, "CHECK_TIMEOUT_S", 0.6)
    monkeypatch.setattr(vortex_runtime, "check", slow)
    responses = await asyncio.gather(
        *(client.post("/deploy", json={"code": f"return {n};"}) for n in range(2))
    )

    assert [r.status_code for r in responses] == [201, 201]


async def test_a_handler_form_compile_error_names_line_and_column(
    client: httpx.AsyncClient,
) -> None:
    code = "const a = 1;\nexport default function (e) { return (; }"
    response = await client.post("/deploy", json={"code": code})

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["line"], error["column"]) == ("CompileError", 2, 39)
    assert error["message"] == "SyntaxError: Unexpected token ';' (line 2, column 39)"


async def test_a_strict_duplicate_parameter_names_line_and_column(
    client: httpx.AsyncClient,
) -> None:
    code = '"use strict";\nfunction f(a, a) {}\nreturn f;'
    response = await client.post("/deploy", json={"code": code})

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["line"], error["column"]) == (2, 15)
    assert "Duplicate parameter name" in error["message"]


async def test_a_module_with_top_level_await_deploys(client: httpx.AsyncClient) -> None:
    code = "const config = await Promise.resolve({ n: 1 });\nexport default () => config.n;"
    response = await client.post("/deploy", json={"code": code})

    assert response.status_code == 201, response.text
