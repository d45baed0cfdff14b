"""CodeStore against a real MinIO: idempotent content-addressed puts, outages, deletes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.minio import MinioServer
from vortex_kube.contract import code_key
from vortex_operator.errors import ObjectMissing, StorageUnavailable
from vortex_operator.settings import Settings
from vortex_operator.storage import CodeStore
from vortex_runtime import sha256_hex
from vortex_runtime.settings import MinioSettings

pytestmark = pytest.mark.minio


@pytest.fixture
def own_minio(tmp_path: Path) -> Iterator[MinioServer]:
    """A MinIO of this test alone, so it can be stopped."""
    server = MinioServer(tmp_path / "data")
    server.start()
    yield server
    server.stop()


def store_for(server: MinioServer, bucket: str) -> CodeStore:
    return CodeStore(
        Settings(
            minio=MinioSettings(
                endpoint=server.endpoint,
                access_key=server.access_key,
                secret_key=server.secret_key,
                bucket=bucket,
            ),
            storage_timeout_s=2,
        )
    )


async def test_ensure_creates_bucket_and_object_once(own_minio: MinioServer) -> None:
    store = store_for(own_minio, "code")
    data = b"return 42;"
    sha = sha256_hex(data)
    assert await store.ensure(code_key(sha), data, sha) is True
    assert await store.ensure(code_key(sha), data, sha) is False
    obj = own_minio.client().get_object("code", code_key(sha))
    try:
        assert obj.read() == data
    finally:
        obj.close()
        obj.release_conn()
    stat = own_minio.client().stat_object("code", code_key(sha))
    assert stat.metadata["x-amz-meta-sha256"] == sha


async def test_read_and_missing(own_minio: MinioServer) -> None:
    own_minio.put("uploads", "fn.js", b"x" * 100)
    store = store_for(own_minio, "code")
    assert await store.read("uploads", "fn.js", limit=10) == b"x" * 11
    with pytest.raises(ObjectMissing):
        await store.read("uploads", "nope.js", limit=10)


async def test_delete_is_idempotent(own_minio: MinioServer) -> None:
    store = store_for(own_minio, "code")
    await store.ensure("functions/a.js", b"a", "a")
    await store.delete(["functions/a.js", "functions/never-there.js"])
    await store.delete(["functions/a.js"])
    assert list(own_minio.client().list_objects("code", prefix="functions/")) == []


async def test_outage_is_storage_unavailable_quickly_and_heals(own_minio: MinioServer) -> None:
    store = store_for(own_minio, "code")
    await store.ensure("functions/a.js", b"a", "a")
    own_minio.stop()
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        await store.ensure("functions/b.js", b"b", "b")
    with pytest.raises(StorageUnavailable):
        await store.delete(["functions/a.js"])
    assert time.monotonic() - started < 5
    own_minio.start()
    # a restarted server may still answer "not initialized": that is an outage too, then heals
    deadline = time.monotonic() + 15
    while True:
        try:
            assert await store.ensure("functions/b.js", b"b", "b") is True
            break
        except StorageUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
