"""The local data dir: content-addressed code, atomic records."""

from __future__ import annotations

import hashlib
from pathlib import Path

from vortex_api.backends.local_store import LocalStore


def test_code_is_stored_once_under_its_hash(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.open()
    sha = store.put_code("return 1;")
    assert sha == hashlib.sha256(b"return 1;").hexdigest()
    assert (tmp_path / "code" / f"{sha}.js").read_text() == "return 1;"
    assert store.put_code("return 1;") == sha
    assert [p.name for p in (tmp_path / "code").iterdir()] == [f"{sha}.js"]
    store.remove_code(sha)
    store.remove_code(sha)
    assert not store.has_code(sha)


def test_records_round_trip_and_bad_files_are_skipped(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.open()
    store.save("f1", {"function_id": "f1", "timeout_ms": 5})
    (tmp_path / "functions" / "bad.json").write_text("[1, 2]")
    (tmp_path / "functions" / "worse.json").write_text("{")
    assert store.load_all() == [{"function_id": "f1", "timeout_ms": 5}]
    assert not [p for p in (tmp_path / "functions").iterdir() if p.name.startswith(".tmp")]
    store.remove("f1")
    store.remove("f1")
    assert store.load_all() == []
