"""`GET /functions/{id}/logs` in local mode: records from the workers' files, filtered and ordered;
and the execute route's own invocation ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.unit.api.conftest import FakeRuntime
from vortex_api.errors import BadRequest
from vortex_api.invocation_logs import LogQuery, check_invocation_id
from vortex_api.settings import Settings
from vortex_runtime.records import encode


def write_records(
    directory: Path, name: str, rows: list[tuple[str, str, float, str | None]]
) -> None:
    """Append records `(invocation id, function, start epoch, error type)` to one worker file."""
    directory.mkdir(parents=True, exist_ok=True)
    logs = b'[{"timestamp":"t","level":"log","message":"m"}]'
    with (directory / name).open("ab") as handle:
        for invocation_id, function, started, error in rows:
            handle.write(encode(invocation_id, function, "sha", started, 1.5, error, logs))


@pytest.fixture
def records_dir(settings: Settings) -> Path:
    return settings.data_dir / "records"


T0 = 1767225600.0  # 2026-01-01T00:00:00Z


async def test_records_come_newest_first_from_every_worker(
    client: httpx.AsyncClient, deploy: Callable[..., Any], records_dir: Path
) -> None:
    await deploy(name="hello")
    write_records(
        records_dir, "records-0.jsonl", [("a", "hello", T0, None), ("c", "hello", T0 + 2, None)]
    )
    write_records(records_dir, "records-1.jsonl.1", [("old", "hello", T0 - 5, None)])
    write_records(
        records_dir,
        "records-1.jsonl",
        [("b", "hello", T0 + 1, "Timeout"), ("x", "other", T0 + 3, None)],
    )
    with (records_dir / "records-1.jsonl").open("ab") as handle:
        handle.write(b'{"invocation_id":"torn","func')

    response = await client.get("/functions/hello/logs")
    assert response.status_code == 200
    body = response.json()
    assert body["function_id"] == "hello"
    assert [r["invocation_id"] for r in body["records"]] == ["c", "b", "a", "old"]
    b = body["records"][1]
    assert (b["status"], b["error_type"], b["started_at"]) == (
        "error",
        "Timeout",
        "2026-01-01T00:00:01.000Z",
    )
    assert b["logs"] == [{"timestamp": "t", "level": "log", "message": "m"}]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("limit=2", ["c", "b"]),
        ("limit=0", []),
        ("status=error", ["b"]),
        ("status=ok", ["c", "a"]),
        ("invocation=a", ["a"]),
        ("invocation=nope", []),
        ("since=2026-01-01T00:00:01Z", ["c", "b"]),
        ("since=2026-01-01T01:00:01%2B01:00", ["c", "b"]),
        ("since=2026-01-01T00:00:00.500Z&status=ok", ["c"]),
    ],
)
async def test_filters(
    client: httpx.AsyncClient,
    deploy: Callable[..., Any],
    records_dir: Path,
    query: str,
    expected: list[str],
) -> None:
    await deploy(name="hello")
    write_records(
        records_dir,
        "records-0.jsonl",
        [
            ("a", "hello", T0, None),
            ("b", "hello", T0 + 1, "FunctionError"),
            ("c", "hello", T0 + 2, None),
        ],
    )
    response = await client.get(f"/functions/hello/logs?{query}")
    assert response.status_code == 200, response.text
    assert [r["invocation_id"] for r in response.json()["records"]] == expected


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("limit=1001", "limit"),
        ("limit=many", "limit"),
        ("since=yesterday", "since"),
        ("since=2026-01-01T00:00:00", "time zone"),
        ("status=failed", "status"),
        ("invocation=has%20space", "invocation"),
        ("follow=maybe", "follow"),
    ],
)
async def test_bad_queries_are_400_naming_the_parameter(
    client: httpx.AsyncClient, deploy: Callable[..., Any], query: str, words: str
) -> None:
    await deploy(name="hello")
    response = await client.get(f"/functions/hello/logs?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] in ("InvalidRequest", "ValidationError")
    assert words in error["message"]


async def test_an_unknown_function_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/functions/nope/logs")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "FunctionNotFound"


async def test_no_records_yet_is_an_empty_list(
    client: httpx.AsyncClient, deploy: Callable[..., Any]
) -> None:
    await deploy(name="hello")
    response = await client.get("/functions/hello/logs")
    assert response.json() == {"function_id": "hello", "records": []}


class TestKeys:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        settings.admin_key = SecretStr("admin-secret")
        settings.invoke_keys = SecretStr("inv-1")
        return settings

    async def test_an_invoke_key_or_the_admin_key_reads_logs(
        self, client: httpx.AsyncClient, deploy: Callable[..., Any]
    ) -> None:
        await deploy(name="hello")
        url = "/functions/hello/logs"
        assert (await client.get(url)).status_code == 401
        assert (await client.get(url, headers={"Authorization": "Bearer nope"})).status_code == 401
        for key in ("inv-1", "admin-secret"):
            response = await client.get(url, headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 200


async def test_a_caller_may_choose_the_invocation_id(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any]
) -> None:
    fn = await deploy()
    chosen = "order-17.retry_2-" + "x" * 47  # 64 characters
    response = await client.post(
        f"/execute/{fn.function_id}", headers={"X-Vortex-Invocation-Id": chosen}
    )
    assert response.status_code == 200
    assert response.headers["x-vortex-invocation-id"] == chosen
    assert runtime.last.headers["x-vortex-invocation-id"] == chosen


@pytest.mark.parametrize("bad", ["", "x" * 65, "a b", "a/b", "ümlaut", "a;b"])
async def test_an_invalid_invocation_id_is_400_and_runs_nothing(
    client: httpx.AsyncClient, runtime: FakeRuntime, deploy: Callable[..., Any], bad: str
) -> None:
    fn = await deploy()
    response = await client.post(
        f"/execute/{fn.function_id}",
        headers={"X-Vortex-Invocation-Id": bad.encode()},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "InvalidRequest"
    assert error["message"] == f"X-Vortex-Invocation-Id {_ID_RULE}"
    assert runtime.requests == []


_ID_RULE = "must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'"


@pytest.mark.parametrize("bad", ["", "x" * 65, "a b", "a/b", "ümlaut", "a;b"])
def test_a_logs_query_refuses_an_invalid_invocation_by_the_same_rule(bad: str) -> None:
    with pytest.raises(BadRequest) as refused:
        LogQuery.parse({"invocation": bad})
    assert refused.value.status == 400
    assert refused.value.error_type == "InvalidRequest"
    assert refused.value.message == f"invocation {_ID_RULE}"
    assert LogQuery.parse({"invocation": "order-17"}).invocation == "order-17"


@pytest.mark.parametrize("name", ["X-Vortex-Invocation-Id", "invocation"])
def test_the_invocation_id_check_names_the_field_it_checks(name: str) -> None:
    chosen = "order-17.retry_2-" + "x" * 47
    assert check_invocation_id(chosen, name) == chosen
    with pytest.raises(BadRequest) as refused:
        check_invocation_id("x" * 65, name)
    assert refused.value.status == 400
    assert refused.value.message == f"{name} {_ID_RULE}"
