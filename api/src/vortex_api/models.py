"""Request and response bodies of the HTTP API, as pydantic models (they also feed `/docs`).

Bounds and patterns are the VortexFunction contract's (`vortex_kube.contract`, equal to the CRD's),
so a body `/deploy` accepts is one the cluster accepts too. Routes validate input with these;
`/execute` answers are passed through from the runtime as bytes, so `ExecuteResponse` documents
that shape without being built per request.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from vortex_kube.contract import (
    ENV_NAME_PATTERN,
    FUNCTION_NAME_PATTERN,
    KV_NAMESPACE_PATTERN,
    MAX_CONCURRENCY,
    MAX_CPU_LIMIT_MS,
    MAX_ENV_ENTRIES,
    MAX_ENV_VALUE_CHARS,
    MAX_MEMORY_MB,
    MAX_REPLICAS,
    MAX_SCALE_TO_ZERO_S,
    MAX_TIMEOUT_MS,
    MIN_CONCURRENCY,
    MIN_CPU_LIMIT_MS,
    MIN_MAX_SCALE,
    MIN_MEMORY_MB,
    MIN_MIN_SCALE,
    MIN_REPLICAS,
    MIN_SCALE_TO_ZERO_S,
    MIN_TARGET_CONCURRENCY,
    MIN_TIMEOUT_MS,
    Isolation,
    check_egress,
    check_retry,
    check_schedule,
)
from vortex_kube.rollout import RolloutSpec
from vortex_kube.versions import DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT, MIN_HISTORY_LIMIT
from vortex_runtime.egress import Outcome as FetchOutcome

__all__ = ["ENV_NAME_PATTERN", "FUNCTION_NAME_PATTERN", "DeployRequest"]


class ScaleIn(BaseModel):
    """`scale` of a `/deploy` body: the autoscaling of a warm function (its `spec.scale`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    min_replicas: int | None = Field(
        default=None,
        ge=MIN_MIN_SCALE,
        le=MAX_REPLICAS,
        description="fewest warm pods (default 1; 0 scales to zero when idle)",
    )
    max_replicas: int | None = Field(
        default=None, ge=MIN_MAX_SCALE, le=MAX_REPLICAS, description="most warm pods (default 10)"
    )
    target_concurrency: int | None = Field(
        default=None,
        ge=MIN_TARGET_CONCURRENCY,
        le=MAX_CONCURRENCY,
        description="executions in flight per pod to aim for (default 70% of concurrency)",
    )
    scale_to_zero_after_seconds: int | None = Field(
        default=None,
        ge=MIN_SCALE_TO_ZERO_S,
        le=MAX_SCALE_TO_ZERO_S,
        description="idle seconds before 0 pods when min_replicas is 0 (default 300)",
    )

    @model_validator(mode="after")
    def _bounds(self) -> ScaleIn:
        if (
            self.min_replicas is not None
            and self.max_replicas is not None
            and self.min_replicas > self.max_replicas
        ):
            raise ValueError("scale.min_replicas must not exceed scale.max_replicas")
        return self

    def spec(self) -> dict[str, int]:
        """The VortexFunction's `spec.scale` (absent fields take the CRD's defaults)."""
        fields = {
            "minReplicas": self.min_replicas,
            "maxReplicas": self.max_replicas,
            "targetConcurrency": self.target_concurrency,
            "scaleToZeroAfterSeconds": self.scale_to_zero_after_seconds,
        }
        return {k: v for k, v in fields.items() if v is not None}


class KVIn(BaseModel):
    """`kv` of a `/deploy` body (`spec.kv`): a keyspace shared with other functions."""

    model_config = ConfigDict(extra="forbid", strict=True)

    namespace: str | None = Field(
        default=None,
        pattern=KV_NAMESPACE_PATTERN,
        description="a keyspace shared by the functions that name it (default: the function's own)",
    )


class KVOut(BaseModel):
    namespace: str | None = None


class EgressIn(BaseModel):
    """`egress` of a `/deploy` body (`spec.egress`): where the function's fetch may go."""

    model_config = ConfigDict(extra="forbid", strict=True)

    allow: list[str] = Field(
        default_factory=list,
        description=(
            "rules: a host name (*. for its subdomains), an IP or a CIDR, each with an optional"
            " :port"
        ),
    )
    maxRequests: int | None = Field(
        default=None, description="requests one invocation may make (default 50, at most 1000)"
    )

    @model_validator(mode="after")
    def _valid(self) -> EgressIn:
        check_egress(self.spec())
        return self

    def spec(self) -> dict[str, Any]:
        """`spec.egress` as the CRD has it."""
        out: dict[str, Any] = {"allow": list(self.allow)}
        if self.maxRequests is not None:
            out["maxRequests"] = self.maxRequests
        return out


class EgressOut(BaseModel):
    allow: list[str]
    maxRequests: int | None = None


class DeployRequest(BaseModel):
    """`POST /deploy`: the code plus optional settings."""

    model_config = ConfigDict(extra="forbid", strict=True)

    code: str = Field(min_length=1, description="function body or module with a default export")
    name: str | None = Field(
        default=None,
        pattern=FUNCTION_NAME_PATTERN,
        description="function id to use (lower-case DNS label); a UUID is generated without it",
    )
    timeout_ms: int | None = Field(
        default=None, ge=MIN_TIMEOUT_MS, le=MAX_TIMEOUT_MS, description="wall-clock timeout"
    )
    memory_mb: int | None = Field(
        default=None,
        ge=MIN_MEMORY_MB,
        le=MAX_MEMORY_MB,
        description="isolate memory limit: heap, buffers and WebAssembly memory",
    )
    cpu_limit_ms: int | None = Field(
        default=None,
        ge=MIN_CPU_LIMIT_MS,
        le=MAX_CPU_LIMIT_MS,
        description="CPU time per execution, timers and waits not counted (none: timeout only)",
    )
    env: dict[str, Annotated[str, Field(max_length=MAX_ENV_VALUE_CHARS)]] | None = Field(
        default=None, max_length=MAX_ENV_ENTRIES, description="context.env of the function"
    )
    isolation: Isolation | None = Field(
        default=None,
        description=(
            "shared (default): isolates in the pool of runtime pods; warm: runtime pods of its"
            " own; pod: one Pod per execution (Kubernetes)"
        ),
    )
    concurrency: int | None = Field(
        default=None,
        ge=MIN_CONCURRENCY,
        le=MAX_CONCURRENCY,
        description="concurrent executions per replica",
    )
    replicas: int | None = Field(
        default=None, ge=MIN_REPLICAS, le=MAX_REPLICAS, description="warm runtime pods (Kubernetes)"
    )
    scale: ScaleIn | None = Field(
        default=None,
        description="autoscaling of a warm function's pods (Kubernetes; isolation warm only)",
    )
    kv: KVIn | None = Field(default=None, description="its KV storage (context.kv)")
    egress: EgressIn | None = Field(
        default=None, description="where its fetch may go (default: nowhere)"
    )

    retry: dict[str, Any] | None = Field(
        default=None,
        description=(
            "how its async invocations are retried (`spec.retry`): maxAttempts, backoff"
            " {initialSeconds, factor, maxSeconds}, retryOn, maxAgeSeconds"
        ),
    )
    on_success: str | None = Field(
        default=None,
        pattern=FUNCTION_NAME_PATTERN,
        description="a function called async with the record of each async invocation succeeding",
    )
    on_failure: str | None = Field(
        default=None,
        pattern=FUNCTION_NAME_PATTERN,
        description="a function called async with the record of each async invocation dead",
    )

    schedule: str | None = Field(
        default=None,
        description="five-field cron (or @hourly, ...): each tick queues an async invocation",
    )
    time_zone: str | None = Field(default=None, description="the schedule's IANA time zone (UTC)")
    schedule_event: dict[str, Any] | None = Field(
        default=None, description="the event of scheduled invocations (a JSON object)"
    )
    revision_history_limit: int | None = Field(
        default=None,
        ge=MIN_HISTORY_LIMIT,
        le=MAX_HISTORY_LIMIT,
        description=f"versions kept, with their code (default {DEFAULT_HISTORY_LIMIT})",
    )
    rollout: dict[str, Any] | None = Field(
        default=None,
        description=(
            "progressive rollout of each new version (`spec.rollout`): steps (percents ending at"
            " 100), interval (60s), maxErrorRate (0.05)"
        ),
    )

    @model_validator(mode="after")
    def _scale_is_for_warm(self) -> DeployRequest:
        if self.scale is not None and self.isolation != "warm":
            raise ValueError("scale applies to isolation warm only")
        if self.retry is not None:
            check_retry(self.retry)
        if self.rollout is not None:
            RolloutSpec.parse(self.rollout)
        if self.schedule is not None:
            check_schedule(self.schedule, self.time_zone)
        elif self.time_zone is not None or self.schedule_event is not None:
            raise ValueError("time_zone and schedule_event go with schedule")
        return self


class DeployResponse(BaseModel):
    function_id: str


class LogEntry(BaseModel):
    timestamp: str
    level: str
    message: str


class ExecuteResponse(BaseModel):
    """What a successful `/execute` returns (passed through from the runtime)."""

    output: Any = None
    logs: list[LogEntry]
    execution_time_ms: float
    cpu_time_ms: float | None = Field(
        default=None, description="CPU time the function used; waiting on timers is not counted"
    )


class FetchRecord(BaseModel):
    method: str
    host: str | None
    status: int | None = Field(description="the HTTP status; null when no answer came")
    ms: float
    outcome: FetchOutcome


class InvocationRecord(BaseModel):
    """One finished invocation, as its runtime recorded it (vortex_runtime/records.py)."""

    invocation_id: str
    function: str
    version: str | None = Field(description="the sha-256 of the code that ran")
    function_version: int | None = Field(
        default=None, description="the function's version that ran (its X-Vortex-Version)"
    )
    started_at: str = Field(description="RFC 3339, UTC, milliseconds")
    duration_ms: float
    cpu_time_ms: float | None = None
    status: Literal["ok", "error"]
    error_type: str | None = None
    fetches: list[FetchRecord] | None = Field(
        default=None, description="the function's fetch requests, each redirect hop its own"
    )
    logs: list[LogEntry]


class InvocationRecords(BaseModel):
    """`GET /functions/{id}/logs`: the newest records first."""

    function_id: str
    records: list[InvocationRecord]


class HealthResponse(BaseModel):
    status: Literal["healthy", "unhealthy"]
    active_workers: int
    max_workers: int


class FunctionLoadOut(BaseModel):
    inflight: int = Field(description="executions in flight now")
    inflight_seconds: float = Field(description="their integral over time since `instance` began")
    versions: dict[str, list[int]] = Field(
        default_factory=dict,
        description="per version number: [executions, failures] since `instance` began",
    )


class ConcurrencyReport(BaseModel):
    """`GET /internal/concurrency`: this replica's load per function, for the autoscaler.

    Two reports of one `instance` give each function's average in flight between them:
    the difference of `inflight_seconds` over the difference of `at`."""

    instance: str = Field(description="this API process; a new one restarts the integrals")
    at: float = Field(description="the process's monotonic clock, in seconds")
    namespace: str = Field(description="the namespace of the functions this replica serves")
    functions: dict[str, FunctionLoadOut]


class TickRequest(BaseModel):
    """`POST /internal/ticks/{id}`: queue the function's cron tick at `tick`."""

    model_config = ConfigDict(extra="forbid")
    tick: AwareDatetime = Field(description="the tick's time, RFC 3339 with its offset")


class TickQueued(BaseModel):
    invocation_id: str = Field(description="the tick's invocation, `<name>.<UTC minute>`")
    created: bool = Field(description="false when this tick had been queued before")


class ScaleOut(BaseModel):
    """`spec.scale` of an autoscaled warm function, with its defaults applied."""

    min_replicas: int
    max_replicas: int
    target_concurrency: float


class FunctionSpecOut(BaseModel):
    timeout_ms: int
    memory_mb: int
    cpu_limit_ms: int | None = None
    kv: KVOut | None = None
    egress: EgressOut | None = None
    env: dict[str, str]
    isolation: Isolation
    concurrency: int | None = None
    replicas: int | None = None
    scale: ScaleOut | None = None
    retry: dict[str, Any] = Field(description="`spec.retry` with its defaults applied")
    on_success: str | None = None
    on_failure: str | None = None
    schedule: str | None = None
    time_zone: str | None = None
    schedule_event: Any = None
    revision_history_limit: int = DEFAULT_HISTORY_LIMIT
    rollout: dict[str, Any] | None = None
    traffic: list[dict[str, Any]] = Field(
        default_factory=list,
        description="the split between versions (`{version | latest, percent, tag?}`); empty:"
        " the latest version takes every execution",
    )


class FunctionStatusOut(BaseModel):
    phase: str
    ready: bool
    ready_replicas: int | None = None
    # The autoscaler's last decision and the executions in flight it saw (spec.scale only).
    desired_replicas: int | None = None
    observed_concurrency: float | None = None
    # spec.schedule: the latest tick queued and its invocation id
    last_schedule_time: str | None = None
    last_schedule_invocation: str | None = None
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    latest_version: int | None = None


class FunctionInfo(BaseModel):
    function_id: str
    code_sha256: str | None
    created_at: str | None
    spec: FunctionSpecOut
    status: FunctionStatusOut


class FunctionList(BaseModel):
    functions: list[FunctionInfo]


class VersionOut(BaseModel):
    """One immutable version of a function (`vortex_kube.versions.Version`)."""

    version: int
    code_sha256: str
    spec: dict[str, Any] = Field(description="the execution fields of the spec (camelCase)")
    created_at: str
    created_by: str | None = None
    rollback_of: int | None = Field(
        default=None, description="the version whose code and spec a rollback took"
    )


class VersionList(BaseModel):
    """`GET /functions/{id}/versions`: the kept versions, oldest first, and the split."""

    function_id: str
    latest_version: int | None
    revision_history_limit: int
    versions: list[VersionOut]
    traffic: list[dict[str, Any]]
    rollout: dict[str, Any] | None = Field(
        default=None,
        description="the progressive rollout of the latest version: {version, stable, percent,"
        " phase (Progressing, Complete, RolledBack), reason, ...}",
    )


class RollbackRequest(BaseModel):
    """`POST /functions/{id}/rollback`: a new version with this version's code and spec."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int = Field(ge=1, description="the kept version to roll back to")


class TrafficRequest(BaseModel):
    """`PUT /functions/{id}/traffic`: the new split (null or [] for all to the latest)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    traffic: list[dict[str, Any]] | None = Field(
        description="`[{version: 3, percent: 90}, {latest: true, percent: 10, tag: canary}]`"
    )


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    message: str


class ErrorResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    error: ErrorDetail


class AsyncAccepted(BaseModel):
    """`POST /async/{id}`: the invocation was queued (or, for a repeat, had been)."""

    invocation_id: str
    status: Literal["queued", "running", "failed", "succeeded", "dead"]


class AttemptOut(BaseModel):
    attempt: int
    started_at: str
    finished_at: str | None = None
    error: dict[str, str] | None = Field(default=None, description="{type, message}")


class AsyncInvocationOut(BaseModel):
    """`GET /invocations/{id}`: an async invocation and its attempts."""

    invocation_id: str
    function: str
    status: Literal["queued", "running", "failed", "succeeded", "dead"] = Field(
        description=(
            "queued: waiting for its first attempt; running; failed: an attempt failed and the"
            " next is due at next_attempt_at; succeeded; dead: no attempt is left"
        )
    )
    attempts: int
    created_at: str
    finished_at: str | None = None
    next_attempt_at: str | None = None
    result: ExecuteResponse | None = Field(
        default=None, description="what the function returned: {output, logs, execution_time_ms}"
    )
    error: dict[str, str] | None = Field(default=None, description="the last attempt's error")
    history: list[AttemptOut]
    redrives: int = Field(description="times it was retried from the dead letters")


class DeadLetters(BaseModel):
    """`GET /functions/{id}/dead-letters`: its dead async invocations, newest first."""

    function_id: str
    invocations: list[AsyncInvocationOut]
