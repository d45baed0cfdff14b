"""`vortex invoke NAME`: the event it sends, output on stdout, logs on stderr, exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from tests.unit.cli.conftest import FakeApi

Cli = Callable[..., Result]
LOGS = [
    {"timestamp": "2026-01-01T00:00:00.000Z", "level": "log", "message": "hello"},
    {"timestamp": "2026-01-01T00:00:00.001Z", "level": "error", "message": "oops"},
]


@pytest.fixture
def echo(api: FakeApi) -> FakeApi:
    """A function that returns its event and logs twice."""

    def handler(request: httpx.Request) -> httpx.Response:
        event = json.loads(request.content) if request.content else None
        return httpx.Response(200, json={"output": event, "logs": LOGS, "execution_time_ms": 0.5})

    api.handler = handler
    return api


def test_output_on_stdout_and_logs_on_stderr(cli: Cli, echo: FakeApi) -> None:
    result = cli("invoke", "echo", "--data", '{"name": "Ada"}')

    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"name": "Ada"}
    assert result.stderr.splitlines() == [
        "2026-01-01T00:00:00.000Z log hello",
        "2026-01-01T00:00:00.001Z error oops",
    ]
    assert echo.requests[0].content == b'{"name": "Ada"}'
    assert echo.requests[0].url.path == "/execute/echo"


def test_no_data_is_no_body(cli: Cli, echo: FakeApi) -> None:
    result = cli("invoke", "echo")

    assert (result.exit_code, result.stdout) == (0, "null\n")
    assert echo.requests[0].content == b""


def test_data_from_a_file(cli: Cli, echo: FakeApi, tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text('[1, "two"]')

    result = cli("invoke", "echo", "--data", f"@{path}")

    assert json.loads(result.stdout) == [1, "two"]
    assert echo.requests[0].content == b'[1, "two"]'


@pytest.mark.parametrize("args", [["-"], ["--data", "-"], ["-d", "@-"]])
def test_data_from_stdin(cli: Cli, echo: FakeApi, args: list[str]) -> None:
    result = cli("invoke", "echo", *args, input='{"n": 3}')

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"n": 3}


def test_json_output_is_the_whole_answer_and_stderr_stays_empty(cli: Cli, echo: FakeApi) -> None:
    result = cli("invoke", "echo", "-d", "7", "-o", "json")

    assert json.loads(result.stdout) == {"output": 7, "logs": LOGS, "execution_time_ms": 0.5}
    assert result.stderr == ""


@pytest.mark.parametrize(
    "args",
    [["--data", "{oops"], ["--data", "NaN"], ["other"], ["-", "--data", "1"]],
)
def test_bad_usage_is_2_and_sends_nothing(cli: Cli, echo: FakeApi, args: list[str]) -> None:
    result = cli("invoke", "echo", *args)

    assert result.exit_code == 2
    assert echo.requests == []


def test_a_function_error_is_1_after_its_logs(cli: Cli, api: FakeApi) -> None:
    body = {
        "error": {"type": "FunctionError", "message": "boom", "name": "Error", "stack": "..."},
        "logs": LOGS[:1],
        "execution_time_ms": 1.0,
    }
    api.handler = lambda request: httpx.Response(500, json=body)

    result = cli("invoke", "thrower")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert (
        result.stderr == "2026-01-01T00:00:00.000Z log hello\nError: FunctionError: Error: boom\n"
    )


def test_a_function_error_in_json(cli: Cli, api: FakeApi) -> None:
    body = {"error": {"type": "Timeout", "message": "ran past 1000 ms"}}
    api.handler = lambda request: httpx.Response(504, json=body)

    result = cli("invoke", "slow", "-o", "json")

    assert result.exit_code == 1
    assert json.loads(result.stdout) == body
    assert result.stderr == "Error: Timeout: ran past 1000 ms\n"


def test_an_unreachable_api_is_3_and_names_the_url(cli: Cli, api: FakeApi) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    api.handler = handler
    result = cli("invoke", "echo", "--url", "http://127.0.0.1:9")

    assert result.exit_code == 3
    assert result.stderr == (
        "Error: ApiUnreachable: cannot reach the Vortex API at http://127.0.0.1:9:"
        " [Errno 111] Connection refused\n"
    )
