"""The function record both backends keep, and what the execute path precomputes from it.

Backends build `Function`s (from the local store or from `VortexFunction` objects); routes turn them
into `FunctionInfo` documents; `invoker` reads the precomputed runtime headers and deadline so the
execute path does no per-request formatting.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from vortex_api.models import (
    EgressOut,
    FunctionInfo,
    FunctionSpecOut,
    FunctionStatusOut,
    KVOut,
    ScaleOut,
)
from vortex_kube.contract import Isolation, RetrySpec
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
    # Precomputed by `prepare`, used on every invocation.
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
        self.runtime_headers = headers
        self.route_key = self.function_id.encode()
        self.affinity = zlib.crc32(self.route_key)
        return self

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
            ),
        )
