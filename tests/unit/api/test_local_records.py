"""Local mode's record files: a scan of every part, and a follow that sees appends and rotations."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from vortex_api.backends.local_records import LocalRecords
from vortex_api.invocation_logs import LogQuery, Record
from vortex_runtime.records import RecordWriter, encode


def line(invocation_id: str, function: str = "f", started: float = 0.0) -> bytes:
    return encode(invocation_id, function, None, started, 1.0, None, b"[]")


async def next_records(follow: AsyncIterator[Record], count: int) -> list[str]:
    got = []
    for _ in range(count):
        record = await asyncio.wait_for(anext(follow), timeout=2)
        got.append(record["invocation_id"])
    return got


async def test_follow_sees_new_records_only_of_its_function(tmp_path: Path) -> None:
    (tmp_path / "records-0.jsonl").write_bytes(line("before"))
    follow = LocalRecords(tmp_path).follow("f", LogQuery(follow=True))
    async with contextlib.aclosing(follow):  # type: ignore[type-var]
        first = asyncio.ensure_future(anext(follow))
        await asyncio.sleep(0.05)
        with (tmp_path / "records-0.jsonl").open("ab") as handle:
            handle.write(line("other", function="g") + line("new-1"))
        # A worker that starts later writes a file of its own.
        (tmp_path / "records-1.jsonl").write_bytes(line("new-2"))
        assert (await asyncio.wait_for(first, 2))["invocation_id"] == "new-1"
        assert await next_records(follow, 1) == ["new-2"]


async def test_follow_keeps_a_torn_line_until_its_end(tmp_path: Path) -> None:
    path = tmp_path / "records-0.jsonl"
    path.write_bytes(b"")
    follow = LocalRecords(tmp_path).follow("f", LogQuery(follow=True))
    pending = asyncio.ensure_future(anext(follow))
    await asyncio.sleep(0.05)
    whole = line("split")
    path.write_bytes(whole[:20])
    await asyncio.sleep(0.5)
    assert not pending.done()
    with path.open("ab") as handle:
        handle.write(whole[20:])
    assert (await asyncio.wait_for(pending, 2))["invocation_id"] == "split"
    await follow.aclose()  # type: ignore[attr-defined]


async def test_follow_reads_across_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "records-0.jsonl"
    writer = RecordWriter(path, 4096)
    writer.write(line("start"))
    writer.flush()
    follow = LocalRecords(tmp_path).follow("f", LogQuery(follow=True))
    got: list[str] = []

    async def consume() -> None:
        async for record in follow:
            got.append(record["invocation_id"])

    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0.05)
    # 20 lines a flush: about 2.7 KiB, so a rotation every other flush (the follow, which
    # polls faster than that, sees each file before it is replaced).
    ids = [f"r{i:03d}" for i in range(120)]
    for chunk in range(0, 120, 20):
        for invocation_id in ids[chunk : chunk + 20]:
            writer.write(line(invocation_id))
        writer.flush()
        await asyncio.sleep(0.3)
    for _ in range(20):
        if len(got) == len(ids):
            break
        await asyncio.sleep(0.1)
    consumer.cancel()
    writer.close()
    assert got == ids
    assert (tmp_path / "records-0.jsonl.1").exists()


async def test_newest_reads_both_parts_and_dedupes(tmp_path: Path) -> None:
    (tmp_path / "records-0.jsonl.1").write_bytes(line("a", started=1) + line("b", started=2))
    (tmp_path / "records-0.jsonl").write_bytes(line("b", started=2) + line("c", started=3))
    found = await LocalRecords(tmp_path).newest("f", LogQuery(limit=10))
    assert [r["invocation_id"] for r in found] == ["c", "b", "a"]


async def test_follow_starts_when_it_is_asked_for_not_at_its_first_read(tmp_path: Path) -> None:
    path = tmp_path / "records-0.jsonl"
    path.write_bytes(line("old"))
    follow = LocalRecords(tmp_path).follow("f", LogQuery(follow=True))
    # Written after the follow was made, before anything was read from it (the route reads the
    # past records in between): still followed.
    with path.open("ab") as handle:
        handle.write(line("meanwhile"))
    assert (await asyncio.wait_for(anext(follow), 2))["invocation_id"] == "meanwhile"
    await follow.aclose()  # type: ignore[attr-defined]
