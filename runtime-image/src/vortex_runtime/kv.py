"""KV storage for functions (`context.kv`): keyspaces of keys and values, in files or in MinIO.

A keyspace is a function's own (`fn.<function>`) unless its spec names a shared one
(`ns.<namespace>`), so a function and a shared namespace of the same name never meet. Keys are
1 to 512 bytes of UTF-8 and values at most 1 MiB; a value may expire (`ttl_s`). Each write
replaces the whole value in one step (a rename, or one object PUT): a reader sees the old value
or the new one, the last writer wins, and an invocation reads its own writes.

`FileStore` keeps one file per key under a directory (local mode: the data dir, shared by every
worker), `MinioStore` one object per key under `kv/` in the code bucket (the cluster). Both are
synchronous and run on `KV_THREADS` worker threads, never on the event loop. `KVCalls` is what
an isolate's host calls reach (isolate.py: get, put, delete, list), built per invocation by
service.py; server.py's `/kv` routes (the API's `vortex kv` and `?purge=kv`) use the store
directly. The one module besides loader.py that talks to MinIO.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from vortex_runtime.errors import HostCallError, InvalidRequest, KVUnavailable
from vortex_runtime.settings import KV_NAMESPACE_PATTERN, MinioSettings

MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 1024 * 1024
MAX_LIST = 1000
MAX_TTL_S = 10 * 365 * 86_400
KV_THREADS = 8
# A keyspace: `fn.` or `ns.` and a DNS label (function names and namespaces are both).
NAMESPACE = re.compile(KV_NAMESPACE_PATTERN)
SPACE = re.compile(r"^(fn|ns)\." + KV_NAMESPACE_PATTERN[1:])
OBJECT_PREFIX = "kv/"
# MinIO keeps each `/`-separated part of an object name as a file name (at most 255 bytes).
_SEGMENT = 200

_executor = ThreadPoolExecutor(max_workers=KV_THREADS, thread_name_prefix="vortex-kv")
T = TypeVar("T")


def space_of(function: str, namespace: str | None) -> str:
    """The keyspace of a function: a shared namespace if it names one, else its own."""
    return f"ns.{namespace}" if namespace else f"fn.{function}"


def check_space(space: str) -> str:
    if not SPACE.match(space):
        raise InvalidRequest(f"Invalid KV keyspace {space!r}")
    return space


class Unavailable(Exception):
    """The store cannot be reached or refused; the message says which and why."""


@dataclass(frozen=True)
class Entry:
    key: str
    expires_at: float | None


class Store(Protocol):
    def get(self, space: str, key: str) -> bytes | None: ...

    def put(self, space: str, key: str, value: bytes, expires_at: float | None) -> None: ...

    def delete(self, space: str, key: str) -> None: ...

    def list(
        self, space: str, prefix: str, limit: int, after: str | None
    ) -> tuple[list[Entry], str | None]:
        """Up to `limit` live entries with `prefix`, in key order, after the key `after`; and
        the key to continue after, None when there are no more."""
        ...

    def purge(self, space: str) -> int: ...


def _expired(expires_at: float | None, now: float) -> bool:
    return expires_at is not None and expires_at <= now


# ---------------------------------------------------------------------- files (local mode)
class FileStore:
    """`<root>/<space>/<sha-256 of the key>`: a JSON header line (key, expiry), then the value."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, space: str, key: str) -> Path:
        return self.root / space / hashlib.sha256(key.encode()).hexdigest()

    @staticmethod
    def _read(path: Path, with_value: bool) -> tuple[dict[str, Any], bytes] | None:
        try:
            with path.open("rb") as f:
                header = json.loads(f.readline())
                return header, f.read() if with_value else b""
        except (OSError, ValueError):
            return None

    def get(self, space: str, key: str) -> bytes | None:
        found = self._read(self._path(space, key), True)
        if found is None or _expired(found[0].get("expires_at"), time.time()):
            return None
        return found[1]

    def put(self, space: str, key: str, value: bytes, expires_at: float | None) -> None:
        path = self._path(space, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = json.dumps({"key": key, "expires_at": expires_at}).encode() + b"\n"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
        try:
            with tmp.open("wb") as f:
                f.write(header + value)
            os.replace(tmp, path)  # atomic: readers see the old value or the new one
        finally:
            tmp.unlink(missing_ok=True)

    def delete(self, space: str, key: str) -> None:
        self._path(space, key).unlink(missing_ok=True)

    def list(
        self, space: str, prefix: str, limit: int, after: str | None
    ) -> tuple[list[Entry], str | None]:
        now = time.time()
        entries: list[Entry] = []
        try:
            names = [e for e in os.scandir(self.root / space) if not e.name.startswith(".")]
        except FileNotFoundError:
            return [], None
        for item in names:
            found = self._read(Path(item.path), False)
            if found is None:
                continue
            key, expires_at = str(found[0].get("key", "")), found[0].get("expires_at")
            later = after is None or key.encode() > after.encode()
            if key.startswith(prefix) and later and not _expired(expires_at, now):
                entries.append(Entry(key, expires_at))
        entries.sort(key=lambda e: e.key.encode())
        more = len(entries) > limit
        page = entries[:limit]
        return page, (page[-1].key if more and page else None)

    def purge(self, space: str) -> int:
        folder = self.root / space
        count = sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0
        shutil.rmtree(folder, ignore_errors=True)
        return count


# ---------------------------------------------------------------------- MinIO (the cluster)
def _encode(data: bytes) -> str:
    """An object name part for a key's bytes: base32hex (it sorts as the bytes do, and a key's
    prefix of whole 5-byte groups encodes to a prefix), cut into parts of _SEGMENT."""
    text = base64.b32hexencode(data).decode().rstrip("=")
    return "/".join(text[i : i + _SEGMENT] for i in range(0, len(text), _SEGMENT))


def _decode(part: str) -> str:
    text = part.replace("/", "")
    return base64.b32hexdecode(text + "=" * (-len(text) % 8)).decode()


class MinioStore:
    """`kv/<space>/<encoded key>` in the code bucket; expiry in the object's metadata."""

    _META = "expires-at"

    def __init__(self, settings: MinioSettings, timeout_s: float = 5.0) -> None:
        import urllib3
        from minio import Minio

        self.bucket = settings.bucket
        self.endpoint = settings.endpoint
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(2.0, timeout_s), read=timeout_s),
            retries=urllib3.Retry(total=1, backoff_factor=0.1),
            maxsize=KV_THREADS,
        )
        self._client = Minio(
            settings.endpoint,
            access_key=settings.access_key.get_secret_value(),
            secret_key=settings.secret_key.get_secret_value(),
            secure=settings.secure,
            http_client=http,
        )

    def _name(self, space: str, key: str) -> str:
        return f"{OBJECT_PREFIX}{space}/{_encode(key.encode())}"

    def _guard(self, what: Callable[[], T]) -> T:
        from minio.error import MinioException, S3Error
        from urllib3.exceptions import HTTPError

        try:
            return what()
        except S3Error as exc:
            raise Unavailable(f"MinIO refused the request: {exc.code}: {exc.message}") from exc
        except (MinioException, HTTPError, OSError) as exc:
            raise Unavailable(f"MinIO at {self.endpoint} is unreachable: {exc}") from exc

    def get(self, space: str, key: str) -> bytes | None:
        from minio.error import S3Error

        def read() -> bytes | None:
            try:
                response = self._client.get_object(self.bucket, self._name(space, key))
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchBucket"):
                    return None
                raise
            try:
                expires = response.headers.get(f"x-amz-meta-{self._META}")
                if expires and _expired(float(expires), time.time()):
                    return None
                return bytes(response.read(MAX_VALUE_BYTES + 1))
            finally:
                response.close()
                response.release_conn()

        return self._guard(read)

    def put(self, space: str, key: str, value: bytes, expires_at: float | None) -> None:
        import io

        from minio.error import S3Error

        metadata = {self._META: repr(expires_at)} if expires_at is not None else None

        def write() -> None:
            self._client.put_object(
                self.bucket,
                self._name(space, key),
                io.BytesIO(value),
                len(value),
                metadata=metadata,  # type: ignore[arg-type]
            )

        def put() -> None:
            try:
                write()
            except S3Error as exc:
                if exc.code != "NoSuchBucket":
                    raise
                # A MinIO without a volume comes back empty; the operator makes the bucket
                # again only for code it stores, so the first write after that makes it.
                with contextlib.suppress(S3Error):
                    self._client.make_bucket(self.bucket)
                write()

        self._guard(put)

    def delete(self, space: str, key: str) -> None:
        self._guard(lambda: self._client.remove_object(self.bucket, self._name(space, key)))

    def list(
        self, space: str, prefix: str, limit: int, after: str | None
    ) -> tuple[list[Entry], str | None]:
        base = f"{OBJECT_PREFIX}{space}/"
        raw = prefix.encode()
        whole = len(raw) - len(raw) % 5  # the bytes whose encoding a longer key shares
        known = _encode(raw[:whole])
        start_after = self._name(space, after) if after is not None else None

        def page() -> tuple[list[Entry], str | None]:
            now = time.time()
            entries: list[Entry] = []
            objects = self._client.list_objects(
                self.bucket,
                prefix=base + known,
                recursive=True,
                start_after=start_after,
                include_user_meta=True,
            )
            for obj in objects:
                name = obj.object_name or ""
                try:
                    key = _decode(name[len(base) :])
                except ValueError:
                    continue
                if not key.startswith(prefix):
                    continue
                meta = obj.metadata or {}
                expires = next((v for k, v in meta.items() if k.lower().endswith(self._META)), None)
                expires_at = float(expires) if expires else None
                if _expired(expires_at, now):
                    continue
                if len(entries) == limit:
                    return entries, entries[-1].key
                entries.append(Entry(key, expires_at))
            return entries, None

        return self._guard(page)

    def purge(self, space: str) -> int:
        from minio.deleteobjects import DeleteObject

        def remove() -> int:
            names = [
                obj.object_name
                for obj in self._client.list_objects(
                    self.bucket, prefix=f"{OBJECT_PREFIX}{space}/", recursive=True
                )
                if obj.object_name
            ]
            errors = list(
                self._client.remove_objects(self.bucket, (DeleteObject(n) for n in names))
            )
            if errors:
                raise Unavailable(f"MinIO kept {len(errors)} objects: {errors[0]}")
            return len(names)

        return self._guard(remove)


# ---------------------------------------------------------------------- what functions call
def check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise HostCallError("TypeError", "A KV key must be a non-empty string")
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise HostCallError(
            "RangeError", f"The KV key is {size} bytes, over the limit of {MAX_KEY_BYTES} bytes"
        )
    try:
        key.encode()
    except UnicodeEncodeError:
        raise HostCallError("TypeError", "A KV key must be well-formed UTF-16") from None
    return key


def encode_cursor(key: str | None) -> str | None:
    return None if key is None else base64.urlsafe_b64encode(key.encode()).decode()


def decode_cursor(cursor: object) -> str | None:
    if cursor is None or cursor == "":
        return None
    try:
        return base64.b64decode(str(cursor).encode(), altchars=b"-_", validate=True).decode()
    except ValueError:
        raise HostCallError("TypeError", "The KV list cursor is not one list() returned") from None


async def run(store: Store, call: Callable[[], T]) -> T:
    """Run a store call on the KV threads; a store failure is the function's clear error."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_executor, call)
    except Unavailable as exc:
        raise HostCallError("Error", f"KV storage is unavailable: {exc}") from exc
    except OSError as exc:
        raise HostCallError("Error", f"KV storage failed: {exc.strerror or exc}") from exc


class KVCalls:
    """One invocation's `context.kv`: its keyspace in `store` (None: KV is not configured)."""

    def __init__(self, store: Store | None, space: str) -> None:
        self.store = store
        self.space = space

    async def __call__(self, op: str, args: dict[str, Any]) -> tuple[str, str]:
        """Answer one call: (kind, text), kind "null", "text", "bytes" or "json"."""
        store = self.store
        if store is None:
            raise HostCallError("Error", "KV storage is not configured for this runtime")
        space = self.space
        if op == "list":
            return "json", await list_page(store, space, args)
        key = check_key(args.get("key"))
        if op == "get":
            value = await run(store, lambda: store.get(space, key))
            if value is None:
                return "null", ""
            if args.get("type") == "arrayBuffer":
                return "bytes", value.decode("latin-1")
            return "text", value.decode("utf-8", "replace")
        if op == "put":
            data = _value_bytes(args)
            expires_at = _expiry(args.get("ttlSeconds"))
            await run(store, lambda: store.put(space, key, data, expires_at))
            return "null", ""
        if op == "delete":
            await run(store, lambda: store.delete(space, key))
            return "null", ""
        raise HostCallError("TypeError", f"Unknown KV operation {op!r}")


async def list_page(store: Store, space: str, args: dict[str, Any]) -> str:
    """A page of `list()`, checked as a function's call is, as JSON text."""
    prefix = args.get("prefix") or ""
    if not isinstance(prefix, str):
        raise HostCallError("TypeError", "The KV list prefix must be a string")
    limit = args.get("limit", MAX_LIST)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIST:
        raise HostCallError("RangeError", f"The KV list limit must be 1 to {MAX_LIST}")
    after = decode_cursor(args.get("cursor"))
    entries, last = await run(store, lambda: store.list(space, prefix, limit, after))
    return list_json(entries, last)


def list_json(entries: list[Entry], last: str | None) -> str:
    """`list()`'s answer, as Workers KV shapes it: `{keys: [{name, expiration?}],
    list_complete, cursor?}` (expiration in seconds since the epoch)."""
    keys = [
        {"name": e.key, **({"expiration": int(e.expires_at)} if e.expires_at else {})}
        for e in entries
    ]
    body: dict[str, Any] = {"keys": keys, "list_complete": last is None}
    if last is not None:
        body["cursor"] = encode_cursor(last)
    return json.dumps(body, ensure_ascii=False)


def _value_bytes(args: dict[str, Any]) -> bytes:
    value = args.get("value")
    if not isinstance(value, str):
        raise HostCallError("TypeError", "A KV value must be a string, an ArrayBuffer or a view")
    data = value.encode("latin-1") if args.get("binary") else value.encode("utf-8", "replace")
    if len(data) > MAX_VALUE_BYTES:
        raise HostCallError(
            "RangeError",
            f"The KV value is {len(data)} bytes, over the limit of {MAX_VALUE_BYTES} bytes",
        )
    return data


def _expiry(ttl: object) -> float | None:
    if ttl is None:
        return None
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or not 0 < ttl <= MAX_TTL_S:
        raise HostCallError("RangeError", f"ttlSeconds must be above 0 and at most {MAX_TTL_S}")
    return time.time() + float(ttl)


async def admin(store: Store | None, space: str, request: dict[str, Any]) -> dict[str, Any]:
    """One operation of the API's `/kv/{space}` (the CLI, `?purge=kv`): `{"op": "get" | "put" |
    "delete" | "list" | "purge", ...}`, the same checks as a function's calls. A value is text;
    one that is not UTF-8 comes back in base64 (`"encoding": "base64"`)."""
    if store is None:
        raise KVUnavailable("KV storage is not configured for this runtime")
    op = request.get("op")
    if op not in ("get", "put", "delete", "list", "purge"):
        raise InvalidRequest(f"Unknown KV operation {op!r}: get, put, delete, list or purge")
    try:
        if op == "purge":
            return {"purged": await run(store, lambda: store.purge(space))}
        # A function's call, with its checks; a value read back as bytes, to tell text apart.
        args = {**request, "type": "arrayBuffer", "binary": False}
        kind, text = await KVCalls(store, space)(op, args)
    except HostCallError as exc:
        if exc.name == "Error":  # the store, not the request
            raise KVUnavailable(exc.message) from exc
        raise InvalidRequest(exc.message) from exc
    if op == "list":
        page: dict[str, Any] = json.loads(text)
        return page
    key = request["key"]
    if op != "get":
        return {"key": key}
    if kind == "null":
        return {"key": key, "value": None}
    value = text.encode("latin-1")
    try:
        return {"key": key, "value": value.decode()}
    except UnicodeDecodeError:
        return {"key": key, "value": base64.b64encode(value).decode(), "encoding": "base64"}


def store_for(kv_dir: Path | None, minio: MinioSettings | None) -> Store | None:
    """The store a runtime uses: files under `kv_dir` (local mode), else MinIO when it is
    configured (the cluster), else none."""
    if kv_dir is not None:
        return FileStore(kv_dir)
    if minio is not None:
        return MinioStore(minio)
    return None
