"""Where function code comes from: a file, a store directory, or MinIO/S3; with checksums.

The one module that talks to MinIO (through the `minio` client, run on a worker thread so the
event loop never blocks). Used by service.py: single-function mode loads one code object at
start-up, many-function mode loads by key on first use.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path
from typing import Protocol

from vortex_runtime.errors import CodeLoadError, FunctionNotFound, InvalidRequest
from vortex_runtime.settings import MinioSettings

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,250}$")
# The largest code object S3Loader accepts; a bigger one is a CodeLoadError, never truncated.
MAX_CODE_BYTES = 1024 * 1024 + 1024


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify(data: bytes, expected: str | None, where: str) -> str:
    """Decode code bytes, checking them against `expected` (hex SHA-256) when given."""
    if expected:
        actual = sha256_hex(data)
        if actual != expected.lower():
            raise CodeLoadError(
                f"Checksum mismatch for {where}: expected sha256 {expected}, got {actual}"
            )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodeLoadError(f"The code at {where} is not UTF-8: {exc}") from exc


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key.split("/"):
        raise InvalidRequest(f"Invalid function key {key!r}")
    return key


class CodeLoader(Protocol):
    async def load(self, key: str, sha256: str | None = None) -> str: ...


class FileLoader:
    """One code file (single-function mode); the key is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def load(self, key: str = "", sha256: str | None = None) -> str:
        try:
            data = await asyncio.to_thread(self.path.read_bytes)
        except FileNotFoundError as exc:
            raise CodeLoadError(f"Code file {self.path} does not exist") from exc
        except OSError as exc:
            raise CodeLoadError(f"Cannot read code file {self.path}: {exc}") from exc
        return verify(data, sha256, str(self.path))


class StoreLoader:
    """Code files under a directory, by key (local mode writes `<sha256>.js` there)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    async def load(self, key: str, sha256: str | None = None) -> str:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidRequest(f"Invalid function key {key!r}")
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise FunctionNotFound(f"No code stored under {key!r}") from exc
        return verify(data, sha256, key)


class S3Loader:
    """Code objects in a MinIO/S3 bucket, by object key."""

    def __init__(self, settings: MinioSettings) -> None:
        from minio import Minio

        self.bucket = settings.bucket
        self.endpoint = settings.endpoint
        self._client = Minio(
            settings.endpoint,
            access_key=settings.access_key.get_secret_value(),
            secret_key=settings.secret_key.get_secret_value(),
            secure=settings.secure,
        )

    def _get(self, key: str) -> bytes:
        from minio.error import MinioException, S3Error
        from urllib3.exceptions import HTTPError

        try:
            response = self._client.get_object(self.bucket, key)
            try:
                data = bytes(response.read(MAX_CODE_BYTES + 1))
            finally:
                response.close()
                response.release_conn()
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket"):
                raise FunctionNotFound(
                    f"No code object {key!r} in bucket {self.bucket!r} at {self.endpoint}"
                ) from exc
            raise CodeLoadError(f"MinIO refused {key!r}: {exc.code}: {exc.message}") from exc
        except (MinioException, HTTPError, OSError) as exc:
            raise CodeLoadError(f"MinIO at {self.endpoint} is unreachable: {exc}") from exc
        if len(data) > MAX_CODE_BYTES:
            raise CodeLoadError(
                f"The code object s3://{self.bucket}/{key} is over the limit of "
                f"{MAX_CODE_BYTES} bytes"
            )
        return data

    async def load(self, key: str, sha256: str | None = None) -> str:
        data = await asyncio.to_thread(self._get, check_key(key))
        return verify(data, sha256, f"s3://{self.bucket}/{key}")
