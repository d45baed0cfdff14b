"""Invocation records: their line format, the buffered writer, rotation, and one per invocation."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from vortex_runtime import records
from vortex_runtime.records import RecordWriter, encode, parse_line, record_files, rfc3339

LOGS = b'[{"timestamp":"2026-01-01T00:00:00.000Z","level":"log","message":"hi \\u00e9"}]'


def test_a_record_line_parses_back_with_every_field() -> None:
    line = encode("id-1", "hello", "ab" * 32, 1767225600.1234, 1.23456, None, LOGS)
    assert line.endswith(b"}\n")
    assert line.count(b"\n") == 1
    record = parse_line(line.rstrip(b"\n"))
    assert record == {
        "invocation_id": "id-1",
        "function": "hello",
        "version": "ab" * 32,
        "started_at": "2026-01-01T00:00:00.123Z",
        "duration_ms": 1.235,
        "status": "ok",
        "logs": [{"timestamp": "2026-01-01T00:00:00.000Z", "level": "log", "message": "hi é"}],
    }


def test_a_record_carries_the_function_version_it_was_given() -> None:
    line = encode("id-1", "hello", "ab" * 32, 0.0, 1.0, None, b"[]", function_version=12)
    record = parse_line(line.rstrip(b"\n"))
    assert record is not None
    assert (record["version"], record["function_version"]) == ("ab" * 32, 12)


def test_a_failed_invocation_names_its_error_type() -> None:
    record = parse_line(encode("id-2", "f", None, 0.0, 5.0, "Timeout", b"[]"))
    assert record is not None
    assert (record["status"], record["error_type"], record["version"]) == ("error", "Timeout", None)
    assert record["started_at"] == "1970-01-01T00:00:00.000Z"


def test_names_that_need_escaping_stay_json() -> None:
    record = parse_line(encode('a"b\\c', 'f"\n', None, 0.0, 1.0, 'X"', b"[]"))
    assert record is not None
    assert (record["invocation_id"], record["function"], record["error_type"]) == (
        'a"b\\c',
        'f"\n',
        'X"',
    )


@pytest.mark.parametrize(
    "line",
    [
        b'{"time":"2026-01-01T00:00:00.000Z","level":"info","message":"a log line"}',
        b'{"invocation_id":"x","function":"f"',  # torn
        b'{"invocation_id":"x"}',  # not every field
        b"[1,2]",
        b"",
        b"plain text",
    ],
)
def test_anything_but_a_record_is_not_one(line: bytes) -> None:
    assert parse_line(line) is None


def test_times_sort_as_strings() -> None:
    times = [0.0, 0.5, 1.0, 59.999, 86400.0, 1767225600.0]
    stamps = [rfc3339(t) for t in times]
    assert stamps == sorted(stamps)
    assert rfc3339(1767225600.5) == "2026-01-01T00:00:00.500Z"


def test_without_a_loop_a_record_is_written_at_once(tmp_path: Path) -> None:
    path = tmp_path / "records-0.jsonl"
    writer = RecordWriter(path, 1 << 20)
    writer.write(encode("a", "f", None, 0.0, 1.0, None, b"[]"))
    assert path.read_bytes().count(b"\n") == 1
    writer.close()


async def test_records_are_buffered_and_written_together(tmp_path: Path) -> None:
    path = tmp_path / "records-0.jsonl"
    writer = RecordWriter(path, 1 << 20)
    for i in range(50):
        writer.write(encode(f"id-{i}", "f", None, 0.0, 1.0, None, b"[]"))
    assert path.read_bytes() == b""  # nothing yet: one write comes after FLUSH_S
    await asyncio.sleep(records.FLUSH_S * 2)
    lines = path.read_bytes().splitlines()
    assert [parse_line(line)["invocation_id"] for line in lines] == [f"id-{i}" for i in range(50)]  # type: ignore[index]
    writer.close()


def test_the_file_rotates_into_one_older_part(tmp_path: Path) -> None:
    path = tmp_path / "records-3.jsonl"
    writer = RecordWriter(path, 4096)
    line = encode("x" * 40, "f", None, 0.0, 1.0, None, b"[]")
    count = 3 * 4096 // len(line) + 1
    for i in range(count):
        writer.write(encode(f"{i:040d}", "f", None, 0.0, 1.0, None, b"[]"))
    writer.close()
    older = tmp_path / "records-3.jsonl.1"
    assert path.stat().st_size <= 4096
    assert older.stat().st_size <= 4096
    assert record_files(tmp_path) == [older, path]
    kept = [parse_line(line) for f in (older, path) for line in f.read_bytes().splitlines()]
    ids = [int(r["invocation_id"]) for r in kept if r is not None]
    assert ids == list(range(ids[0], count))  # the newest ones, in order, none torn
    assert len(ids) > 4096 // len(line)


async def test_one_flush_larger_than_the_limit_still_keeps_both_parts_under_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "records-0.jsonl"
    writer = RecordWriter(path, 4096)
    for i in range(200):  # about 20 KiB in one write
        writer.write(encode(f"{i:040d}", "f", None, 0.0, 1.0, None, b"[]"))
    writer.flush()
    older = tmp_path / "records-0.jsonl.1"
    assert path.stat().st_size <= 4096
    assert older.stat().st_size <= 4096
    lines = older.read_bytes().splitlines() + path.read_bytes().splitlines()
    ids = [int(parse_line(line)["invocation_id"]) for line in lines]  # type: ignore[index]
    assert ids == list(range(200 - len(ids), 200))
    writer.close()


def test_a_record_over_the_limit_is_kept_whole(tmp_path: Path) -> None:
    writer = RecordWriter(tmp_path / "records-0.jsonl", 4096)
    big = encode("big", "f", None, 0.0, 1.0, None, b'["' + b"x" * 5000 + b'"]')
    writer.write(big)
    writer.write(encode("next", "f", None, 0.0, 1.0, None, b"[]"))
    writer.close()
    assert (tmp_path / "records-0.jsonl.1").read_bytes() == big
    assert (
        parse_line((tmp_path / "records-0.jsonl").read_bytes().rstrip())["invocation_id"] == "next"
    )  # type: ignore[index]


def test_a_failing_write_loses_records_not_the_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = RecordWriter(tmp_path / "records-0.jsonl", 1 << 20)
    os.close(writer._fd)
    writer._fd = os.open("/dev/full", os.O_WRONLY)
    writer.write(encode("a", "f", None, 0.0, 1.0, None, b"[]"))
    assert "1 invocation records were not written" in caplog.text
    writer.close()


def test_without_a_file_records_go_to_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    writer = RecordWriter(None, 1 << 20)
    writer.write(encode("to-stdout", "f", None, 0.0, 1.0, None, b"[]"))
    out, err = capfd.readouterr()
    assert parse_line(out.rstrip("\n").encode())["invocation_id"] == "to-stdout"  # type: ignore[index]
    assert err == ""


Client = Callable[..., Awaitable[httpx.AsyncClient]]


async def test_every_invocation_leaves_one_record(
    client_for: Client, code_file: Callable[[str], Path], tmp_path: Path
) -> None:
    code = (
        "export default (event, context) => {"
        " console.log('for', context.invocationId);"
        " if (event && event.fail) throw new Error('boom');"
        " return 1 }"
    )
    path = code_file(code)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    writer = RecordWriter(tmp_path / "records" / "records-0.jsonl", 1 << 20)
    client = await client_for(code_file=path, function_name="hello", code_sha256=sha, writer=writer)
    ok = await client.post("/invoke", content=b"null", headers={"x-vortex-invocation-id": "good"})
    failed = await client.post(
        "/invoke", content=b'{"fail":true}', headers={"x-vortex-invocation-id": "bad"}
    )
    await client.post("/invoke", content=b"{not json", headers={"x-vortex-invocation-id": "x"})
    assert (ok.status_code, failed.status_code) == (200, 500)
    writer.flush()
    lines = (tmp_path / "records" / "records-0.jsonl").read_bytes().splitlines()
    found = [parse_line(line) for line in lines]
    assert [r["invocation_id"] for r in found if r] == ["good", "bad"]  # not the malformed one
    good, bad = found
    assert good is not None
    assert bad is not None
    assert (good["function"], good["version"], good["status"]) == ("hello", sha, "ok")
    assert good["logs"] == ok.json()["logs"]
    assert good["logs"][0]["message"] == "for good"
    assert (bad["status"], bad["error_type"]) == ("error", "FunctionError")
    assert bad["logs"][0]["message"] == "for bad"
    assert 0 < good["duration_ms"] <= ok.json()["execution_time_ms"] + 1


async def test_a_many_function_runtime_records_the_name_and_hash_it_was_sent(
    client_for: Client, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    code = b"export default () => 'ok'"
    sha = hashlib.sha256(code).hexdigest()
    (store / f"{sha}.js").write_bytes(code)
    writer = RecordWriter(tmp_path / "records-1.jsonl", 1 << 20)
    client = await client_for(store_dir=store, prewarm_isolates=0, writer=writer)
    headers = {"x-vortex-function": "alpha", "x-vortex-code-sha256": sha}
    assert (await client.post(f"/invoke/{sha}.js", headers=headers)).status_code == 200
    versioned = {**headers, "x-vortex-version": "7"}
    assert (await client.post(f"/invoke/{sha}.js", headers=versioned)).status_code == 200
    writer.flush()
    lines = (tmp_path / "records-1.jsonl").read_bytes().splitlines()
    record, second = (parse_line(line) for line in lines)
    assert record is not None
    assert second is not None
    assert (record["function"], record["version"], record["status"]) == ("alpha", sha, "ok")
    assert "function_version" not in record
    assert json.dumps(record["logs"]) == "[]"
    # the API's version number of the function, where it keeps versions
    assert (second["version"], second["function_version"]) == (sha, 7)
