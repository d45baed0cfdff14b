"""A small in-memory Kubernetes API server (aiohttp) for the Kubernetes backend's unit tests.

It speaks enough of the real protocol for `kubernetes_asyncio`: namespaced create, get, list
(with equality label selectors), merge-patch, delete, and watch streams that replay from a
resourceVersion and then follow live changes. Tests act as the operator and the kubelet through
`put`/`patch`/`remove`, which emit watch events like the real server.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections import defaultdict
from functools import partial
from typing import Any

from aiohttp import web

_PATH = re.compile(
    r"^(?P<prefix>/api/v1|/apis/[^/]+/[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>status))?$"
)


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


def _newer(history: list[tuple[int, str, dict[str, Any]]], version: int) -> bool:
    return bool(history) and history[-1][0] > version


class FakeKube:
    """State and HTTP handlers of the fake API server."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.events: dict[str, list[tuple[int, str, dict[str, Any]]]] = defaultdict(list)
        self.version = 0
        self.url = ""
        self.requests: list[tuple[str, str]] = []
        self.fail: dict[tuple[str, str], int] = {}
        self._changed = asyncio.Condition()
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    # helpers for tests (the operator's and the kubelet's side)

    @staticmethod
    def key(prefix: str, namespace: str, plural: str) -> str:
        return f"{prefix}/namespaces/{namespace}/{plural}"

    async def put(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        name = meta["name"]
        event = "MODIFIED" if name in self.objects[collection] else "ADDED"
        meta.setdefault("creationTimestamp", "2024-01-01T00:00:00Z")
        meta.setdefault("namespace", collection.split("/namespaces/")[1].split("/")[0])
        await self._emit(collection, event, obj)
        return obj

    async def patch(self, collection: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        obj = merge(copy.deepcopy(self.objects[collection][name]), patch)
        await self._emit(collection, "MODIFIED", obj)
        return obj

    async def remove(self, collection: str, name: str) -> dict[str, Any] | None:
        obj = self.objects[collection].get(name)
        if obj is not None:
            await self._emit(collection, "DELETED", obj)
        return obj

    async def _emit(self, collection: str, event: str, obj: dict[str, Any]) -> None:
        async with self._changed:
            self.version += 1
            obj["metadata"]["resourceVersion"] = str(self.version)
            name = obj["metadata"]["name"]
            if event == "DELETED":
                self.objects[collection].pop(name, None)
            else:
                self.objects[collection][name] = obj
            self.events[collection].append((self.version, event, copy.deepcopy(obj)))
            self._changed.notify_all()

    # HTTP

    async def handle(self, request: web.Request) -> web.StreamResponse:
        match = _PATH.match(request.path)
        if match is None:
            return _status(404, "NotFound", f"no route {request.path}")
        collection = self.key(match["prefix"], match["ns"], match["plural"])
        name = match["name"]
        self.requests.append((request.method, request.path_qs))
        failure = self.fail.pop((request.method, match["plural"]), None)
        if failure is not None:
            return _status(failure, "Injected", "injected failure")
        items = self.objects[collection]
        if request.method == "GET" and name is None:
            selector = request.query.get("labelSelector")
            if request.query.get("watch") in ("true", "1", "True"):
                return await self._watch(request, collection, selector)
            listed = [o for o in items.values() if _selected(o, selector)]
            meta = {"resourceVersion": str(self.version)}
            return web.json_response({"kind": "List", "items": listed, "metadata": meta})
        if request.method == "POST" and name is None:
            obj = await request.json()
            obj_name = obj.get("metadata", {}).get("name")
            if obj_name in items:
                return _status(409, "AlreadyExists", f"{obj_name} already exists")
            obj.setdefault("metadata", {}).setdefault("uid", f"uid-{obj_name}")
            return web.json_response(await self.put(collection, obj), status=201)
        if name is None or (name not in items and request.method != "POST"):
            return _status(404, "NotFound", f"{match['plural']} {name!r} not found")
        if request.method == "GET":
            return web.json_response(items[name])
        if request.method == "PATCH":
            return web.json_response(await self.patch(collection, name, await request.json()))
        if request.method == "DELETE":
            return web.json_response(await self.remove(collection, name))
        return _status(405, "MethodNotAllowed", request.method)

    async def _watch(
        self, request: web.Request, collection: str, selector: str | None
    ) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion") or self.version)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        sent = since
        history = self.events[collection]
        while True:
            after = sent
            async with self._changed:
                await self._changed.wait_for(partial(_newer, history, after))
                pending = [e for e in history if e[0] > after]
            for version, event, obj in pending:
                sent = version
                if _selected(obj, selector):
                    line = json.dumps({"type": event, "object": obj}) + "\n"
                    await response.write(line.encode())

    async def wait_for(self, predicate: Any, timeout_s: float = 5.0) -> None:
        """Wait until `predicate()` holds after some change (or already holds)."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(predicate)
