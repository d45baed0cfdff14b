"""The local backend: functions in a data dir, executions on supervised runtime worker processes.

Deploy stores the code content-addressed and a record per function (so restarting keeps every
function); every function, whatever its `isolation` (`pod` is refused), runs on the workers as
shared functions run in the cluster's pool. Execute routes `POST /invoke/<sha256>.js` to the
least-busy worker through the shared `Invoker`, the same path the pool and warm pods use in
Kubernetes. Built by `backends.make_backend`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from vortex_api.backends.local_records import LocalRecords
from vortex_api.backends.local_store import LocalStore
from vortex_api.backends.supervisor import GROUP, WorkerSupervisor
from vortex_api.errors import BadRequest, FunctionNotFound
from vortex_api.fasthttp import FastTransport
from vortex_api.functions import Function
from vortex_api.invocation_logs import LogQuery, Record, Records
from vortex_api.invoker import Invocation, InvocationResult, Invoker
from vortex_api.models import DeployRequest
from vortex_api.rollouts import Tally
from vortex_api.routing import EndpointTable
from vortex_api.settings import Settings
from vortex_api.transport import RuntimeReply, RuntimeTransport
from vortex_kube.contract import DEFAULT_ISOLATION, RetrySpec, parse_isolation
from vortex_kube.rollout import CONDITION_STATUS, Rollout, RolloutSpec
from vortex_kube.versions import DEFAULT_HISTORY_LIMIT, History, Target, Traffic, VersionError

log = logging.getLogger("vortex_api.local")
ROLLOUT_TICK_S = 0.25  # how often rollouts in progress are looked at


def _record(function: Function) -> dict[str, Any]:
    return {
        "function_id": function.function_id,
        "code_sha256": function.code_sha256,
        "timeout_ms": function.timeout_ms,
        "memory_mb": function.memory_mb,
        "cpu_limit_ms": function.cpu_limit_ms,
        "kv_namespace": function.kv_namespace,
        "egress": function.egress,
        "env": function.env,
        "concurrency": function.concurrency,
        "isolation": function.isolation,
        "retry": function.retry.spec(),
        "on_success": function.on_success,
        "on_failure": function.on_failure,
        "schedule": function.schedule,
        "time_zone": function.time_zone,
        "schedule_event": function.schedule_event,
        "schedule_since": function.schedule_since,
        "created_at": function.created_at,
        "revision_history_limit": function.history.limit,
        "versions": function.history.to_json(),
        "traffic": function.traffic.to_json(),
        "rollout_spec": function.rollout_spec.to_json() if function.rollout_spec else None,
        "rollout": function.rollout.to_json() if function.rollout else None,
        "conditions": function.conditions,
    }


def _from_record(record: dict[str, Any], settings: Settings) -> Function:
    function = Function(
        function_id=str(record["function_id"]),
        code_sha256=record.get("code_sha256"),
        timeout_ms=int(record.get("timeout_ms") or settings.default_timeout_ms),
        memory_mb=int(record.get("memory_mb") or settings.default_memory_mb),
        cpu_limit_ms=int(record["cpu_limit_ms"]) if record.get("cpu_limit_ms") else None,
        kv_namespace=record.get("kv_namespace") or None,
        egress=record.get("egress") or None,
        env={str(k): str(v) for k, v in (record.get("env") or {}).items()},
        concurrency=record.get("concurrency"),
        inflight_cap=record.get("concurrency"),
        isolation=parse_isolation(record.get("isolation")),
        retry=RetrySpec.parse(record.get("retry")),
        on_success=record.get("on_success") or None,
        on_failure=record.get("on_failure") or None,
        schedule=record.get("schedule") or None,
        time_zone=record.get("time_zone") or None,
        schedule_event=record.get("schedule_event"),
        schedule_since=float(record.get("schedule_since") or 0.0),
        created_at=record.get("created_at"),
        conditions=list(record.get("conditions") or []),
    ).prepare(send_env=True)
    try:
        function.rollout_spec = RolloutSpec.parse(record.get("rollout_spec"))
    except VersionError as exc:
        log.warning("function %s: ignoring its rollout: %s", function.function_id, exc)
    function.rollout = Rollout.read(record.get("rollout"))
    limit = int(record.get("revision_history_limit") or DEFAULT_HISTORY_LIMIT)
    history = History.from_json(record.get("versions"), limit)
    try:
        traffic = Traffic.parse(record.get("traffic"))
        traffic.check(history.numbers())
    except VersionError as exc:
        log.warning("function %s: ignoring its traffic: %s", function.function_id, exc)
        traffic = Traffic()
    if history.latest is None and function.code_sha256:  # a record from before versions
        history = history.record(
            function.code_sha256, function.execution_spec(), _now(), traffic, created_by="api"
        )
    return function.with_versions(history, traffic)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _rollout_base(
    previous: Function | None, spec: RolloutSpec | None
) -> tuple[Rollout | None, int | None]:
    """(the rollout that stands if no version is made, the stable version a new version would
    be rolled out from, or None for no rollout)."""
    if previous is None:
        return None, None
    standing = previous.rollout if spec is not None else None
    if spec is None or previous.version is None:
        return standing, None
    return standing, Rollout.stable_version(standing, previous.version)


def _rollout_conditions(
    rollout: Rollout | None, previous: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The `Rollout` condition local mode shows: Unknown while it progresses, True once
    Complete, False when rolled back, with the reason."""
    if rollout is None:
        return []
    status = CONDITION_STATUS[rollout.phase]
    old = next((c for c in previous or [] if c.get("type") == "Rollout"), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status else _now()
    return [
        {
            "type": "Rollout",
            "status": status,
            "reason": rollout.phase,
            "message": rollout.reason,
            "lastTransitionTime": since,
        }
    ]


class LocalBackend:
    """Functions on this machine, run by runtime workers the API supervises."""

    def __init__(
        self,
        settings: Settings,
        transport: RuntimeTransport | None = None,
        *,
        supervise: bool = True,
    ) -> None:
        """`supervise=False` starts no workers: endpoints are then put in `table` by the caller."""
        self.settings = settings
        self.supervise = supervise
        self.store = LocalStore(settings.data_dir)
        self.transport = transport or FastTransport()
        self.table = EndpointTable(on_remove=self.transport.forget)
        self.supervisor = WorkerSupervisor(
            count=settings.local_workers,
            store_dir=self.store.code_dir,
            table=self.table,
            transport=self.transport,
            max_inflight=settings.max_workers,
            start_timeout_s=settings.worker_start_timeout_s,
            python=settings.worker_python,
            runtime_path=settings.runtime_path,
            serve_cpu=settings.serve_cpu,
            records_dir=self.store.records_dir,
            records_max_bytes=settings.records_max_bytes,
            kv_dir=self.store.kv_dir,
        )
        self.records = LocalRecords(self.store.records_dir)
        self.invoker = Invoker(
            self.transport,
            self.table,
            grace_ms=settings.timeout_grace_ms,
            readiness_wait_s=settings.worker_start_timeout_s,
            retry_after_s=settings.retry_after_s,
            on_timeout=self.supervisor.check_after_timeout,
        )
        self.functions: dict[str, Function] = {}
        self._lock = asyncio.Lock()
        self.tally = Tally()  # executions per version, for rollouts
        self._rollouts: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.store.open()
        for record in self.store.load_all():
            function = _from_record(record, self.settings)
            if function.code_sha256 and self.store.has_code(function.code_sha256):
                self.functions[function.function_id] = function
        if self.supervise:
            await self.supervisor.start()
        self._rollouts = asyncio.ensure_future(self._drive_rollouts())

    async def stop(self) -> None:
        if self._rollouts is not None:
            self._rollouts.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rollouts
        await self.supervisor.stop()
        await self.transport.aclose()

    def ready(self) -> bool:
        return bool(self.table.endpoints(GROUP))

    async def deploy(self, request: DeployRequest) -> Function:
        if request.isolation == "pod":
            raise BadRequest("isolation 'pod' needs the kubernetes backend")
        function_id = request.name or str(uuid.uuid4())
        async with self._lock:
            sha256 = await asyncio.to_thread(self.store.put_code, request.code)
            previous = self.functions.get(function_id)
            history = previous.history if previous else History()
            traffic = previous.traffic if previous else Traffic()
            rollout_spec = RolloutSpec.parse(request.rollout)
            rollout, stable = _rollout_base(previous, rollout_spec)
            if stable is not None:  # keep the stable version whatever the limit
                traffic = Traffic((Target(100, version=stable),))
            function = Function(
                function_id=function_id,
                code_sha256=sha256,
                timeout_ms=request.timeout_ms or self.settings.default_timeout_ms,
                memory_mb=request.memory_mb or self.settings.default_memory_mb,
                cpu_limit_ms=request.cpu_limit_ms,
                kv_namespace=request.kv.namespace if request.kv else None,
                egress=request.egress.spec() if request.egress is not None else None,
                env=dict(request.env or {}),
                concurrency=request.concurrency,
                inflight_cap=request.concurrency,
                isolation=request.isolation or DEFAULT_ISOLATION,
                retry=RetrySpec.parse(request.retry),
                on_success=request.on_success,
                on_failure=request.on_failure,
                schedule=request.schedule,
                time_zone=request.time_zone,
                schedule_event=request.schedule_event,
                schedule_since=time.time() if request.schedule else 0.0,
                created_at=(previous.created_at if previous else _now()),
                rollout_spec=rollout_spec,
            ).prepare(send_env=True)
            before = history.latest
            history = history.record(
                sha256,
                function.execution_spec(),
                _now(),
                traffic,
                created_by="api",
                limit=request.revision_history_limit or history.limit,
            )
            latest = history.latest
            made = latest is not None and latest != before
            if rollout_spec is not None and stable is not None and latest is not None and made:
                rollout = Rollout.start(rollout_spec, latest.number, stable, time.time())
                log.info("function %s: rollout: %s", function_id, rollout.reason)
            elif previous is not None:
                traffic = previous.traffic
            function.rollout = rollout
            function.conditions = _rollout_conditions(rollout)
            if rollout is not None:
                traffic = rollout.traffic()
            await self._put(function.with_versions(history.pruned(traffic), traffic), previous)
        await self._warm(function)
        return function

    async def _put(self, function: Function, previous: Function | None) -> None:
        """Save a function's new record (under the lock), then drop the code no version of any
        function keeps any more."""
        await asyncio.to_thread(self.store.save, function.function_id, _record(function))
        self.functions[function.function_id] = function
        if previous is not None:
            self._collect(previous.history.code_in_use() | {previous.code_sha256 or ""})

    async def rollback(self, function_id: str, number: int) -> Function:
        async with self._lock:
            current = await self.resolve(function_id)
            version = current.kept_version(number)
            # All traffic to the new version: a rollback is what runs from now on.
            traffic = Traffic()
            history = current.history.record(
                version.code_sha256,
                version.spec,
                _now(),
                traffic,
                created_by="api",
                rollback_of=number,
            )
            function = current.at_version(version)
            function.rollout, function.conditions = None, []
            await self._put(function.with_versions(history, traffic), current)
        await self._warm(function)
        return function

    async def set_traffic(self, function_id: str, traffic: Traffic) -> Function:
        async with self._lock:
            current = await self.resolve(function_id)
            current.check_traffic(traffic)
            history = current.history.pruned(traffic)
            # A split set by hand ends a rollout in progress.
            function = dataclasses.replace(
                current, variants={}, split=None, rollout=None, conditions=[]
            )
            await self._put(function.with_versions(history, traffic), current)
        assert function.version is not None  # every local function keeps its versions
        for number in traffic.used(function.version):  # the versions the split sends to
            await self._warm(function.variants[number])
        return function

    async def _warm(self, function: Function) -> None:
        """Have the worker that will serve `function` start an isolate for it now."""
        key = self.store.code_key(function.code_sha256 or "")
        await self.invoker.warm(GROUP, f"/warm/{key}", function, sticky=False)

    async def resolve(self, function_id: str) -> Function:
        function = self.functions.get(function_id)
        if function is None:
            raise FunctionNotFound(function_id)
        return function

    async def list(self) -> list[Function]:
        return [self.functions[k] for k in sorted(self.functions)]

    async def delete(self, function_id: str) -> None:
        async with self._lock:
            function = self.functions.pop(function_id, None)
            if function is None:
                raise FunctionNotFound(function_id)
            self.store.remove(function_id)
            self._collect(function.history.code_in_use() | {function.code_sha256 or ""})

    def _collect(self, candidates: set[str]) -> None:
        """Remove the code files among `candidates` that no kept version of any function uses."""
        in_use: set[str] = set()
        for function in self.functions.values():
            in_use |= function.history.code_in_use()
            in_use.add(function.code_sha256 or "")
        for sha256 in candidates - in_use:
            if sha256:
                self.store.remove_code(sha256)

    async def invoke(self, function: Function, invocation: Invocation) -> InvocationResult:
        key = self.store.code_key(function.code_sha256 or "")
        return await self.invoker.invoke(GROUP, f"/invoke/{key}", function, invocation)

    async def _drive_rollouts(self) -> None:
        """Every ROLLOUT_TICK_S, move each rollout in progress along (vortex_kube.rollout)."""
        while True:
            await asyncio.sleep(ROLLOUT_TICK_S)
            for function in list(self.functions.values()):
                rollout, spec = function.rollout, function.rollout_spec
                if rollout is None or spec is None or rollout.phase != "Progressing":
                    continue
                calls, errors = self.tally.of(function.function_id, rollout.version)
                after = rollout.advance(spec, time.time(), calls, errors)
                if after != rollout:
                    try:
                        await self._move_rollout(function.function_id, rollout, after)
                    except OSError as exc:  # the data dir: try again at the next tick
                        log.warning("rollout of %s not saved: %s", function.function_id, exc)

    async def _move_rollout(self, function_id: str, before: Rollout, after: Rollout) -> None:
        async with self._lock:
            current = self.functions.get(function_id)
            if current is None or current.rollout != before:
                return  # changed meanwhile: a deploy, a split or a rollback
            traffic = after.traffic()
            function = dataclasses.replace(
                current,
                variants={},
                split=None,
                rollout=after,
                conditions=_rollout_conditions(after, current.conditions),
            )
            await self._put(
                function.with_versions(current.history.pruned(traffic), traffic), current
            )
        if after.phase != before.phase or after.percent != before.percent:
            level = logging.WARNING if after.phase == "RolledBack" else logging.INFO
            log.log(level, "function %s: rollout %s: %s", function_id, after.phase, after.reason)

    async def kv(self, function: Function, request: dict[str, Any]) -> RuntimeReply:
        return await self.invoker.kv(GROUP, function, request)

    async def invocation_records(self, function: Function, query: LogQuery) -> Records:
        return await self.records.newest(function.function_id, query)

    def follow_records(self, function: Function, query: LogQuery) -> AsyncIterator[Record]:
        return self.records.follow(function.function_id, query)
