"""In-memory stand-ins for the operator's two clients (Kubernetes and MinIO), for unit tests.

`FakeKube` stores applied objects like an API server would for server-side apply: it bumps
`metadata.generation` when a Deployment's spec changes and `resourceVersion` on every change, and
keeps status patches. `FakeStore` is a dict of objects that can be switched "down".
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from vortex_operator.errors import KubeError, ObjectMissing, StorageUnavailable


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.statuses: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.config_maps: dict[tuple[str, str], dict[str, Any]] = {}
        self.missing_functions: set[tuple[str, str]] = set()
        self.fail_applies = 0
        # Objects server-side apply refuses (422) until their spec is overwritten.
        self.refuse: set[tuple[str, str, str]] = set()
        self._versions = itertools.count(100)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("get", kind, name))
        if kind == "ConfigMap":
            return self.config_maps.get((namespace, name))
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found else None

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind, meta = obj["kind"], obj["metadata"]
        self.calls.append(("apply", kind, meta["name"]))
        if self.fail_applies:
            self.fail_applies -= 1
            raise KubeError(0, "connection refused")
        key = (kind, meta["namespace"], meta["name"])
        if key in self.refuse:
            raise KubeError(422, 'spec.ports[1].name: Duplicate value: "http"')
        old = self.objects.get(key)
        new = copy.deepcopy(obj)
        new_meta = new["metadata"]
        if old is None:
            new_meta["generation"] = 1
            new_meta["resourceVersion"] = str(next(self._versions))
            new_meta["uid"] = f"uid-{kind}-{meta['name']}"
        else:
            old_meta = old["metadata"]
            same = {k: v for k, v in old.items() if k not in ("metadata", "status")} == {
                k: v for k, v in new.items() if k not in ("metadata", "status")
            } and old_meta.get("labels") == new_meta.get("labels")
            new_meta["uid"] = old_meta["uid"]
            new_meta["generation"] = old_meta["generation"] + (0 if same else 1)
            new_meta["resourceVersion"] = (
                old_meta["resourceVersion"] if same else str(next(self._versions))
            )
            if "status" in old:
                new["status"] = old["status"]
        self.objects[key] = new
        return copy.deepcopy(new)

    async def merge_spec(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("merge_spec", obj["kind"], obj["metadata"]["name"]))
        key = (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
        self.objects[key]["spec"] = copy.deepcopy(obj["spec"])
        self.objects[key]["metadata"]["resourceVersion"] = str(next(self._versions))
        self.refuse.discard(key)
        return copy.deepcopy(self.objects[key])

    async def delete(self, kind: str, namespace: str, name: str) -> bool:
        self.calls.append(("delete", kind, name))
        return self.objects.pop((kind, namespace, name), None) is not None

    async def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        self.calls.append(("patch_status", "VortexFunction", name))
        if (namespace, name) in self.missing_functions:
            return None
        status = self.statuses.setdefault((namespace, name), {})
        for key, value in patch.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = copy.deepcopy(value)
        return {"status": copy.deepcopy(status)}

    # helpers for tests

    def applied(self, kind: str) -> list[str]:
        return [name for op, k, name in self.calls if op == "apply" and k == kind]

    def obj(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return self.objects[(kind, namespace, name)]

    def set_deployment_status(self, namespace: str, name: str, **status: Any) -> dict[str, Any]:
        """Pretend the Deployment controller caught up: returns the Deployment as watched."""
        dep = self.objects[("Deployment", namespace, name)]
        dep["status"] = {"observedGeneration": dep["metadata"]["generation"], **status}
        dep["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(dep)


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
