"""`vortex logs NAME`: the query it sends, records as lines or JSON, and following a stream."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import Result

from tests.unit.cli.conftest import FakeApi, error

Cli = Callable[..., Result]


def record(invocation_id: str, started_at: str, **fields: Any) -> dict[str, Any]:
    return {
        "invocation_id": invocation_id,
        "function": "hello",
        "version": "ab" * 32,
        "started_at": started_at,
        "duration_ms": 1.25,
        "status": "ok",
        "logs": [{"timestamp": started_at, "level": "log", "message": f"hi from {invocation_id}"}],
        **fields,
    }


NEWEST_FIRST = [
    record("second", "2026-01-01T00:00:02.000Z", status="error", error_type="Timeout"),
    record("first", "2026-01-01T00:00:01.000Z"),
]


@pytest.fixture
def logs_api(api: FakeApi) -> FakeApi:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path != "/functions/hello/logs":
            return error(404, "FunctionNotFound", "no function 'x'")
        if request.url.params.get("follow") == "true":
            lines = b"".join(json.dumps(r).encode() + b"\n\n" for r in reversed(NEWEST_FIRST))
            return httpx.Response(
                200, content=lines, headers={"content-type": "application/x-ndjson"}
            )
        return httpx.Response(200, json={"function_id": "hello", "records": NEWEST_FIRST})

    api.handler = handler
    return api


def test_records_print_oldest_first_with_their_console_output(cli: Cli, logs_api: FakeApi) -> None:
    result = cli("logs", "hello")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "2026-01-01T00:00:01.000Z  first  ok  1.25 ms  abababababab",
        "  2026-01-01T00:00:01.000Z log hi from first",
        "2026-01-01T00:00:02.000Z  second  Timeout  1.25 ms  abababababab",
        "  2026-01-01T00:00:02.000Z log hi from second",
    ]
    assert dict(logs_api.requests[0].url.params) == {"limit": "100"}


def test_the_options_become_the_query(cli: Cli, logs_api: FakeApi) -> None:
    result = cli(
        "logs",
        "hello",
        "--limit",
        "5",
        "--invocation",
        "abc",
        "--errors",
        "--since",
        "2026-01-01T00:00:00Z",
    )
    assert result.exit_code == 0
    assert dict(logs_api.requests[0].url.params) == {
        "limit": "5",
        "invocation": "abc",
        "status": "error",
        "since": "2026-01-01T00:00:00Z",
    }


def test_json_is_the_api_document(cli: Cli, logs_api: FakeApi) -> None:
    result = cli("logs", "hello", "-o", "json")
    assert json.loads(result.stdout) == {"function_id": "hello", "records": NEWEST_FIRST}


def test_nothing_recorded_says_so_on_stderr(cli: Cli, api: FakeApi) -> None:
    api.handler = lambda request: httpx.Response(200, json={"function_id": "hello", "records": []})
    result = cli("logs", "hello", "--errors")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no invocations of hello recorded that match" in result.stderr


def test_follow_prints_each_record_of_the_stream(cli: Cli, logs_api: FakeApi) -> None:
    result = cli("logs", "hello", "--follow")
    assert result.exit_code == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if not line.startswith(" ")] == [
        "2026-01-01T00:00:01.000Z  first  ok  1.25 ms  abababababab",
        "2026-01-01T00:00:02.000Z  second  Timeout  1.25 ms  abababababab",
    ]
    assert dict(logs_api.requests[0].url.params) == {"limit": "10", "follow": "true"}


def test_follow_in_json_is_one_record_a_line(cli: Cli, logs_api: FakeApi) -> None:
    result = cli("logs", "hello", "-f", "-o", "json", "-n", "0")
    lines = result.stdout.splitlines()
    assert [json.loads(line)["invocation_id"] for line in lines] == ["first", "second"]
    assert logs_api.requests[0].url.params["limit"] == "0"


@pytest.mark.parametrize("follow", [[], ["--follow"]])
def test_an_unknown_function_is_exit_1(cli: Cli, logs_api: FakeApi, follow: list[str]) -> None:
    result = cli("logs", "nope", *follow)
    assert result.exit_code == 1
    assert "FunctionNotFound" in result.stderr


def test_a_limit_over_the_api_maximum_is_usage(cli: Cli, logs_api: FakeApi) -> None:
    result = cli("logs", "hello", "--limit", "1001")
    assert result.exit_code == 2
    assert logs_api.requests == []
