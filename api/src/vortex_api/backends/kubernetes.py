"""The Kubernetes backend: functions are `VortexFunction` objects, executions go to runtime pods.

Deploy creates (or, for an existing name, patches) the VortexFunction; the operator stores the code
and runs the warm Deployment and Service `vf-<name>`. Two informers keep memory current without
per-request lookups: VortexFunctions (the function cache) and the EndpointSlices of `vf-*`
Services (the routing table, group = function name). Warm executions go through the shared
`Invoker` (least in-flight, bounded wait for the first ready pod, retry elsewhere only on connect
errors); `isolation: pod` functions run in a one-shot Pod each (`PodRunner`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from vortex_api.errors import (
    ApiError,
    FunctionNotFound,
    FunctionNotRunnable,
    InternalError,
    StorageUnavailable,
    from_kube,
)
from vortex_api.fasthttp import FastTransport
from vortex_api.functions import Function
from vortex_api.informer import Informer
from vortex_api.invoker import Invocation, InvocationResult, Invoker
from vortex_api.k8s_objects import (
    STORAGE_UNAVAILABLE,
    function_body,
    function_from_object,
    function_patch,
    slice_endpoints,
)
from vortex_api.models import DeployRequest
from vortex_api.pod_runner import PodRunner
from vortex_api.routing import EndpointTable
from vortex_api.settings import Settings
from vortex_api.transport import RuntimeTransport
from vortex_kube.client import KubeApi
from vortex_kube.contract import API, FUNCTION_APP, FUNCTION_LABEL, KIND, NAME_LABEL
from vortex_kube.errors import Conflict, KubeError

log = logging.getLogger("vortex_api.kubernetes")

_SYNC_TIMEOUT_S = 30.0


# The EndpointSlice controller copies a Service's labels to its slices: only functions' slices.
SLICE_SELECTOR = f"{NAME_LABEL}={FUNCTION_APP},{FUNCTION_LABEL}"


class KubernetesBackend:
    """Functions as VortexFunction objects in one namespace."""

    def __init__(
        self,
        settings: Settings,
        transport: RuntimeTransport | None = None,
        kube: KubeApi | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport or FastTransport()
        self.kube = kube
        self.namespace = settings.namespace
        self.table = EndpointTable(on_remove=self.transport.forget)
        self.functions: dict[str, Function] = {}
        self.invoker = Invoker(
            self.transport,
            self.table,
            grace_ms=settings.timeout_grace_ms,
            readiness_wait_s=settings.readiness_wait_s,
            retry_after_s=settings.retry_after_s,
        )
        self._slices: dict[str, tuple[str, list[str]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._informers: list[Informer] = []
        self.pods: PodRunner | None = None

    # lifecycle

    async def start(self) -> None:
        if self.kube is None:
            self.kube = await KubeApi.connect(API)
        self.pods = PodRunner(self.kube, self.transport, self.settings)
        ns = self.namespace
        self._informers = [
            Informer(self.kube, KIND, ns, self._reset_functions, self._function_event),
            Informer(
                self.kube,
                "EndpointSlice",
                ns,
                self._reset_slices,
                self._slice_event,
                SLICE_SELECTOR,
            ),
        ]
        self._tasks = [asyncio.create_task(i.run()) for i in self._informers]
        try:
            async with asyncio.timeout(_SYNC_TIMEOUT_S):
                await asyncio.gather(*(i.synced.wait() for i in self._informers))
        except TimeoutError:
            log.warning("Kubernetes caches not synced in %ss; serving anyway", _SYNC_TIMEOUT_S)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.pods is not None:
            await self.pods.drain()
        await self.transport.aclose()
        if self.kube is not None:
            await self.kube.close()

    def ready(self) -> bool:
        return all(i.synced.is_set() for i in self._informers) and bool(self._informers)

    # function cache

    def _store(self, obj: dict[str, Any]) -> Function | None:
        try:
            function = function_from_object(obj, self.settings)
        except (TypeError, ValueError) as exc:
            log.warning("ignoring malformed VortexFunction: %s", exc)
            return None
        self.functions[function.function_id] = function
        return function

    def _reset_functions(self, items: list[dict[str, Any]]) -> None:
        self.functions.clear()
        for obj in items:
            self._store(obj)

    def _function_event(self, event_type: str, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            self.functions.pop(str((obj.get("metadata") or {}).get("name")), None)
        elif event_type in ("ADDED", "MODIFIED"):
            self._store(obj)

    # routing table

    def _reset_slices(self, items: list[dict[str, Any]]) -> None:
        old = {fn for fn, _ in self._slices.values()}
        self._slices.clear()
        for obj in items:
            self._slice_event("ADDED", obj)
        for fn in old - {fn for fn, _ in self._slices.values()}:
            self.table.replace(fn, [])

    def _slice_event(self, event_type: str, obj: dict[str, Any]) -> None:
        slice_name = str((obj.get("metadata") or {}).get("name"))
        previous = self._slices.pop(slice_name, None)
        function_id, urls = slice_endpoints(obj, self.settings.runtime_port)
        if event_type != "DELETED" and function_id is not None:
            self._slices[slice_name] = (function_id, urls)
        for fn in {f for f in (function_id, previous[0] if previous else None) if f}:
            merged = [u for f, us in self._slices.values() if f == fn for u in us]
            self.table.replace(fn, merged)

    def _not_runnable(
        self, function_id: str, reason: str, message: str, extra: dict[str, Any]
    ) -> ApiError:
        if reason == STORAGE_UNAVAILABLE:
            return StorageUnavailable(
                f"the code of {function_id!r} cannot be stored: {message}",
                retry_after_s=self.settings.retry_after_s,
            )
        return FunctionNotRunnable(
            f"function {function_id!r} cannot run: {message}", error_type=reason, **extra
        )

    # Backend

    def _client(self) -> KubeApi:
        if self.kube is None:
            raise InternalError("the Kubernetes backend is not started")
        return self.kube

    async def deploy(self, request: DeployRequest) -> Function:
        kube = self._client()
        name = request.name or str(uuid.uuid4())
        try:
            try:
                obj = await kube.create(function_body(name, self.namespace, request, self.settings))
            except Conflict:
                if request.name is None:
                    raise
                patch = function_patch(request, self.settings)
                obj = await kube.merge_patch(KIND, self.namespace, name, patch)
        except KubeError as exc:
            raise from_kube(exc) from exc
        obj.setdefault("metadata", {}).setdefault("name", name)
        function = self._store(obj)
        if function is None:
            raise InternalError("the Kubernetes API returned a malformed VortexFunction")
        return function

    async def resolve(self, function_id: str) -> Function:
        function = self.functions.get(function_id)
        if function is not None:
            return function
        # Not (yet) seen by the watch: ask once.
        try:
            obj = await self._client().get(KIND, self.namespace, function_id)
        except KubeError as exc:
            raise from_kube(exc, function_id) from exc
        if obj is None:
            raise FunctionNotFound(function_id)
        function = self._store(obj)
        if function is None:
            raise FunctionNotFound(function_id)
        return function

    async def list(self) -> list[Function]:
        return [self.functions[k] for k in sorted(self.functions)]

    async def delete(self, function_id: str) -> None:
        try:
            found = await self._client().delete(KIND, self.namespace, function_id)
        except KubeError as exc:
            raise from_kube(exc, function_id) from exc
        self.functions.pop(function_id, None)
        if not found:
            raise FunctionNotFound(function_id)

    async def invoke(self, function: Function, invocation: Invocation) -> InvocationResult:
        if function.blocked is not None:
            raise self._not_runnable(function.function_id, *function.blocked)
        if function.isolation == "pod":
            assert self.pods is not None
            return await self.pods.run(function, invocation)
        return await self.invoker.invoke(function.function_id, "/invoke", function, invocation)
