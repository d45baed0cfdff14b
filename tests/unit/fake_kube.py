"""A small in-memory Kubernetes API server (aiohttp) for the API's and the operator's unit tests.

Both suites reach it through the real `vortex_kube.client.KubeApi`, so it speaks enough of the
REST protocol for `kubernetes_asyncio`: namespaced create, get, list (with equality and bare-key
label selectors), watch streams that replay from a resourceVersion and then follow live changes,
server-side apply (create if missing; `metadata.generation` bumps when the content outside
metadata and status or the labels change), merge patch, merge patch of a VortexFunction's
`/status`, merge patch of `/scale` (spec.replicas), replace with a resourceVersion
compare-and-swap (409) and delete (404 when missing).

Tests act as the other side of the cluster through helpers that emit watch events like the real
server: `put`/`patch`/`remove` (the operator and the kubelet, for the API's tests),
`set_deployment_status`, `delete` and `config_map` (the Deployment controller and users, for the
operator's); `write_log` and `end_logs` play the kubelet's side of `pods/log` (a container's log,
its previous instance's, `sinceTime` to the second, `follow`), `log_failures` makes a pod's log
answer an HTTP status and `log_hangs` makes it never answer; `log_streams` counts followed logs
still open. `calls` logs requests as (op, kind, name), e.g. ("apply", "Deployment", "vf-x").
Failures are injected per (method, plural) in `fail` (the next such request answers that HTTP
status) and `drop` (the next N such requests lose their connection: `Unavailable(0)`; aiohttp
retries GET, PUT and DELETE once on a reused connection, so those take two), by `fail_applies`
(the next N server-side applies, of any kind, lose their connection), `refuse` (applies of those
objects answer 422 until a merge patch overwrites them) and `missing_functions` (status patches
answer 404). `serve()` runs it on 127.0.0.1 for a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from vortex_kube.client import path_of

_PATH = re.compile(
    r"^(?P<prefix>/api/v1|/apis/[^/]+/[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>status|scale|log))?$"
)
_KINDS = (
    "Pod",
    "Service",
    "Secret",
    "ConfigMap",
    "Deployment",
    "EndpointSlice",
    "NetworkPolicy",
    "Lease",
    "VortexFunction",
)
_KIND_OF = {path_of(kind, "ns").rsplit("/", 1)[1]: kind for kind in _KINDS}
_APPLY = "application/apply-patch+yaml"
_CONTENT_SKIP = ("metadata", "status")
# What the server keeps of a stored object when a client writes the whole object again.
_SERVER_META = ("uid", "creationTimestamp", "namespace")

History = list[tuple[int, str, dict[str, Any]]]


def merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
            "message": message, "code": code}  # fmt: skip
    return web.json_response(body, status=code)


def _selected(obj: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if (value and labels.get(key) != value) or (not value and key not in labels):
            return False
    return True


def _newer(history: History, version: int) -> bool:
    return bool(history) and history[-1][0] > version


def _content(obj: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """What a generation counts: everything but metadata and status, and the labels."""
    rest = {k: v for k, v in obj.items() if k not in _CONTENT_SKIP}
    return rest, (obj.get("metadata") or {}).get("labels") or {}


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a write changed nothing (the resourceVersion aside)."""

    def bare(obj: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "resourceVersion"}
        return {**obj, "metadata": meta}

    return bare(old) == bare(new)


def _op(method: str, name: str | None, sub: str | None, content_type: str, body: Any) -> str:
    """The `KubeApi` call a request stands for (`merge_spec`: a merge patch of labels and spec)."""
    if method == "GET":
        return "get" if name else "list"
    if method == "PATCH":
        if content_type == _APPLY:
            return "apply"
        if sub == "status":
            return "patch_status"
        if sub == "scale":
            return "patch_scale"
        meta = body.get("metadata") if isinstance(body, dict) else None
        spec_only = isinstance(body, dict) and set(body) <= {"metadata", "spec"}
        if spec_only and (meta is None or set(meta) <= {"labels"}):
            return "merge_spec"
        return "merge_patch"
    return {"POST": "create", "PUT": "replace", "DELETE": "delete"}.get(method, method.lower())


class FakeKube:
    """State and HTTP handlers of the fake API server."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.events: dict[str, History] = defaultdict(list)
        self.version = 0
        self.url = ""
        self.requests: list[tuple[str, str]] = []
        self.calls: list[tuple[str, str, str]] = []
        self.fail: dict[tuple[str, str], int] = {}
        self.drop: dict[tuple[str, str], int] = {}
        self.fail_applies = 0
        self.refuse: set[tuple[str, str, str]] = set()
        self.missing_functions: set[tuple[str, str]] = set()
        # Operator tests hand the controller function bodies that were never created here: with
        # this set, a status patch of such a function creates it (unless in missing_functions).
        self.implicit_functions = False
        # pods/log: (namespace, pod, previous) -> [(written at, line)], and who is following.
        self.pod_logs: dict[tuple[str, str, bool], list[tuple[float, bytes]]] = defaultdict(list)
        self.ended_logs: set[tuple[str, str]] = set()
        self.log_failures: dict[str, int] = {}
        self.log_hangs: set[str] = set()
        self.log_streams = 0
        self._changed = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    # helpers for tests (the operator's, the kubelet's and the Deployment controller's side)

    @staticmethod
    def key(prefix: str, namespace: str, plural: str) -> str:
        return f"{prefix}/namespaces/{namespace}/{plural}"

    @staticmethod
    def collection(kind: str, namespace: str) -> str:
        return path_of(kind, namespace)

    async def put(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        return self._put(collection, obj)

    async def patch(self, collection: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        obj = merge(copy.deepcopy(self.objects[collection][name]), patch)
        self._emit(collection, "MODIFIED", obj)
        return obj

    async def remove(self, collection: str, name: str) -> dict[str, Any] | None:
        obj = self.objects[collection].get(name)
        if obj is not None:
            self._emit(collection, "DELETED", obj)
        return obj

    async def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Someone else deleted the object (kubectl delete)."""
        return await self.remove(self.collection(kind, namespace), name) is not None

    def obj(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """The object as stored (edits to it are edits behind the client's back)."""
        return self.objects[self.collection(kind, namespace)][name]

    def find(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects[self.collection(kind, namespace)].get(name)

    def children(self) -> set[tuple[str, str, str]]:
        """(kind, namespace, name) of every object but VortexFunctions and ConfigMaps."""
        found = set()
        for collection, items in self.objects.items():
            match = _PATH.match(collection)
            assert match is not None
            kind = _KIND_OF.get(match["plural"], match["plural"])
            if kind not in ("VortexFunction", "ConfigMap"):
                found |= {(kind, match["ns"], name) for name in items}
        return found

    @property
    def statuses(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(namespace, name) -> status of every stored VortexFunction (copies)."""
        result = {}
        for collection, items in self.objects.items():
            match = _PATH.match(collection)
            if match is not None and _KIND_OF.get(match["plural"]) == "VortexFunction":
                for name, obj in items.items():
                    result[(match["ns"], name)] = copy.deepcopy(obj.get("status") or {})
        return result

    def applied(self, kind: str) -> list[str]:
        """Names of the objects of `kind` the client applied (refused ones included), in order."""
        return [name for op, k, name in self.calls if op == "apply" and k == kind]

    def config_map(self, namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
        return self._put(self.collection("ConfigMap", namespace), body)

    def set_deployment_status(self, namespace: str, name: str, **status: Any) -> dict[str, Any]:
        """Pretend the Deployment controller caught up: returns the Deployment as watched."""
        collection = self.collection("Deployment", namespace)
        dep = copy.deepcopy(self.objects[collection][name])
        dep["status"] = {"observedGeneration": dep["metadata"]["generation"], **status}
        self._emit(collection, "MODIFIED", dep)
        return copy.deepcopy(dep)

    async def wait_for(self, predicate: Callable[[], Any], timeout_s: float = 5.0) -> None:
        """Wait until `predicate()` holds after some change (or already holds)."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await self._changed.wait()

    def write_log(
        self, namespace: str, pod: str, *lines: bytes, previous: bool = False, at: float = 0
    ) -> None:
        """The container writes `lines` (each gets a newline) at `at` (default: now)."""
        written = at or time.time()
        self.pod_logs[(namespace, pod, previous)].extend((written, line) for line in lines)
        self._changed.set()
        self._changed = asyncio.Event()

    def end_logs(self, namespace: str, pod: str) -> None:
        """The container stopped: followed logs of the pod end."""
        self.ended_logs.add((namespace, pod))
        self._changed.set()
        self._changed = asyncio.Event()

    # state changes

    def _put(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        name = meta["name"]
        event = "MODIFIED" if name in self.objects[collection] else "ADDED"
        meta.setdefault("creationTimestamp", "2024-01-01T00:00:00Z")
        meta.setdefault("namespace", collection.split("/namespaces/")[1].split("/")[0])
        self._emit(collection, event, obj)
        return obj

    def _emit(self, collection: str, event: str, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        name = obj["metadata"]["name"]
        if event == "DELETED":
            self.objects[collection].pop(name, None)
        else:
            self.objects[collection][name] = obj
        self.events[collection].append((self.version, event, copy.deepcopy(obj)))
        self._changed.set()
        self._changed = asyncio.Event()

    def _write(self, collection: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """Store `new` (the whole object, from a client) over `old`, as the API server would."""
        meta = new.setdefault("metadata", {})
        old_meta = old["metadata"]
        for key in _SERVER_META:
            if key in old_meta:
                meta[key] = old_meta[key]
        if "generation" in old_meta:
            changed = _content(old) != _content(new)
            meta["generation"] = old_meta["generation"] + (1 if changed else 0)
        else:
            meta.pop("generation", None)
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        new.pop("status", None)
        if "status" in old:
            new["status"] = old["status"]
        if not _same(old, new):
            self._emit(collection, "MODIFIED", new)
        return new

    def _apply(self, collection: str, namespace: str, name: str, body: Any) -> web.Response:
        kind = _KIND_OF.get(collection.rsplit("/", 1)[1], "")
        if (kind, namespace, name) in self.refuse:
            return _status(422, "Invalid", 'spec.ports[1].name: Duplicate value: "http"')
        old = self.objects[collection].get(name)
        new = copy.deepcopy(body)
        if old is None:
            meta = new.setdefault("metadata", {})
            meta.update(name=name, generation=1, uid=f"uid-{kind}-{name}")
            new.pop("status", None)
            return web.json_response(self._put(collection, new), status=201)
        return web.json_response(self._write(collection, old, new))

    def _merge(self, collection: str, namespace: str, name: str, body: Any) -> web.Response:
        kind = _KIND_OF.get(collection.rsplit("/", 1)[1], "")
        old = self.objects[collection][name]
        new = merge(copy.deepcopy(old), body)
        self.refuse.discard((kind, namespace, name))
        return web.json_response(self._write(collection, old, new))

    def _patch_status(self, collection: str, namespace: str, name: str, body: Any) -> web.Response:
        items, plural = self.objects[collection], collection.rsplit("/", 1)[1]
        implicit = self.implicit_functions and _KIND_OF.get(plural) == "VortexFunction"
        if (namespace, name) in self.missing_functions or (name not in items and not implicit):
            return _status(404, "NotFound", f"{plural} {name!r} not found")
        if name not in items:
            stub = {"apiVersion": "vortex.dev/v1alpha1", "kind": "VortexFunction",
                    "metadata": {"name": name, "generation": 1, "uid": f"uid-{name}"}}  # fmt: skip
            self._put(collection, stub)
        obj = copy.deepcopy(items[name])
        obj["status"] = merge(obj.get("status") or {}, (body or {}).get("status") or {})
        if not _same(items[name], obj):
            self._emit(collection, "MODIFIED", obj)
        return web.json_response(items[name])

    def _patch_scale(self, collection: str, name: str, body: Any) -> web.Response:
        old = self.objects[collection][name]
        new = copy.deepcopy(old)
        new.setdefault("spec", {})["replicas"] = int(body["spec"]["replicas"])
        stored = self._write(collection, old, new)
        scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": name},
                 "spec": {"replicas": stored["spec"]["replicas"]}}  # fmt: skip
        return web.json_response(scale)

    def _replace(self, collection: str, name: str, body: Any) -> web.Response:
        old = self.objects[collection][name]
        wanted = ((body or {}).get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != old["metadata"].get("resourceVersion"):
            return _status(409, "Conflict", f"{name}: the object has been modified")
        return web.json_response(self._write(collection, old, copy.deepcopy(body)))

    # HTTP

    def _dropped(self, key: tuple[str, str], op: str) -> bool:
        if self.drop.get(key):
            self.drop[key] -= 1
            return True
        if op == "apply" and self.fail_applies:
            self.fail_applies -= 1
            return True
        return False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        match = _PATH.match(request.path)
        if match is None:
            return _status(404, "NotFound", f"no route {request.path}")
        collection = self.key(match["prefix"], match["ns"], match["plural"])
        name, plural, namespace = match["name"], match["plural"], match["ns"]
        self.requests.append((request.method, request.path_qs))
        text = await request.text() if request.can_read_body else ""
        body = json.loads(text) if text else None
        content_type = request.headers.get("Content-Type", "")
        watch = request.query.get("watch") in ("true", "1", "True")
        op = "watch" if watch else _op(request.method, name, match["sub"], content_type, body)
        if request.method == "POST":
            name = ((body or {}).get("metadata") or {}).get("name")
        self.calls.append((op, _KIND_OF.get(plural, plural), name or ""))
        if self._dropped((request.method, plural), op):
            assert request.transport is not None
            request.transport.abort()  # the client sees the connection drop, no answer
            return web.Response(status=503)
        failure = self.fail.pop((request.method, plural), None)
        if failure is not None:
            return _status(failure, "Injected", "injected failure")
        items = self.objects[collection]
        if match["sub"] == "log":
            if name not in items:
                return _status(404, "NotFound", f"pods {name!r} not found")
            return await self._log(request, namespace, name)
        if request.method == "GET" and match["name"] is None:
            selector = request.query.get("labelSelector")
            if watch:
                return await self._watch(request, collection, selector)
            listed = [o for o in items.values() if _selected(o, selector)]
            meta = {"resourceVersion": str(self.version)}
            return web.json_response({"kind": "List", "items": listed, "metadata": meta})
        if request.method == "POST" and match["name"] is None:
            obj = body or {}
            if name in items:
                return _status(409, "AlreadyExists", f"{name} already exists")
            meta = obj.setdefault("metadata", {})
            meta.setdefault("uid", f"uid-{name}")
            meta.setdefault("generation", 1)
            return web.json_response(self._put(collection, obj), status=201)
        if name is None:
            return _status(405, "MethodNotAllowed", f"{request.method} of a collection")
        if op == "apply":
            return self._apply(collection, namespace, name, body)
        if op == "patch_status":
            return self._patch_status(collection, namespace, name, body)
        if name not in items:
            return _status(404, "NotFound", f"{plural} {name!r} not found")
        if request.method == "GET":
            return web.json_response(items[name])
        if op == "patch_scale":
            return self._patch_scale(collection, name, body or {})
        if request.method == "PATCH":
            return self._merge(collection, namespace, name, body or {})
        if request.method == "PUT":
            return self._replace(collection, name, body)
        if request.method == "DELETE":
            return web.json_response(await self.remove(collection, name))
        return _status(405, "MethodNotAllowed", request.method)

    async def _log(self, request: web.Request, namespace: str, pod: str) -> web.StreamResponse:
        if pod in self.log_hangs:
            await asyncio.sleep(3600)
        failure = self.log_failures.get(pod)
        if failure is not None:
            return _status(failure, "Injected", f"injected failure of the log of {pod}")
        previous = request.query.get("previous") == "true"
        key = (namespace, pod, previous)
        if previous and key not in self.pod_logs:
            return _status(400, "BadRequest", f"previous terminated container of {pod} not found")
        since = 0.0
        if "sinceTime" in request.query:
            since = datetime.fromisoformat(request.query["sinceTime"]).timestamp()
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        sent = 0
        follow = request.query.get("follow") == "true"
        self.log_streams += follow
        try:
            while True:
                lines = self.pod_logs[key]
                fresh = [line for written, line in lines[sent:] if written >= since]
                sent = len(lines)
                if fresh:
                    await response.write(b"".join(line + b"\n" for line in fresh))
                if not follow or (namespace, pod) in self.ended_logs:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)
                if request.transport is None or request.transport.is_closing():
                    break
        finally:
            self.log_streams -= follow
        return response

    async def _watch(
        self, request: web.Request, collection: str, selector: str | None
    ) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion") or self.version)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        sent = since
        history = self.events[collection]
        while True:
            while not _newer(history, sent):
                await self._changed.wait()
            pending = [e for e in history if e[0] > sent]
            for version, event, obj in pending:
                sent = version
                if _selected(obj, selector):
                    line = json.dumps({"type": event, "object": obj}) + "\n"
                    await response.write(line.encode())


@contextlib.asynccontextmanager
async def serve() -> AsyncIterator[FakeKube]:
    """A `FakeKube` listening on 127.0.0.1 (its `url`) until the block ends."""
    fake = FakeKube()
    runner = web.AppRunner(fake.app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield fake
    finally:
        await runner.cleanup()
