"""The local backend's data dir: content-addressed code and one JSON record per function.

Layout under the data dir (default `.vortex/`):

    code/<sha256>.js          the code, named by its hash (shared by functions with equal code)
    functions/<id>.json       the function's settings and code hash

Writes go to a temporary file first and are renamed into place, so a crash never leaves a half
record. `LocalBackend` is the only caller; runtime workers read `code/` as their store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("vortex_api.local")


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class LocalStore:
    """Files of the local backend."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.code_dir = data_dir / "code"
        self.functions_dir = data_dir / "functions"
        # Invocation records, one file per worker (backends/local_records.py reads them).
        self.records_dir = data_dir / "records"
        self.kv_dir = data_dir / "kv"  # context.kv of every function (the workers write it)

    def open(self) -> None:
        self.code_dir.mkdir(parents=True, exist_ok=True)
        self.functions_dir.mkdir(parents=True, exist_ok=True)
        self.records_dir.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def code_key(sha256: str) -> str:
        """The runtime store key of the code with this hash."""
        return f"{sha256}.js"

    def put_code(self, code: str) -> str:
        """Store code under its hash (once) and return the hash."""
        data = code.encode()
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.code_dir / self.code_key(sha256)
        if not path.exists():
            _atomic_write(path, data)
        return sha256

    def has_code(self, sha256: str) -> bool:
        return (self.code_dir / self.code_key(sha256)).exists()

    def save(self, function_id: str, record: dict[str, Any]) -> None:
        _atomic_write(
            self.functions_dir / f"{function_id}.json", json.dumps(record, indent=1).encode()
        )

    def remove(self, function_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.functions_dir / f"{function_id}.json").unlink()

    def remove_code(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.code_dir / self.code_key(sha256)).unlink()

    def load_all(self) -> list[dict[str, Any]]:
        """Every readable function record; unreadable files are logged and skipped."""
        records = []
        for path in sorted(self.functions_dir.glob("*.json")):
            try:
                record = json.loads(path.read_bytes())
                if not isinstance(record, dict) or "function_id" not in record:
                    raise ValueError("not a function record")
            except (OSError, ValueError) as exc:
                log.warning("skipping unreadable function record %s: %s", path, exc)
                continue
            records.append(record)
        return records
