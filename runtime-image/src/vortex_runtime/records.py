"""Invocation records: one JSON line per finished invocation, written where the API reads them.

A record is `{invocation_id, function, version, function_version?, started_at, duration_ms,
cpu_time_ms?, status, error_type?, fetches?, logs}`: `version` is the code's sha-256 (or the code
key when no hash was given), `function_version` the API's version number of the function where
it keeps versions (the `X-Vortex-Version` it answered with), `started_at` is RFC 3339 in UTC with
milliseconds (so records sort and compare as strings), `cpu_time_ms` is the CPU time of the
function where it was measured, `status` is "ok" or "error", `error_type` names the error of a
failed one, and `fetches` lists the function's `fetch` requests (`{method, host, status, ms,
outcome}`, each redirect hop its own). `logs` are the function's console entries, capped as in
the response.

server.py calls `RecordWriter.write` once per answered invocation; __main__.py builds the writer
from the settings. In the cluster records go to stdout, one line each, so `kubectl logs` and the
API (through `pods/log`) read the same lines; the runtime's own log lines go to stderr. In local
mode each worker appends to its own file under the data dir, rotated by size into one `.1`
file. Lines are buffered and written in one syscall at most every `FLUSH_S`, so a record is
readable well within a second of its end and the hot path pays no write of its own.

The API reads records with `parse_line` (vortex_api/invocation_logs.py) and local files with
`record_files`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("vortex_runtime.records")

FLUSH_S = 0.2
# A worker's record file in local mode; `.1` is its previous part, after a rotation.
FILE_GLOB = "records-*.jsonl"
# What a caller may choose as an invocation id (X-Vortex-Invocation-Id).
INVOCATION_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_KEYS = frozenset({"invocation_id", "function", "started_at", "duration_ms", "status"})


_second: list[Any] = [None, ""]  # the last second formatted, and its text: one strftime a second


def rfc3339(epoch_s: float) -> str:
    """UTC with milliseconds and a Z: the one format of `started_at`."""
    ms = int(epoch_s * 1000)
    second = ms // 1000
    if second != _second[0]:
        _second[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_second[1]}.{ms % 1000:03d}Z"


def encode(
    invocation_id: str,
    function: str,
    version: str | None,
    started_at: float,
    duration_ms: float,
    error_type: str | None,
    logs_json: bytes,
    cpu_ms: float | None = None,
    fetches: list[dict[str, Any]] | None = None,
    function_version: int | None = None,
) -> bytes:
    """One record as a JSON line; `logs_json` is the logs already encoded (for the response)."""
    dumps = json.dumps
    head = (
        f'{{"invocation_id":{dumps(invocation_id)},"function":{dumps(function)},'
        f'"version":{dumps(version)},'
    )
    if function_version is not None:
        head += f'"function_version":{int(function_version)},'
    head += f'"started_at":"{rfc3339(started_at)}","duration_ms":{round(duration_ms, 3)},'

    if cpu_ms is not None:
        head += f'"cpu_time_ms":{round(cpu_ms, 3)},'
    if error_type is None:
        tail = '"status":"ok","logs":'
    else:
        tail = f'"status":"error","error_type":{dumps(error_type)},"logs":'
    if fetches:
        tail = f'"fetches":{dumps(fetches, separators=(",", ":"))},' + tail
    return (head + tail).encode() + logs_json + b"}\n"


def parse_line(line: bytes) -> dict[str, Any] | None:
    """The record on this line, or None for anything else (a log line, a torn write)."""
    if not line.startswith(b'{"invocation_id":'):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict) or not value.keys() >= _KEYS:
        return None
    return value


def record_files(directory: Path) -> list[Path]:
    """Every record file of local mode's workers in `directory`, older parts first."""
    files: list[Path] = []
    for current in sorted(directory.glob(FILE_GLOB)):
        older = current.with_name(current.name + ".1")
        if older.exists():
            files.append(older)
        files.append(current)
    return files


class RecordWriter:
    """Buffers record lines and writes them to stdout or to a size-rotated file."""

    def __init__(self, path: Path | None, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._buffer: list[bytes] = []
        self._scheduled = False
        self._fd = -1
        self._size = 0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._open()

    def _open(self) -> None:
        assert self.path is not None
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = os.fstat(self._fd).st_size

    def write(self, line: bytes) -> None:
        """Queue one encoded record; it is written within `FLUSH_S`."""
        self._buffer.append(line)
        if not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_later(FLUSH_S, self.flush)
            except RuntimeError:  # no loop (a test, or shutdown): write at once
                self.flush()

    def flush(self) -> None:
        self._scheduled = False
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        try:
            if self.path is None:
                _write_all(1, data)
                return
            while data:
                part = data
                if self._size + len(data) > self.max_bytes:
                    # Whole lines up to the limit; a file that is empty takes one line anyway.
                    cut = data.rfind(b"\n", 0, max(self.max_bytes - self._size, 0)) + 1
                    if not cut and not self._size:
                        cut = data.index(b"\n") + 1
                    part = data[:cut]
                if part:
                    _write_all(self._fd, part)
                    self._size += len(part)
                    data = data[len(part) :]
                if data:
                    self._rotate()
        except OSError as exc:  # a full disk loses records, never an invocation's answer
            log.warning("%d invocation records were not written: %s", data.count(b"\n"), exc)

    def _rotate(self) -> None:
        assert self.path is not None
        os.close(self._fd)
        self._fd = -1
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self._open()

    def close(self) -> None:
        self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        view = view[written:]
