"""The Kubernetes backend: functions are `VortexFunction` objects, executions go to runtime pods.

Deploy creates (or, for an existing name, patches) the VortexFunction; the operator stores the code
and, for a warm function, runs the Deployment and Service `vf-<name>`. Three informers keep memory
current without per-request lookups: VortexFunctions (the function cache), the EndpointSlices of
`vf-*` Services (the routing table, group = function name) and those of the pool's Service (group
POOL_GROUP). Executions go through the shared `Invoker`: a shared function to its rendezvous pod of
the pool with `/invoke/<code object>`, spilling to the next pod when that one is busy; a warm one
to its least-busy pod (after a move from shared: to the pool until its first pod is ready); both
retry elsewhere only on connect errors. `isolation: pod` functions run in a one-shot Pod each
(`PodRunner`). Deploying a shared function waits for its code to be stored, then warms it on its
pod; so does every API replica when the operator reports new code for one. Invocation records are
read back from the runtime pods' logs (`PodRecords`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from vortex_api.errors import (
    ApiError,
    BadRequest,
    FunctionNotFound,
    FunctionNotRunnable,
    InternalError,
    NotReady,
    StorageUnavailable,
    from_kube,
)
from vortex_api.fasthttp import FastTransport
from vortex_api.functions import Function
from vortex_api.informer import Informer
from vortex_api.invocation_logs import LogQuery, Record, Records
from vortex_api.invoker import Invocation, InvocationResult, Invoker
from vortex_api.k8s_objects import (
    POOL_GROUP,
    STORAGE_UNAVAILABLE,
    function_body,
    function_from_object,
    function_patch,
    slice_endpoints,
)
from vortex_api.models import DeployRequest
from vortex_api.pod_records import PodRecords
from vortex_api.pod_runner import PodRunner
from vortex_api.rollouts import Tally
from vortex_api.routing import EndpointTable
from vortex_api.settings import Settings
from vortex_api.transport import RuntimeReply, RuntimeTransport
from vortex_kube.client import KubeApi
from vortex_kube.contract import (
    API,
    ENV_NOT_POOLED,
    FUNCTION_APP,
    FUNCTION_LABEL,
    KIND,
    NAME_LABEL,
    ROLLBACK_ANNOTATION,
    SERVICE_NAME_LABEL,
    code_key,
    env_not_pooled,
    rollback_annotation,
)
from vortex_kube.errors import Conflict, KubeError
from vortex_kube.versions import EXECUTION_FIELDS, Traffic

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
        self.tally = Tally()  # executions per version, reported for the operator's rollouts
        self.invoker = Invoker(
            self.transport,
            self.table,
            grace_ms=settings.timeout_grace_ms,
            readiness_wait_s=settings.readiness_wait_s,
            retry_after_s=settings.retry_after_s,
        )
        # Per informer ("functions", "pool"): slice name -> (group, URLs).
        self._slices: dict[str, dict[str, tuple[str, list[str]]]] = {"functions": {}, "pool": {}}
        self._changed: dict[str, asyncio.Event] = {}
        self._warming: set[asyncio.Task[None]] = set()
        self._was_shared: set[str] = set()  # functions seen shared, until a warm pod serves
        self._warmed: dict[str, str] = {}  # function -> the code object last warmed
        self._tasks: list[asyncio.Task[None]] = []
        self._informers: list[Informer] = []
        self.pods: PodRunner | None = None
        self.records: PodRecords | None = None

    # lifecycle

    async def start(self) -> None:
        if self.kube is None:
            self.kube = await KubeApi.connect(API)
        self.pods = PodRunner(self.kube, self.transport, self.settings)
        self.records = PodRecords(
            self.kube,
            self.namespace,
            pool=bool(self.settings.pool_service),
            api_pods=self.settings.api_pods,
        )
        ns = self.namespace
        self._informers = [
            Informer(self.kube, KIND, ns, self._reset_functions, self._function_event),
            Informer(
                self.kube,
                "EndpointSlice",
                ns,
                lambda items: self._reset_slices("functions", items),
                lambda kind, obj: self._slice_event("functions", kind, obj),
                SLICE_SELECTOR,
            ),
        ]
        if self.settings.pool_service:
            self._informers.append(
                Informer(
                    self.kube,
                    "EndpointSlice",
                    ns,
                    lambda items: self._reset_slices("pool", items),
                    lambda kind, obj: self._slice_event("pool", kind, obj),
                    f"{SERVICE_NAME_LABEL}={self.settings.pool_service}",
                )
            )
        self._tasks = [asyncio.create_task(i.run()) for i in self._informers]
        try:
            async with asyncio.timeout(_SYNC_TIMEOUT_S):
                await asyncio.gather(*(i.synced.wait() for i in self._informers))
        except TimeoutError:
            log.warning("Kubernetes caches not synced in %ss; serving anyway", _SYNC_TIMEOUT_S)

    async def stop(self) -> None:
        for task in [*self._tasks, *self._warming]:
            task.cancel()
        for task in [*self._tasks, *self._warming]:
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
        if function.isolation == "shared":
            self._was_shared.add(function.function_id)
        event = self._changed.pop(function.function_id, None)
        if event is not None:
            event.set()
        return function

    def _reset_functions(self, items: list[dict[str, Any]]) -> None:
        self.functions.clear()
        for obj in items:
            self._store(obj)

    def _function_event(self, event_type: str, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            name = str((obj.get("metadata") or {}).get("name"))
            self.functions.pop(name, None)
            self._was_shared.discard(name)
            self._warmed.pop(name, None)
        elif event_type in ("ADDED", "MODIFIED"):
            name = str((obj.get("metadata") or {}).get("name"))
            before = self.functions.get(name)
            function = self._store(obj)
            if function is not None and _newly_pooled(before, function):
                # New code for a shared function (deployed by kubectl, or by any API replica):
                # start its isolate on its pod now, so that its first call is warm.
                task = asyncio.create_task(self._warm(function))
                self._warming.add(task)
                task.add_done_callback(self._warming.discard)

    async def _wait_changed(self, function_id: str, timeout_s: float) -> None:
        """Wait up to `timeout_s` for the next change of the function in the cache."""
        event = self._changed.setdefault(function_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await event.wait()

    # routing table

    def _reset_slices(self, source: str, items: list[dict[str, Any]]) -> None:
        slices = self._slices[source]
        old = {fn for fn, _ in slices.values()}
        slices.clear()
        for obj in items:
            self._slice_event(source, "ADDED", obj)
        for fn in old - {fn for fn, _ in slices.values()}:
            self.table.replace(fn, [])

    def _slice_event(self, source: str, event_type: str, obj: dict[str, Any]) -> None:
        slices = self._slices[source]
        slice_name = str((obj.get("metadata") or {}).get("name"))
        previous = slices.pop(slice_name, None)
        group, urls = slice_endpoints(obj, self.settings.runtime_port, self.settings.pool_service)
        if event_type != "DELETED" and group is not None:
            slices[slice_name] = (group, urls)
        for fn in {f for f in (group, previous[0] if previous else None) if f}:
            merged = [u for f, us in slices.values() if f == fn for u in us]
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
        if function.isolation == "shared":
            function = await self._until_stored(function, self.settings.deploy_wait_s)
            if _pooled_code(function):
                await self._warm(function)
        return function

    async def _until_stored(self, function: Function, timeout_s: float) -> Function:
        """The function once the operator has processed its current spec (its code stored, or
        why not), or as it is after `timeout_s`."""
        return await self._until(
            function,
            lambda f: (
                f.observed_generation >= f.generation
                and (f.code_object is not None or f.blocked is not None)
            ),
            timeout_s,
        )

    async def _until(
        self, function: Function, done: Callable[[Function], bool], timeout_s: float
    ) -> Function:
        """The function once the watch shows it `done`, or as it is after `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        fid = function.function_id
        while not done(function):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await self._wait_changed(fid, remaining)
            function = self.functions.get(fid, function)
        return function

    async def _warm(self, function: Function) -> None:
        """Warm a shared function's code on its pod, once per code object (deploy and the
        watch both ask)."""
        key = function.code_object
        if key is None or self._warmed.get(function.function_id) == key:
            return
        self._warmed[function.function_id] = key
        await self.invoker.warm(POOL_GROUP, f"/warm/{key}", function, sticky=True)

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

    async def rollback(self, function_id: str, number: int) -> Function:
        """Patch the spec back to version `number`'s code (by its kept code object) and
        execution fields, with all traffic to it; the operator records the new version (the
        annotation tells it of which) and the answer waits for that, within the deploy wait."""
        current = await self.resolve(function_id)
        version = current.kept_version(number)
        fields = {f: version.spec.get(f) for f in EXECUTION_FIELDS}
        patch = {
            "metadata": {
                "annotations": {
                    ROLLBACK_ANNOTATION: rollback_annotation(number, version.code_sha256)
                }
            },
            "spec": {
                **fields,
                "code": None,
                "codeRef": {
                    "s3": {
                        "bucket": self.settings.minio.bucket,
                        "key": code_key(version.code_sha256),
                    }
                },
                "traffic": None,
            },
        }
        function = await self._patch(function_id, patch)
        was = current.version or 0
        return await self._until(
            function, lambda f: (f.version or 0) > was, self.settings.deploy_wait_s
        )

    async def set_traffic(self, function_id: str, traffic: Traffic) -> Function:
        current = await self.resolve(function_id)
        current.check_traffic(traffic)
        if current.isolation == "warm" and current.version is not None:
            for number in traffic.used(current.version) - {current.version}:
                older = current.variants.get(number)
                unpooled = env_not_pooled(older.env_spec) if older else None
                if unpooled is not None:
                    raise BadRequest(
                        f"traffic: version {number} of warm function {function_id!r} would run"
                        f" in the pool (its pods run the latest version), which cannot: {unpooled}"
                    )
        return await self._patch(function_id, {"spec": {"traffic": traffic.to_json() or None}})

    async def _patch(self, function_id: str, patch: dict[str, Any]) -> Function:
        try:
            obj = await self._client().merge_patch(KIND, self.namespace, function_id, patch)
        except KubeError as exc:
            raise from_kube(exc, function_id) from exc
        function = self._store(obj)
        if function is None:
            raise InternalError("the Kubernetes API returned a malformed VortexFunction")
        return function

    async def kv(self, function: Function, request: dict[str, Any]) -> RuntimeReply:
        return await self.invoker.kv(POOL_GROUP, function, request)  # MinIO, from any pool pod

    async def invoke(self, function: Function, invocation: Invocation) -> InvocationResult:
        if function.blocked is not None:
            raise self._not_runnable(function.function_id, *function.blocked)
        if function.isolation == "warm" and _older_version(function):
            # Its warm pods run the latest version's code: an older one of the split runs in
            # the pool, with its own code object, limits and env sent along.
            unpooled = env_not_pooled(function.env_spec)
            if unpooled is not None:
                raise FunctionNotRunnable(
                    f"version {function.version} of {function.function_id!r} cannot run: its"
                    f" warm pods run the latest version, and the pool cannot: {unpooled}",
                    error_type=ENV_NOT_POOLED,
                )
            return await self._invoke_pooled(_as_pooled(function), invocation)
        if function.isolation == "pod":
            assert self.pods is not None
            return await self.pods.run(function, invocation)
        if function.isolation == "shared" or self._pool_meanwhile(function):
            return await self._invoke_pooled(function, invocation)
        if _may_wake(function) and not self.table.has_endpoints(function.function_id):
            return await self._from_zero(function, invocation)
        return await self.invoker.invoke(function.function_id, "/invoke", function, invocation)

    async def _from_zero(self, function: Function, invocation: Invocation) -> InvocationResult:
        """A warm function at zero pods. Autoscaled, the request is held until its first pod is
        ready (the autoscaler counts it among the executions in flight, so its next tick scales
        the function up), then sent there: a cold start of kind `pod`, as long as the wait.
        Scaled to zero by hand, nothing would wake it: 503 at once, saying so."""
        fid = function.function_id
        retry = self.settings.retry_after_s
        if function.scale is None or function.scale.min_replicas > 0:
            raise NotReady(
                f"function {fid!r} has 0 replicas and no autoscaling (spec.scale with"
                f" minReplicas 0) to wake it; scale it up: kubectl scale vf/{fid} --replicas=1",
                retry_after_s=retry,
            )
        loop = asyncio.get_running_loop()
        started = loop.time()
        wait_s = self.settings.cold_start_wait_s
        if await self.table.wait(fid, wait_s, function.affinity) is None:
            raise NotReady(
                f"function {fid!r} is scaled to zero and no pod of it was ready within"
                f" {wait_s:g} s (VORTEX_COLD_START_WAIT_S); it is still starting",
                retry_after_s=retry,
            )
        waited = loop.time() - started
        result = await self.invoker.invoke(fid, "/invoke", function, invocation)
        result.cold_kind = "pod"
        result.cold_start_s = waited
        return result

    def _pool_meanwhile(self, function: Function) -> bool:
        """A function moved from shared to warm is served by the pool until its first pod of
        its own is ready, so the move fails no request (unless it is scaled to zero, or reads
        env from a Secret, which the pool cannot)."""
        fid = function.function_id
        if fid not in self._was_shared:
            return False
        if self.table.endpoints(fid) or function.ready_reason == "ScaledToZero":
            self._was_shared.discard(fid)
            return False
        return (
            function.code_object is not None
            and env_not_pooled(function.env_spec) is None
            and bool(self.table.endpoints(POOL_GROUP))
        )

    async def _invoke_pooled(self, function: Function, invocation: Invocation) -> InvocationResult:
        if not self.settings.pool_service:
            raise NotReady(
                f"{function.function_id!r} is shared, but this install runs no pool"
                " (VORTEX_POOL_SERVICE is not set)",
                retry_after_s=self.settings.retry_after_s,
            )
        if function.code_object is None:
            # Deployed a moment ago: the operator is storing its code.
            function = await self._until_stored(function, self.settings.readiness_wait_s)
            if function.blocked is not None:
                raise self._not_runnable(function.function_id, *function.blocked)
            if function.code_object is None:
                raise NotReady(
                    f"the code of {function.function_id!r} is not stored yet",
                    retry_after_s=self.settings.retry_after_s,
                )
        pooled = function if function.isolation == "shared" else _as_pooled(function)
        return await self.invoker.invoke(
            POOL_GROUP, f"/invoke/{function.code_object}", pooled, invocation, sticky=True
        )

    def _records(self) -> PodRecords:
        if self.records is None:
            raise InternalError("the Kubernetes backend is not started")
        return self.records

    async def invocation_records(self, function: Function, query: LogQuery) -> Records:
        return await self._records().newest(function.function_id, query)

    def follow_records(self, function: Function, query: LogQuery) -> AsyncIterator[Record]:
        return self._records().follow(function.function_id, query)


def _at_zero(function: Function) -> bool:
    """Whether a warm function is scaled to zero pods (as the operator last reported)."""
    return function.replicas == 0 or function.ready_reason == "ScaledToZero"


def _may_wake(function: Function) -> bool:
    """Whether a warm function with no ready pod is coming up from zero: scaled to zero, or
    autoscaled from zero (the autoscaler may already have asked for a pod that is not ready
    yet; a request held meanwhile is as much a cold start as one that found zero replicas)."""
    scale = function.scale
    return _at_zero(function) or (scale is not None and scale.min_replicas == 0)


def _pooled_code(function: Function) -> bool:
    return function.code_object is not None and function.blocked is None


def _newly_pooled(before: Function | None, after: Function) -> bool:
    """Whether a shared function's cache entry now names code it did not name before."""
    return (
        after.isolation == "shared"
        and _pooled_code(after)
        and (before is None or before.code_object != after.code_object)
    )


def _older_version(function: Function) -> bool:
    """Whether this is a version other than the latest (a variant of the split)."""
    latest = function.history.latest
    return latest is not None and function.version is not None and function.version != latest.number


def _as_pooled(function: Function) -> Function:
    """A warm function's record as the pool needs it: with its env and code hash sent along."""
    return dataclasses.replace(function).prepare(send_env=True)
