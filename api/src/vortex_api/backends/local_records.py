"""Local mode's invocation records: the files its workers append to, read and followed.

Each worker writes `records-<index>.jsonl` under `<data dir>/records` (vortex_runtime/records.py,
rotated by size into one `.1` part), so local mode keeps about `2 x VORTEX_RECORDS_MAX_BYTES`
of records per worker. `LocalRecords.newest` scans every file (in a thread: the files may hold
megabytes); `LocalRecords.follow` tails them, polling every `POLL_S`, and notices rotations.
Called by backends/local.py.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from vortex_api.invocation_logs import LogQuery, Record, newest, parse_line
from vortex_runtime.records import FILE_GLOB, record_files

POLL_S = 0.2


def _scan(paths: list[Path], function_id: str, query: LogQuery) -> list[Record]:
    needle = query.needle(function_id)
    found: list[Record] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # rotated away meanwhile: its lines are in the next part
            continue
        for line in data.splitlines():
            if needle in line:
                record = parse_line(line)
                if record is not None and query.matches(record, function_id):
                    found.append(record)
    return found


@dataclass
class _Tail:
    inode: int
    offset: int
    partial: bytes = b""


class LocalRecords:
    """The records under one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def newest(self, function_id: str, query: LogQuery) -> list[Record]:
        found = await asyncio.to_thread(_scan, record_files(self.directory), function_id, query)
        return newest(found, query.limit)

    def follow(self, function_id: str, query: LogQuery) -> AsyncIterator[Record]:
        """Records written from now on (from this call, not from the first read), as they
        appear, within `POLL_S` of their write."""
        tails = {path: self._tail_at_end(path) for path in self.directory.glob(FILE_GLOB)}
        return self._follow(tails, function_id, query)

    async def _follow(
        self, tails: dict[Path, _Tail], function_id: str, query: LogQuery
    ) -> AsyncIterator[Record]:
        needle = query.needle(function_id)
        while True:
            await asyncio.sleep(POLL_S)
            for path in self.directory.glob(FILE_GLOB):
                for line in self._new_lines(path, tails):
                    if needle in line:
                        record = parse_line(line)
                        if record is not None and query.matches(record, function_id):
                            yield record

    @staticmethod
    def _tail_at_end(path: Path) -> _Tail:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return _Tail(0, 0)
        return _Tail(stat.st_ino, stat.st_size)

    @staticmethod
    def _new_lines(path: Path, tails: dict[Path, _Tail]) -> list[bytes]:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return []
        tail = tails.get(path)
        if tail is None:  # a worker that started after the follow did
            tail = tails[path] = _Tail(stat.st_ino, 0)
        chunks: list[bytes] = []
        if stat.st_ino != tail.inode:
            # Rotated: the rest of the old file is now its `.1` part.
            older = path.with_name(path.name + ".1")
            chunks.append(_read_from(older, tail.offset, tail.inode))
            tail.inode, tail.offset = stat.st_ino, 0
        if stat.st_size > tail.offset:
            data = _read_from(path, tail.offset, stat.st_ino)
            tail.offset += len(data)
            chunks.append(data)
        data = tail.partial + b"".join(chunks)
        if not data:
            return []
        lines = data.split(b"\n")
        tail.partial = lines.pop()  # an unfinished last line waits for its end
        return lines


def _read_from(path: Path, offset: int, inode: int) -> bytes:
    try:
        with path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_ino != inode:
                return b""
            handle.seek(offset)
            return handle.read()
    except FileNotFoundError:
        return b""
