"""`vortex list`, `get` and `delete`: tables, JSON, and delete's confirmation."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from click.testing import Result

import vortex_cli.commands.functions
from tests.unit.cli.conftest import FakeApi, error, function_info

Cli = Callable[..., Result]


@pytest.fixture
def two(api: FakeApi) -> FakeApi:
    functions = [function_info("alpha"), function_info("beta", isolation="warm")]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(204)
        if request.url.path == "/functions":
            return httpx.Response(200, json={"functions": functions})
        name = request.url.path.rsplit("/", 1)[1]
        for f in functions:
            if f["function_id"] == name:
                return httpx.Response(200, json=f)
        return error(404, "FunctionNotFound", f"no function {name!r}")

    api.handler = handler
    return api


def test_list_is_a_table(cli: Cli, two: FakeApi) -> None:
    result = cli("list")

    assert result.exit_code == 0
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "STATUS", "ISOLATION", "TIMEOUT", "MEMORY", "CODE", "CREATED"]
    assert [row.split()[:3] for row in rows] == [
        ["alpha", "Ready", "shared"],
        ["beta", "Ready", "warm"],
    ]


def test_list_in_json(cli: Cli, two: FakeApi) -> None:
    result = cli("list", "-o", "json")

    assert [f["function_id"] for f in json.loads(result.stdout)["functions"]] == ["alpha", "beta"]


def test_an_empty_list_says_so_on_stderr(cli: Cli, api: FakeApi) -> None:
    api.handler = lambda request: httpx.Response(200, json={"functions": []})

    result = cli("list")

    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "no functions deployed\n")


def test_get_shows_the_fields(cli: Cli, two: FakeApi) -> None:
    result = cli("get", "beta")

    assert result.exit_code == 0
    fields = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in result.stdout.splitlines()}
    assert fields["name"] == "beta"
    assert fields["isolation"] == "warm"
    assert fields["timeout"] == "5000 ms"


def test_get_in_json(cli: Cli, two: FakeApi) -> None:
    assert json.loads(cli("get", "alpha", "-o", "json").stdout) == function_info("alpha")


def test_get_of_an_unknown_function_is_1(cli: Cli, two: FakeApi) -> None:
    result = cli("get", "nope")

    assert (result.exit_code, result.stderr) == (1, "Error: FunctionNotFound: no function 'nope'\n")


def test_delete_with_yes(cli: Cli, two: FakeApi) -> None:
    result = cli("delete", "alpha", "--yes")

    assert (result.exit_code, result.stdout) == (0, "deleted alpha\n")
    assert [(r.method, r.url.path) for r in two.requests] == [("DELETE", "/functions/alpha")]


def test_delete_in_json(cli: Cli, two: FakeApi) -> None:
    result = cli("delete", "alpha", "-y", "-o", "json")

    assert json.loads(result.stdout) == {"function_id": "alpha", "deleted": True}


def test_delete_without_a_terminal_or_yes_is_refused(cli: Cli, two: FakeApi) -> None:
    result = cli("delete", "alpha")

    assert result.exit_code == 2
    assert "--yes" in result.stderr
    assert two.requests == []


@pytest.mark.parametrize(("answer", "code", "sent"), [("y\n", 0, 1), ("n\n", 1, 0), ("\n", 1, 0)])
def test_delete_at_a_terminal_asks(
    cli: Cli, two: FakeApi, monkeypatch: pytest.MonkeyPatch, answer: str, code: int, sent: int
) -> None:
    monkeypatch.setattr(vortex_cli.commands.functions, "stdin_is_terminal", lambda: True)

    result = cli("delete", "alpha", input=answer)

    assert result.exit_code == code
    assert "Delete the function 'alpha'?" in result.stderr
    assert len(two.requests) == sent
