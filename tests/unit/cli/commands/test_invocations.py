"""`vortex invoke --async [--wait]`, `vortex invocation`, `vortex dead-letters` and `vortex retry`
against a fake API: what they send, what they print, and their exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import Result

import vortex_cli.commands.invoke
from tests.unit.cli.conftest import FakeApi, error

Cli = Callable[..., Result]
LOGS = [{"timestamp": "2026-01-01T00:00:00.000Z", "level": "log", "message": "hi"}]


def _record(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "invocation_id": "inv1",
        "function": "job",
        "status": status,
        "attempts": 1,
        "created_at": "2026-01-01T00:00:00.000Z",
        "finished_at": None,
        "next_attempt_at": None,
        "result": None,
        "error": None,
        "history": [],
        "redrives": 0,
        **fields,
    }


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vortex_cli.commands.invoke.time, "sleep", lambda _s: None)


def test_async_prints_the_id_and_sends_the_idempotency_key(cli: Cli, api: FakeApi) -> None:
    api.handler = lambda r: httpx.Response(202, json={"invocation_id": "inv1", "status": "queued"})
    result = cli("invoke", "job", "--async", "--idempotency-key", "k-1", "--data", '{"a": 1}')
    assert (result.exit_code, result.stdout) == (0, "inv1\n")
    [sent] = api.requests
    assert (sent.method, sent.url.path) == ("POST", "/async/job")
    assert sent.headers["idempotency-key"] == "k-1"
    assert sent.content == b'{"a": 1}'


def test_wait_polls_until_it_succeeds_and_prints_like_invoke(cli: Cli, api: FakeApi) -> None:
    answers = iter(
        [
            _record("queued"),
            _record("failed", next_attempt_at="2026-01-01T00:00:01.000Z"),
            _record(
                "succeeded",
                attempts=2,
                result={"output": {"ok": True}, "logs": LOGS, "execution_time_ms": 1.0},
            ),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, json={"invocation_id": "inv1", "status": "queued"})
        return httpx.Response(200, json=next(answers))

    api.handler = handler
    result = cli("invoke", "job", "--async", "--wait")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ok": True}
    assert result.stderr.splitlines() == ["2026-01-01T00:00:00.000Z log hi"]
    assert [r.url.path for r in api.requests] == ["/async/job"] + ["/invocations/inv1"] * 3


def test_wait_on_a_dead_invocation_prints_its_error_and_exits_1(cli: Cli, api: FakeApi) -> None:
    dead = _record("dead", attempts=3, error={"type": "Timeout", "message": "ran past 100 ms"})
    api.handler = lambda r: httpx.Response(
        202 if r.method == "POST" else 200,
        json={"invocation_id": "inv1", "status": "queued"} if r.method == "POST" else dead,
    )
    result = cli("invoke", "job", "--async", "--wait")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Timeout: ran past 100 ms" in result.stderr


def test_wait_needs_async(cli: Cli, api: FakeApi) -> None:
    result = cli("invoke", "job", "--wait")
    assert result.exit_code == 2
    assert "--wait and --idempotency-key go with --async" in result.stderr
    assert api.requests == []


def test_invocation_shows_its_fields_and_attempts(cli: Cli, api: FakeApi) -> None:
    doc = _record(
        "succeeded",
        attempts=2,
        finished_at="2026-01-01T00:00:02.000Z",
        result={"output": 7, "logs": [], "execution_time_ms": 1.0},
        history=[
            {
                "attempt": 1,
                "started_at": "2026-01-01T00:00:00.100Z",
                "finished_at": "2026-01-01T00:00:00.200Z",
                "error": {"type": "FunctionError", "message": "boom"},
            },
            {
                "attempt": 2,
                "started_at": "2026-01-01T00:00:01.200Z",
                "finished_at": "2026-01-01T00:00:02.000Z",
                "error": None,
            },
        ],
    )
    api.handler = lambda r: httpx.Response(200, json=doc)
    result = cli("invocation", "inv1")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert any(line.split() == ["status", "succeeded"] for line in lines)
    assert any(line.split() == ["output", "7"] for line in lines)
    assert any("attempt 1" in line and "FunctionError: boom" in line for line in lines)
    assert any("attempt 2" in line and line.endswith("ok") for line in lines)
    as_json = cli("invocation", "inv1", "-o", "json")
    assert json.loads(as_json.stdout) == doc


def test_dead_letters_and_retry(cli: Cli, api: FakeApi) -> None:
    dead = _record("dead", error={"type": "FunctionError", "message": "boom"})

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/functions/job/dead-letters":
            assert request.url.params["limit"] == "5"
            return httpx.Response(200, json={"function_id": "job", "invocations": [dead]})
        if request.url.path == "/invocations/inv1/retry":
            return httpx.Response(202, json=_record("queued", attempts=0, redrives=1))
        return error(404, "InvocationNotFound", "no invocation 'nope'")

    api.handler = handler
    listed = cli("dead-letters", "job", "--limit", "5")
    assert listed.exit_code == 0
    [header, row] = listed.stdout.splitlines()
    assert header.split() == ["ID", "ATTEMPTS", "FINISHED", "ERROR"]
    assert row.split()[:2] == ["inv1", "1"]
    assert row.endswith("FunctionError: boom")
    retried = cli("retry", "inv1")
    assert (retried.exit_code, retried.stdout) == (0, "queued inv1 again\n")
    missing = cli("retry", "nope")
    assert missing.exit_code == 1
    assert "InvocationNotFound: no invocation 'nope'" in missing.stderr
