"""`vortex versions`, `rollback` and `traffic`, and `invoke --version`, against a fake API: what
they send, what they print, and their exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import Result

from tests.unit.cli.conftest import FakeApi, error

Cli = Callable[..., Result]


def version(number: int, sha: str, **fields: Any) -> dict[str, Any]:
    return {
        "version": number,
        "code_sha256": sha * 32,
        "spec": {"timeoutMs": 5000, "memoryMb": 128, "isolation": "shared"},
        "created_at": f"2026-01-0{number}T00:00:00+00:00",
        "created_by": "api",
        "rollback_of": None,
        **fields,
    }


def doc(traffic: list[dict[str, Any]], *extra: dict[str, Any]) -> dict[str, Any]:
    kept = [version(1, "a1"), version(2, "b2"), version(3, "c3"), *extra]
    return {
        "function_id": "fn",
        "latest_version": kept[-1]["version"],
        "revision_history_limit": 10,
        "versions": kept,
        "traffic": traffic,
    }


SPLIT = [{"version": 1, "percent": 80}, {"version": 3, "percent": 20, "tag": "canary"}]


@pytest.fixture
def fn(api: FakeApi) -> FakeApi:
    """The function `fn` with three versions; the API applies a rollback or a split it is sent."""
    state = {"doc": doc(SPLIT)}

    def handler(request: httpx.Request) -> httpx.Response:
        if not request.url.path.startswith("/functions/fn/"):
            return error(404, "FunctionNotFound", "no function 'nope'")
        body = json.loads(request.content) if request.content else None
        if request.url.path.endswith("/rollback"):
            if body["version"] not in (1, 2, 3):
                return error(404, "VersionNotFound", f"fn keeps no version {body['version']}")
            state["doc"] = doc([], version(4, "a1", rollback_of=body["version"]))
        elif request.url.path.endswith("/traffic"):
            if body["traffic"] and sum(t["percent"] for t in body["traffic"]) != 100:
                return error(400, "InvalidRequest", "traffic percents sum to 90, not 100")
            state["doc"] = {**state["doc"], "traffic": body["traffic"] or []}
        return httpx.Response(200, json=state["doc"])

    api.handler = handler
    return api


def test_versions_is_a_table_with_each_share(cli: Cli, fn: FakeApi) -> None:
    result = cli("versions", "fn")

    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["VERSION", "TRAFFIC", "CODE", "CREATED", "BY", "NOTE"]
    assert [row.split() for row in rows] == [
        ["1", "80%", "a1" * 6, "2026-01-01T00:00:00+00:00", "api"],
        ["2", "b2" * 6, "2026-01-02T00:00:00+00:00", "api"],
        ["3", "20%", "canary", "c3" * 6, "2026-01-03T00:00:00+00:00", "api"],
    ]
    assert [(r.method, r.url.path) for r in fn.requests] == [("GET", "/functions/fn/versions")]


def test_versions_without_a_split_gives_the_latest_100_and_notes_a_rollback(
    cli: Cli, api: FakeApi
) -> None:
    api.handler = lambda r: httpx.Response(200, json=doc([], version(4, "a1", rollback_of=1)))

    rows = cli("versions", "fn").stdout.splitlines()[1:]

    assert rows[-1].split()[:3] == ["4", "100%", "a1" * 6]
    assert rows[-1].endswith("api  rollback of 1")
    assert [row.split()[1] for row in rows[:3]] == ["a1" * 6, "b2" * 6, "c3" * 6]


def test_versions_in_json_is_the_api_document(cli: Cli, fn: FakeApi) -> None:
    result = cli("versions", "fn", "-o", "json")

    assert (result.exit_code, json.loads(result.stdout)) == (0, doc(SPLIT))


def test_versions_of_an_unknown_function_is_1(cli: Cli, fn: FakeApi) -> None:
    result = cli("versions", "nope")

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "Error: FunctionNotFound: no function 'nope'\n"


def test_rollback_posts_the_version_and_prints_the_new_one(cli: Cli, fn: FakeApi) -> None:
    result = cli("rollback", "fn", "--to", "1")

    assert (result.exit_code, result.stdout) == (0, "rolled back fn to version 1: now version 4\n")
    [sent] = fn.requests
    assert (sent.method, sent.url.path) == ("POST", "/functions/fn/rollback")
    assert fn.bodies == [{"version": 1}]


def test_rollback_in_json(cli: Cli, fn: FakeApi) -> None:
    result = cli("rollback", "fn", "--to", "2", "-o", "json")

    assert json.loads(result.stdout)["versions"][-1]["rollback_of"] == 2


def test_rollback_to_a_version_not_kept_is_1(cli: Cli, fn: FakeApi) -> None:
    result = cli("rollback", "fn", "--to", "9")

    assert (result.exit_code, result.stderr) == (
        1,
        "Error: VersionNotFound: fn keeps no version 9\n",
    )


@pytest.mark.parametrize("args", [[], ["--to", "0"], ["--to", "one"]])
def test_rollback_needs_a_version_number(cli: Cli, fn: FakeApi, args: list[str]) -> None:
    result = cli("rollback", "fn", *args)

    assert result.exit_code == 2
    assert fn.requests == []


def test_traffic_sends_the_split_and_prints_it(cli: Cli, fn: FakeApi) -> None:
    result = cli("traffic", "fn", "1=80", "3=15@stable", "latest=5@canary")

    assert result.exit_code == 0, result.output
    assert result.stdout == "fn: 1 80%, 3 15% (stable), latest 5% (canary)\n"
    [sent] = fn.requests
    assert (sent.method, sent.url.path) == ("PUT", "/functions/fn/traffic")
    assert fn.bodies == [
        {
            "traffic": [
                {"version": 1, "percent": 80},
                {"version": 3, "percent": 15, "tag": "stable"},
                {"latest": True, "percent": 5, "tag": "canary"},
            ]
        }
    ]


def test_traffic_clear_sends_null(cli: Cli, fn: FakeApi) -> None:
    result = cli("traffic", "fn", "--clear")

    assert (result.exit_code, result.stdout) == (0, "fn: latest 100%\n")
    assert fn.bodies == [{"traffic": None}]


def test_traffic_in_json(cli: Cli, fn: FakeApi) -> None:
    result = cli("traffic", "fn", "2=100", "-o", "json")

    assert json.loads(result.stdout)["traffic"] == [{"version": 2, "percent": 100}]


@pytest.mark.parametrize(
    "args",
    [
        ["3"],
        ["3=ninety"],
        ["3=9.5"],
        ["3=101"],
        ["3=-1"],
        ["v3=90"],
        ["0=100"],
        ["=100"],
        ["3=90@"],
        ["latest"],
        [],
        ["--clear", "3=100"],
    ],
)
def test_a_bad_split_is_2_and_sends_nothing(cli: Cli, fn: FakeApi, args: list[str]) -> None:
    result = cli("traffic", "fn", *args)

    assert result.exit_code == 2
    assert "Usage:" in result.stderr
    assert fn.requests == []


def test_a_split_the_api_refuses_is_1(cli: Cli, fn: FakeApi) -> None:
    result = cli("traffic", "fn", "1=80", "3=10")

    assert (result.exit_code, result.stderr) == (
        1,
        "Error: InvalidRequest: traffic percents sum to 90, not 100\n",
    )


def test_traffic_on_kubernetes_is_not_supported(cli: Cli, api: FakeApi) -> None:
    api.handler = lambda r: error(501, "NotSupported", "versions need local mode")

    result = cli("traffic", "fn", "1=100", "-o", "json")

    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["type"] == "NotSupported"
    assert result.stderr == "Error: NotSupported: versions need local mode\n"


@pytest.mark.parametrize("queued", [False, True])
def test_invoke_version_sends_the_header(cli: Cli, api: FakeApi, queued: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/async/"):
            return httpx.Response(202, json={"invocation_id": "inv1", "status": "queued"})
        return httpx.Response(
            200, json={"output": 3, "logs": []}, headers={"X-Vortex-Version": "3"}
        )

    api.handler = handler
    result = cli("invoke", "fn", "--version", "canary", *(["--async"] if queued else []))

    assert (result.exit_code, result.stdout) == (0, "inv1\n" if queued else "3\n")
    assert api.requests[0].headers["x-vortex-version"] == "canary"


def test_invoke_without_version_sends_no_header(cli: Cli, api: FakeApi) -> None:
    api.handler = lambda r: httpx.Response(200, json={"output": 1, "logs": []})

    assert cli("invoke", "fn").exit_code == 0
    assert "x-vortex-version" not in api.requests[0].headers
