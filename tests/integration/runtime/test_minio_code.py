"""Code objects loaded from a real MinIO server, with checksums, outages and many functions."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fixtures.minio import MinioServer
from vortex_runtime import sha256_hex

pytestmark = pytest.mark.minio

CODE = b"return {from: 's3', event};"


def test_single_function_from_minio_with_checksum(start_runtime, minio_server: MinioServer) -> None:  # type: ignore[no-untyped-def]
    minio_server.put("code-a", "functions/a.js", CODE)
    runtime = start_runtime(
        env={
            **minio_server.env("code-a"),
            "VORTEX_CODE_KEY": "functions/a.js",
            "VORTEX_CODE_SHA256": sha256_hex(CODE),
        }
    )
    runtime.wait_ready()
    body = httpx.post(runtime.url + "/invoke", json=7).json()
    assert body["output"] == {"from": "s3", "event": 7}


def test_checksum_mismatch_keeps_pod_unready(start_runtime, minio_server: MinioServer) -> None:  # type: ignore[no-untyped-def]
    minio_server.put("code-b", "functions/b.js", CODE)
    runtime = start_runtime(
        env={
            **minio_server.env("code-b"),
            "VORTEX_CODE_KEY": "functions/b.js",
            "VORTEX_CODE_SHA256": "0" * 64,
        }
    )
    runtime.wait_listening()
    time.sleep(1)
    ready = httpx.get(runtime.url + "/readyz")
    assert ready.status_code == 503
    assert "Checksum mismatch" in ready.json()["error"]["message"]
    assert "Checksum mismatch" in runtime.log()


def test_missing_object_unready_until_it_is_uploaded(
    start_runtime, minio_server: MinioServer
) -> None:  # type: ignore[no-untyped-def]
    minio_server.make_bucket("code-c")
    runtime = start_runtime(
        env={**minio_server.env("code-c"), "VORTEX_CODE_KEY": "functions/late.js"}
    )
    runtime.wait_listening()
    time.sleep(0.5)
    ready = httpx.get(runtime.url + "/readyz")
    assert ready.status_code == 503
    assert "No code object" in ready.json()["error"]["message"]
    assert "No code object 'functions/late.js'" in runtime.log()
    minio_server.put("code-c", "functions/late.js", b"return 'late'")
    runtime.wait_ready(timeout=40)
    assert httpx.post(runtime.url + "/invoke").json()["output"] == "late"


def test_many_functions_from_bucket(start_runtime, minio_server: MinioServer) -> None:  # type: ignore[no-untyped-def]
    minio_server.put("code-d", f"functions/{sha256_hex(CODE)}.js", CODE)
    minio_server.put("code-d", "functions/other.js", b"export default () => 'other'")
    runtime = start_runtime(env=minio_server.env("code-d"))
    runtime.wait_ready()
    key = f"functions/{sha256_hex(CODE)}.js"
    first = httpx.post(
        f"{runtime.url}/invoke/{key}", json=1, headers={"x-vortex-code-sha256": sha256_hex(CODE)}
    )
    assert first.json()["output"] == {"from": "s3", "event": 1}
    assert httpx.post(f"{runtime.url}/invoke/functions/other.js").json()["output"] == "other"
    missing = httpx.post(f"{runtime.url}/invoke/functions/none.js")
    assert missing.status_code == 404
