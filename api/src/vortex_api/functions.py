"""The function record both backends keep, and what the execute path precomputes from it.

Backends build `Function`s (from the local store or from `VortexFunction` objects); routes turn them
into `FunctionInfo` documents; `invoker` reads the precomputed runtime headers and deadline so the
execute path does no per-request formatting.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from vortex_api.errors import BadRequest, VersionNotFound
from vortex_api.models import (
    EgressOut,
    FunctionInfo,
    FunctionSpecOut,
    FunctionStatusOut,
    KVOut,
    ScaleOut,
    VersionList,
    VersionOut,
)
from vortex_api.traffic import Split
from vortex_kube.contract import Isolation, RetrySpec, code_key, parse_isolation
from vortex_kube.rollout import Rollout, RolloutSpec
from vortex_kube.versions import History, Traffic, Version, VersionError
from vortex_runtime.egress import to_json

__all__ = ["Function", "Isolation"]


@dataclass(slots=True, eq=False)
class Function:
    """A deployed function as the API sees it."""

    function_id: str
    timeout_ms: int
    memory_mb: int
    code_sha256: str | None = None
    cpu_limit_ms: int | None = None
    kv_namespace: str | None = None  # spec.kv.namespace
    egress: dict[str, Any] | None = None  # spec.egress: {allow, maxRequests}
    env: dict[str, str] = field(default_factory=dict)
    isolation: Isolation = "shared"
    concurrency: int | None = None
    replicas: int | None = None
    created_at: str | None = None
    phase: str = "Ready"
    ready: bool = True
    ready_replicas: int | None = None
    # Autoscaled warm functions: `spec.scale` and the autoscaler's status fields.
    scale: ScaleOut | None = None
    # Async invocations: how they are retried, and the functions called after them.
    retry: RetrySpec = field(default_factory=RetrySpec)
    on_success: str | None = None
    on_failure: str | None = None
    # spec.schedule: ticks queue async invocations; `schedule_since` is when it was last set
    # (a tick before it is not one of this schedule's), epoch seconds.
    schedule: str | None = None
    time_zone: str | None = None
    schedule_event: Any = None
    schedule_since: float = 0.0
    last_schedule_time: str | None = None  # the latest tick queued (RFC 3339), and its id
    last_schedule_invocation: str | None = None
    desired_replicas: int | None = None
    observed_concurrency: float | None = None
    conditions: list[dict[str, Any]] = field(default_factory=list)
    code_object: str | None = None
    # Kubernetes env entries as declared ({name, value} or {name, valueFrom}), for one-shot pods.
    env_spec: list[dict[str, Any]] = field(default_factory=list)
    # Kubernetes resource requirements from the spec, for one-shot pods.
    resources: dict[str, Any] | None = None
    # Why the function cannot run at all (reason, message, extra fields), from its status: code
    # that does not compile, a broken codeRef, or storage failing, with no older code serving.
    blocked: tuple[str, str, dict[str, Any]] | None = None
    # The reason of its Ready condition, and the generation its status was computed for.
    ready_reason: str | None = None
    generation: int = 0
    observed_generation: int = 0
    # Per-function bulkhead cap in this API process (None: the settings' default applies).
    inflight_cap: int | None = None
    # Its versions (`vortex_kube.versions`): the number this object runs (None where versions
    # are not kept), the kept history, the split, and one prepared `Function` per kept version
    # (`with_versions`); `choose` picks among them per execution.
    version: int | None = None
    history: History = field(default_factory=History)
    traffic: Traffic = field(default_factory=Traffic)
    variants: dict[int, Function] = field(default_factory=dict)
    split: Split | None = None
    # spec.rollout, and where the rollout of its latest version stands (vortex_kube.rollout).
    rollout_spec: RolloutSpec | None = None
    rollout: Rollout | None = None
    # Precomputed by `prepare`, used on every invocation.
    sends_env: bool = False
    runtime_headers: list[tuple[str, str]] = field(default_factory=list)
    affinity: int = 0
    route_key: bytes = b""  # its rendezvous key in the pool

    def prepare(self, *, send_env: bool) -> Function:
        """Fill the per-invocation constants: runtime headers and the routing affinity.

        `send_env` for runtimes that serve many functions (local workers, the pool): they get
        the function's env, and the code's hash to check what they load against."""
        headers = [
            ("x-vortex-function", self.function_id),
            ("x-vortex-timeout-ms", str(self.timeout_ms)),
            ("x-vortex-memory-mb", str(self.memory_mb)),
        ]
        if self.cpu_limit_ms:
            headers.append(("x-vortex-cpu-limit-ms", str(self.cpu_limit_ms)))
        if self.kv_namespace:
            headers.append(("x-vortex-kv-namespace", self.kv_namespace))
        if self.egress:
            headers.append(("x-vortex-egress", to_json(self.egress)))
        if send_env and self.env:
            headers.append(("x-vortex-env", json.dumps(self.env, separators=(",", ":"))))
        if send_env and self.code_sha256:
            headers.append(("x-vortex-code-sha256", self.code_sha256))
        if self.version is not None:
            headers.append(("x-vortex-version", str(self.version)))
        self.sends_env = send_env
        self.runtime_headers = headers
        self.route_key = self.function_id.encode()
        self.affinity = zlib.crc32(self.route_key)
        return self

    def execution_spec(self) -> dict[str, Any]:
        """What a version of this function keeps of it: the VortexFunction spec's execution
        fields (`vortex_kube.versions.EXECUTION_FIELDS`), camelCase, as set."""
        spec: dict[str, Any] = {
            "timeoutMs": self.timeout_ms,
            "memoryMb": self.memory_mb,
            "isolation": self.isolation,
        }
        if self.cpu_limit_ms:
            spec["cpuLimitMs"] = self.cpu_limit_ms
        if self.env:
            spec["env"] = [{"name": k, "value": v} for k, v in sorted(self.env.items())]
        if self.egress:
            spec["egress"] = dict(self.egress)
        if self.kv_namespace:
            spec["kv"] = {"namespace": self.kv_namespace}
        return spec

    def at_version(self, version: Version) -> Function:
        """This function as `version` runs it: its code and execution spec, the rest as now."""
        spec = version.spec
        kv = spec.get("kv")
        return dataclasses.replace(
            self,
            code_sha256=version.code_sha256,
            timeout_ms=int(spec.get("timeoutMs") or self.timeout_ms),
            memory_mb=int(spec.get("memoryMb") or self.memory_mb),
            cpu_limit_ms=int(spec["cpuLimitMs"]) if spec.get("cpuLimitMs") else None,
            env={str(e["name"]): str(e.get("value", "")) for e in spec.get("env") or []},
            env_spec=[dict(e) for e in spec.get("env") or []],  # as one-shot pods take it
            egress=dict(spec["egress"]) if spec.get("egress") else None,
            kv_namespace=str(kv["namespace"])
            if isinstance(kv, dict) and kv.get("namespace")
            else None,
            isolation=parse_isolation(spec.get("isolation") or self.isolation),
            # In the cluster the pool loads code by object key: the version's own.
            code_object=code_key(version.code_sha256) if self.code_object else None,
            version=version.number,
            variants={},
            split=None,
        ).prepare(send_env=self.sends_env)

    def with_versions(self, history: History, traffic: Traffic) -> Function:
        """This function (its latest version) with the history and split it executes by."""
        self.history, self.traffic = history, traffic
        latest = history.latest
        self.version = latest.number if latest else None
        self.prepare(send_env=self.sends_env)
        self.variants = {v.number: self.at_version(v) for v in history.versions}
        if self.version is not None:
            self.variants[self.version] = self
        self.split = Split(history, traffic) if latest else None
        return self

    def kept_version(self, number: int) -> Version:
        """Version `number` of the history, or `VersionNotFound` saying which are kept."""
        version = self.history.get(number)
        if version is None:
            kept = ", ".join(map(str, self.history.numbers())) or "none"
            raise VersionNotFound(
                f"function {self.function_id!r} keeps no version {number} (kept: {kept})"
            )
        return version

    def check_traffic(self, traffic: Traffic) -> None:
        """`BadRequest` if the split names a version this function does not keep."""
        try:
            traffic.check(self.history.numbers())
        except VersionError as exc:
            raise BadRequest(str(exc)) from None

    def choose(self, pin: str | None) -> Function:
        """The version of one execution: the one `pin` (an X-Vortex-Version header) names, or
        the split's next; this object itself where no versions are kept."""
        split = self.split
        if split is None:
            return self
        number = split.pinned(pin) if pin is not None else split.next()
        return self.variants.get(number, self)

    def versions_info(self) -> VersionList:
        """The public document for `GET /functions/{id}/versions`."""
        return VersionList(
            function_id=self.function_id,
            latest_version=self.version,
            revision_history_limit=self.history.limit,
            versions=[
                VersionOut(
                    version=v.number,
                    code_sha256=v.code_sha256,
                    spec=dict(v.spec),
                    created_at=v.created_at,
                    created_by=v.created_by,
                    rollback_of=v.rollback_of,
                )
                for v in self.history.versions
            ],
            traffic=self.traffic.to_json(),
            rollout=self.rollout.to_json() if self.rollout else None,
        )

    def deadline_s(self, grace_ms: int) -> float:
        """How long the API waits for the runtime: the function's timeout plus the grace."""
        return (self.timeout_ms + grace_ms) / 1000.0

    def info(self) -> FunctionInfo:
        """The public document for `GET /functions/{id}`."""
        return FunctionInfo(
            function_id=self.function_id,
            code_sha256=self.code_sha256,
            created_at=self.created_at,
            spec=FunctionSpecOut(
                timeout_ms=self.timeout_ms,
                memory_mb=self.memory_mb,
                cpu_limit_ms=self.cpu_limit_ms,
                kv=KVOut(namespace=self.kv_namespace) if self.kv_namespace else None,
                egress=EgressOut(**self.egress) if self.egress else None,
                env=dict(self.env),
                isolation=self.isolation,
                concurrency=self.concurrency,
                replicas=self.replicas,
                scale=self.scale,
                retry=self.retry.spec(),
                on_success=self.on_success,
                on_failure=self.on_failure,
                schedule=self.schedule,
                time_zone=self.time_zone,
                schedule_event=self.schedule_event,
                revision_history_limit=self.history.limit,
                rollout=self.rollout_spec.to_json() if self.rollout_spec else None,
                traffic=self.traffic.to_json(),
            ),
            status=FunctionStatusOut(
                phase=self.phase,
                ready=self.ready,
                ready_replicas=self.ready_replicas,
                desired_replicas=self.desired_replicas,
                observed_concurrency=self.observed_concurrency,
                last_schedule_time=self.last_schedule_time,
                last_schedule_invocation=self.last_schedule_invocation,
                conditions=list(self.conditions),
                latest_version=self.version,
            ),
        )
