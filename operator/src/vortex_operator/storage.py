"""Code objects in MinIO: the one module that imports `minio`.

`CodeStore.ensure` stores code under its content-addressed key (`functions/<sha256>.js`) unless it
is already there, `read` fetches a `codeRef.s3` object, `delete` removes objects. The client gets
short timeouts and no retries of its own: the controller decides when to try again, so an outage
shows up within seconds as `StorageUnavailable`. Blocking calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from typing import TypeVar

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from vortex_operator.errors import ObjectMissing, StorageError, StorageUnavailable
from vortex_operator.settings import Settings

log = logging.getLogger("vortex_operator.storage")

T = TypeVar("T")
_MISSING = ("NoSuchKey", "NoSuchObject", "ResourceNotFound")
# answers of a server that is starting or overloaded: try again later, like an outage
_TRANSIENT = ("XMinioServerNotInitialized", "ServiceUnavailable", "SlowDown", "RequestTimeout")


class CodeStore:
    """The code bucket, written by the operator."""

    def __init__(self, settings: Settings, client: Minio | None = None) -> None:
        self.bucket = settings.minio.bucket
        self.timeout_s = settings.storage_timeout_s
        self._bucket_ready = False
        self.client = client or Minio(
            settings.minio.endpoint,
            access_key=settings.minio.access_key.get_secret_value(),
            secret_key=settings.minio.secret_key.get_secret_value(),
            secure=settings.minio.secure,
            http_client=urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=min(2.0, self.timeout_s), read=self.timeout_s),
                retries=urllib3.Retry(total=0, connect=0, read=0, redirect=0),
                maxsize=8,
            ),
        )

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            async with asyncio.timeout(self.timeout_s * 2):
                return await asyncio.to_thread(fn)
        except TimeoutError as exc:
            raise StorageUnavailable(f"MinIO did not answer {what} in time") from exc
        except S3Error as exc:
            if exc.code in _MISSING:
                raise ObjectMissing(f"{what}: no such object") from exc
            if exc.code in _TRANSIENT:
                raise StorageUnavailable(f"MinIO is not ready ({what}): {exc.code}") from exc
            raise StorageError(f"MinIO refused {what}: {exc.code}: {exc.message}") from exc
        except (ServerError, InvalidResponseError) as exc:
            raise StorageUnavailable(f"MinIO failed {what}: {exc}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageUnavailable(f"MinIO is unreachable ({what}): {_reason(exc)}") from exc
        except MinioException as exc:
            raise StorageError(f"MinIO error ({what}): {exc}") from exc

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        if not self.client.bucket_exists(self.bucket):
            try:
                self.client.make_bucket(self.bucket)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        self._bucket_ready = True

    def _put_if_missing(self, key: str, data: bytes, sha256: str) -> bool:
        try:
            stat = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                self._bucket_ready = False
            elif exc.code not in _MISSING:
                raise
        else:
            if stat.size == len(data):
                return False
        self._ensure_bucket()
        self.client.put_object(
            self.bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type="application/javascript",
            metadata={"sha256": sha256},
        )
        return True

    async def ensure(self, key: str, data: bytes, sha256: str) -> bool:
        """Store `data` under `key` unless it is there; True if it was uploaded now."""
        return await self._call(f"storing {key}", lambda: self._put_if_missing(key, data, sha256))

    def _read(self, bucket: str, key: str, limit: int) -> bytes:
        response = self.client.get_object(bucket, key)
        try:
            return bytes(response.read(limit + 1))
        finally:
            response.close()
            response.release_conn()

    async def read(self, bucket: str | None, key: str, limit: int) -> bytes:
        """The bytes of an object (at most `limit` + 1, so callers can tell it is too big)."""
        where = f"{bucket or self.bucket}/{key}"
        return await self._call(
            f"reading {where}", lambda: self._read(bucket or self.bucket, key, limit)
        )

    def _delete(self, key: str) -> None:
        try:
            self.client.remove_object(self.bucket, key)
        except S3Error as exc:
            if exc.code not in (*_MISSING, "NoSuchBucket"):
                raise

    async def delete(self, keys: list[str]) -> None:
        """Remove the objects (missing ones are fine)."""
        for key in keys:
            await self._call(f"deleting {key}", lambda key=key: self._delete(key))  # type: ignore[misc]


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc.__class__.__name__)
