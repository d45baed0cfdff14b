"""An in-memory stand-in for the operator's MinIO client, for the operator's unit tests.

`FakeStore` is a dict of objects that can be switched "down". (Kubernetes is served by the shared
fake API server, `tests.unit.fake_kube`, reached through the real client.)
"""

from __future__ import annotations

from vortex_operator.errors import ObjectMissing, StorageUnavailable


class FakeStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.down = False
        self.puts = 0
        self.deleted: list[str] = []

    def _check(self) -> None:
        if self.down:
            raise StorageUnavailable("MinIO is unreachable (storing): connection refused")

    async def ensure(self, key: str, data: bytes, sha256: str) -> bool:
        self._check()
        if key in self.objects:
            return False
        self.objects[key] = data
        self.puts += 1
        return True

    async def read(self, bucket: str | None, key: str, limit: int) -> bytes:
        self._check()
        if key not in self.objects:
            raise ObjectMissing(f"reading {bucket}/{key}: no such object")
        return self.objects[key][: limit + 1]

    async def delete(self, keys: list[str]) -> None:
        self._check()
        for key in keys:
            self.objects.pop(key, None)
            self.deleted.append(key)
