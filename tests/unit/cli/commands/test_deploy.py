"""`vortex deploy FILE`: the body it sends, what it prints, and its exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from tests.unit.cli.conftest import FakeApi, error

Cli = Callable[..., Result]


@pytest.fixture
def code(tmp_path: Path) -> Path:
    path = tmp_path / "hello.js"
    path.write_text('console.log("hi");\nreturn 42;\n')
    return path


@pytest.fixture
def deployed(api: FakeApi) -> FakeApi:
    api.handler = lambda request: httpx.Response(201, json={"function_id": "f-123"})
    return api


def test_prints_the_function_id(cli: Cli, deployed: FakeApi, code: Path) -> None:
    result = cli("deploy", str(code))

    assert (result.exit_code, result.stdout, result.stderr) == (0, "f-123\n", "")
    assert deployed.bodies == [{"code": 'console.log("hi");\nreturn 42;\n'}]


def test_sends_every_setting(cli: Cli, deployed: FakeApi, code: Path) -> None:
    result = cli(
        "deploy", str(code), "--name", "greet", "--timeout-ms", "1000", "--memory-mb", "64",
        "--env", "A=1", "--env", "B=x=y", "--isolation", "warm",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert deployed.bodies[0] == {
        "code": code.read_text(),
        "name": "greet",
        "timeout_ms": 1000,
        "memory_mb": 64,
        "env": {"A": "1", "B": "x=y"},
        "isolation": "warm",
    }


def test_sends_egress_rules(cli: Cli, deployed: FakeApi, code: Path) -> None:
    result = cli(
        "deploy", str(code), "--allow", "api.example.com", "--allow", "10.0.0.0/8:8080",
        "--max-requests", "5", "--kv-namespace", "shop", "--cpu-limit-ms", "20",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert deployed.bodies[0] == {
        "code": code.read_text(),
        "egress": {"allow": ["api.example.com", "10.0.0.0/8:8080"], "maxRequests": 5},
        "kv": {"namespace": "shop"},
        "cpu_limit_ms": 20,
    }


def test_json_output(cli: Cli, deployed: FakeApi, code: Path) -> None:
    result = cli("deploy", str(code), "-o", "json")

    assert json.loads(result.stdout) == {"function_id": "f-123"}


def test_url_and_key_from_the_environment(cli: Cli, deployed: FakeApi, code: Path) -> None:
    result = cli("deploy", str(code), env={"VORTEX_URL": "http://h:9/", "VORTEX_API_KEY": "k"})

    assert result.exit_code == 0
    [request] = deployed.requests
    assert str(request.url) == "http://h:9/deploy"
    assert request.headers["authorization"] == "Bearer k"


def test_options_win_over_the_environment(cli: Cli, deployed: FakeApi, code: Path) -> None:
    env = {"VORTEX_URL": "http://h:9", "VORTEX_API_KEY": "k"}

    cli("deploy", str(code), "--url", "http://other:1", "--key", "k2", env=env)

    assert str(deployed.requests[0].url) == "http://other:1/deploy"
    assert deployed.requests[0].headers["authorization"] == "Bearer k2"


@pytest.mark.parametrize(
    "args",
    [
        ["--name", "Not_A_Name"],
        ["--timeout-ms", "0"],
        ["--memory-mb", "lots"],
        ["--isolation", "vm"],
        ["--env", "NOEQUALS"],
        ["--url", "ftp://h"],
    ],
)
def test_bad_usage_is_2_and_sends_nothing(
    cli: Cli, deployed: FakeApi, code: Path, args: list[str]
) -> None:
    result = cli("deploy", str(code), *args)

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert deployed.requests == []


def test_a_missing_file_is_bad_usage(cli: Cli, deployed: FakeApi, tmp_path: Path) -> None:
    result = cli("deploy", str(tmp_path / "nope.js"))

    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_a_compile_error_is_1_with_one_line(cli: Cli, api: FakeApi, code: Path) -> None:
    message = "SyntaxError: Unexpected token ';' (line 1, column 9)"
    api.handler = lambda request: error(400, "CompileError", message, line=1, column=9)

    result = cli("deploy", str(code))

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: CompileError: {message}\n"


@pytest.mark.parametrize(("status", "kind"), [(401, "Unauthorized"), (403, "Forbidden")])
def test_a_refused_key_is_4(cli: Cli, api: FakeApi, code: Path, status: int, kind: str) -> None:
    api.handler = lambda request: error(status, kind, "no")

    result = cli("deploy", str(code), "--key", "wrong")

    assert (result.exit_code, result.stderr) == (4, f"Error: {kind}: no\n")
