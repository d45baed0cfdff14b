"""The VortexFunction contract: names, labels, children, and the spec with its defaults and bounds.

The CRD (crds/vortexfunction.yaml) carries the same defaults and bounds as `FunctionSpec`;
tests/unit/kube/test_contract.py holds the two equal, and `/deploy` validates with the same
constants, so a body the API accepts is one the API server accepts. The API's Kubernetes backend,
its one-shot pods and the operator's reconciler all read a VortexFunction through
`FunctionSpec.parse` (pure, no I/O).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from vortex_kube.cron import Schedule, zone
from vortex_kube.rollout import RolloutSpec
from vortex_kube.versions import DEFAULT_HISTORY_LIMIT, Traffic, VersionError
from vortex_runtime import egress as egress_rules

GROUP = "vortex.dev"
VERSION = "v1alpha1"
PLURAL = "vortexfunctions"
KIND = "VortexFunction"
SHORT_NAME = "vf"
API_VERSION = f"{GROUP}/{VERSION}"

# Children (Deployment, Service, NetworkPolicy, Secret, one-shot Pods) are `vf-<name>`.
CHILD_PREFIX = "vf-"
CODE_PREFIX = "functions/"
CODE_ANNOTATION = "vortex.dev/code-sha256"
# Set by the API's rollback with the spec it patches: "<version> <code sha-256>". While the
# function's code is still that hash, the operator records the change as a rollback to that
# version (`rollback_of`), a new version even where code and spec equal the latest's.
ROLLBACK_ANNOTATION = "vortex.dev/rollback"


def rollback_annotation(number: int, sha256: str) -> str:
    return f"{number} {sha256}"


def parse_rollback(value: object) -> tuple[int, str] | None:
    """The (version, code hash) of a ROLLBACK_ANNOTATION value, or None if it is not one."""
    parts = str(value).split() if isinstance(value, str) else []
    if len(parts) == 2 and parts[0].isdigit() and len(parts[1]) == 64:
        return int(parts[0]), parts[1]
    return None


FUNCTION_LABEL = "vortex.dev/function"
ISOLATION_LABEL = "vortex.dev/isolation"
INVOCATION_LABEL = "vortex.dev/invocation"
NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
FUNCTION_APP = "vortex-function"
OPERATOR = "vortex-operator"
API = "vortex-api"
FINALIZER = "vortex.dev/code-objects"

# The runtime image every component defaults to (the chart's `runtime.image` too).
DEFAULT_RUNTIME_IMAGE = "vortex-runtime:0.1.0"
RUNTIME_PORT = 8080
RUNTIME_USER = 10001
# The MinIO keys a runtime pod reads code with; the operator's Secret `vf-<name>` holds them.
SECRET_KEYS = ("MINIO_ACCESS_KEY", "MINIO_SECRET_KEY")

# A function id doubles as a Kubernetes object name and, prefixed with "vf-", as a Service name:
# a DNS-1123 label short enough for the prefix.
FUNCTION_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,58}[a-z0-9])?$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"

# Where each API replica reports the executions in flight per function to the operator's
# autoscaler (admin key): `vortex_api.models.ConcurrencyReport`.
CONCURRENCY_PATH = "/internal/concurrency"
# Where the operator's leader queues a scheduled function's cron tick: POST {TICKS_PATH}/{name}.
TICKS_PATH = "/internal/ticks"

# Defaults and bounds of the spec (the CRD's `default`, `minimum`, `maximum`, `maxItems`, ...).
DEFAULT_TIMEOUT_MS, MIN_TIMEOUT_MS, MAX_TIMEOUT_MS = 5000, 1, 300_000
# spec.cpuLimitMs: no default (only the timeout applies without it).
MIN_CPU_LIMIT_MS, MAX_CPU_LIMIT_MS = 1, MAX_TIMEOUT_MS
DEFAULT_MEMORY_MB, MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 16, 4096
DEFAULT_CONCURRENCY, MIN_CONCURRENCY, MAX_CONCURRENCY = 4, 1, 64
DEFAULT_REPLICAS, MIN_REPLICAS, MAX_REPLICAS = 1, 0, 100
# spec.scale (warm functions): the autoscaler's bounds, target and idle time. minReplicas 0 scales
# a function to zero pods once idle; the API holds its next requests until a pod is ready. The
# shared pool keeps POOL_MIN_REPLICAS or more: every shared function lives there.
DEFAULT_MIN_SCALE, MIN_MIN_SCALE, POOL_MIN_REPLICAS = 1, 0, 1
DEFAULT_MAX_SCALE, MIN_MAX_SCALE = 10, 1
MIN_TARGET_CONCURRENCY = 1
# The default target: this share of `concurrency` in flight per pod.
DEFAULT_TARGET_SHARE = 0.7
DEFAULT_SCALE_TO_ZERO_S, MIN_SCALE_TO_ZERO_S, MAX_SCALE_TO_ZERO_S = 300, 10, 86_400
# spec.kv.namespace: a keyspace shared by the functions that name it (a DNS label).
KV_NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# spec.retry (async invocations): attempts, exponential backoff, which errors are retried, and
# how old an invocation may grow before it is dead. A FunctionError is retried only if listed.
DEFAULT_MAX_ATTEMPTS, MIN_MAX_ATTEMPTS, MAX_MAX_ATTEMPTS = 3, 1, 100
DEFAULT_BACKOFF_INITIAL_S, DEFAULT_BACKOFF_FACTOR, DEFAULT_BACKOFF_MAX_S = 1.0, 2.0, 60.0
MIN_BACKOFF_S, MAX_BACKOFF_S, MIN_BACKOFF_FACTOR, MAX_BACKOFF_FACTOR = 0.0, 3600.0, 1.0, 10.0
DEFAULT_MAX_AGE_S, MIN_MAX_AGE_S, MAX_MAX_AGE_S = 3600, 1, 7 * 86_400
# The error types an async invocation may end in: what the API and the runtimes answer.
RETRYABLE_ERRORS = (
    "Timeout",
    "RuntimeUnavailable",
    "CapacityExceeded",
    "MemoryLimitExceeded",
    "CpuLimitExceeded",
    "NotReady",
    "KVUnavailable",
    "FunctionError",
)
DEFAULT_RETRY_ON = ("Timeout", "RuntimeUnavailable", "CapacityExceeded", "MemoryLimitExceeded")
MAX_ENV_ENTRIES = 64
MAX_ENV_NAME_CHARS = 128
MAX_ENV_VALUE_CHARS = 32_768
MAX_CODE_BYTES = 1 << 20
DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "25m", "memory": "128Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}

# shared: isolates in the install's pool of runtime pods; warm: a Deployment of its own; pod: a
# one-shot Pod per invocation.
Isolation = Literal["shared", "warm", "pod"]
ISOLATIONS: tuple[Isolation, ...] = ("shared", "warm", "pod")
DEFAULT_ISOLATION: Isolation = "shared"
# The Ready reason of a shared function whose code is stored: the pool serves it.
POOLED = "Pooled"
# The pool's pods, and the EndpointSlices of its Service (the chart's `<fullname>-pool`).
POOL_COMPONENT = "pool"
COMPONENT_LABEL = "app.kubernetes.io/component"
# Every pool pod in a namespace (the chart labels them as function pods of component pool).
POOL_PODS = f"{NAME_LABEL}={FUNCTION_APP},{COMPONENT_LABEL}={POOL_COMPONENT}"
# The Ready reason of a shared function with env read from a Secret or ConfigMap (`valueFrom`):
# the pool receives env values with each request, so such a function needs pods of its own.
ENV_NOT_POOLED = "EnvNotPooled"


def env_not_pooled(env: Iterable[dict[str, Any]]) -> str | None:
    """Why the pool cannot serve a function with these env entries (`{name, value}` or
    `{name, valueFrom}`), or None if it can: the operator's Ready message and the API's error."""
    names = [str(e["name"]) for e in env if "value" not in e]
    if not names:
        return None
    return (
        f"env {', '.join(names)} uses valueFrom, which the shared pool cannot read;"
        " use isolation warm or pod, or give the value"
    )


def kv_namespace(spec: dict[str, Any]) -> str | None:
    """`spec.kv.namespace`, if the spec names one."""
    kv = spec.get("kv")
    value = kv.get("namespace") if isinstance(kv, dict) else None
    return str(value) if value else None


def egress_of(spec: dict[str, Any]) -> dict[str, Any] | None:
    """`spec.egress` (`{allow, maxRequests}`, as given), if the spec has one."""
    value = spec.get("egress")
    if not isinstance(value, dict):
        return None
    return {k: v for k, v in value.items() if k in ("allow", "maxRequests") and v is not None}


def check_egress(value: object) -> None:
    """Raise ValueError (egress.RuleError) saying what is wrong with an `egress` object: the
    runtime's own parser, so the API refuses at deploy time what a runtime would refuse."""
    egress_rules.parse(value)


def parse_isolation(value: object) -> Isolation:
    """An isolation value as the CRD allows it; anything else is the default."""
    for isolation in ISOLATIONS:
        if value == isolation:
            return isolation
    return DEFAULT_ISOLATION


def child_name(function: str) -> str:
    """`vf-<name>`: the Deployment, Service, NetworkPolicy and Secret of a function."""
    return f"{CHILD_PREFIX}{function}"


def function_of_child(name: str) -> str | None:
    """The function a `vf-<name>` child belongs to, or None if the name is not a child's."""
    return name[len(CHILD_PREFIX) :] if name.startswith(CHILD_PREFIX) else None


def code_key(sha256: str) -> str:
    """The content-addressed object key of a code object."""
    return f"{CODE_PREFIX}{sha256}.js"


def sha_of_key(key: str) -> str | None:
    """The SHA-256 in a code object key, or None if it is not one of ours."""
    if key.startswith(CODE_PREFIX) and key.endswith(".js"):
        digest = key[len(CODE_PREFIX) : -len(".js")]
        if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
            return digest
    return None


def function_labels(function: str, manager: str = OPERATOR) -> dict[str, str]:
    """Labels every child (and every runtime pod) of a function carries."""
    return {NAME_LABEL: FUNCTION_APP, MANAGED_BY_LABEL: manager, FUNCTION_LABEL: function}


def warm_selector(function: str) -> dict[str, str]:
    """The label selector of a function's warm pods (one-shot pods carry isolation=pod)."""
    return {FUNCTION_LABEL: function, ISOLATION_LABEL: "warm"}


def function_body(name: str, spec: dict[str, Any], manager: str = API) -> dict[str, Any]:
    """A whole VortexFunction object for `spec` (camelCase, as the API server speaks)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "labels": {MANAGED_BY_LABEL: manager}},
        "spec": spec,
    }


def condition_is_true(status: dict[str, Any], kind: str) -> bool:
    """Whether `status.conditions` has `kind` with status "True"."""
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status")) == "True"
    return False


def condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The condition `kind` of `status.conditions`, if present."""
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


@dataclass(frozen=True)
class CodeRef:
    config_map: str | None = None
    config_map_key: str | None = None
    s3_bucket: str | None = None
    s3_key: str | None = None


@dataclass(frozen=True)
class ScaleSpec:
    """`spec.scale` with its defaults: the autoscaler keeps the warm pods between the bounds,
    aiming at `target_concurrency` executions in flight per pod."""

    min_replicas: int = DEFAULT_MIN_SCALE
    max_replicas: int = DEFAULT_MAX_SCALE
    target_concurrency: float = DEFAULT_CONCURRENCY * DEFAULT_TARGET_SHARE
    scale_to_zero_after_s: int = DEFAULT_SCALE_TO_ZERO_S

    @classmethod
    def parse(cls, scale: dict[str, Any], concurrency: int) -> ScaleSpec:
        def number(key: str, default: int) -> int:
            value = scale.get(key)
            return int(value) if value is not None else default

        target = scale.get("targetConcurrency")
        return cls(
            min_replicas=number("minReplicas", DEFAULT_MIN_SCALE),
            max_replicas=number("maxReplicas", DEFAULT_MAX_SCALE),
            target_concurrency=(
                float(target) if target else default_target_concurrency(concurrency)
            ),
            scale_to_zero_after_s=number("scaleToZeroAfterSeconds", DEFAULT_SCALE_TO_ZERO_S),
        )


@dataclass(frozen=True)
class RetrySpec:
    """`spec.retry` with its defaults: how an async invocation that failed is tried again.

    Attempt n (n >= 1) that fails with an error listed in `retry_on` is followed by attempt n+1
    after `delay_s(n)`: `initial_s * factor**(n-1)`, at most `max_s`, while attempts are left
    and the invocation is younger than `max_age_s`; otherwise it is dead."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    initial_s: float = DEFAULT_BACKOFF_INITIAL_S
    factor: float = DEFAULT_BACKOFF_FACTOR
    max_s: float = DEFAULT_BACKOFF_MAX_S
    retry_on: frozenset[str] = frozenset(DEFAULT_RETRY_ON)
    max_age_s: int = DEFAULT_MAX_AGE_S

    @classmethod
    def parse(cls, retry: dict[str, Any] | None) -> RetrySpec:
        """From `spec.retry` as the CRD has it (camelCase); absent fields take the defaults."""
        retry = retry if isinstance(retry, dict) else {}
        given = retry.get("backoff")
        backoff: dict[str, Any] = given if isinstance(given, dict) else {}
        retry_on = retry.get("retryOn")

        def number(source: dict[str, Any], key: str, default: float) -> float:
            value = source.get(key)
            return float(value) if value is not None else default

        return cls(
            max_attempts=int(retry.get("maxAttempts") or DEFAULT_MAX_ATTEMPTS),
            initial_s=number(backoff, "initialSeconds", DEFAULT_BACKOFF_INITIAL_S),
            factor=number(backoff, "factor", DEFAULT_BACKOFF_FACTOR),
            max_s=number(backoff, "maxSeconds", DEFAULT_BACKOFF_MAX_S),
            retry_on=(
                frozenset(str(t) for t in retry_on)
                if isinstance(retry_on, list)
                else frozenset(DEFAULT_RETRY_ON)
            ),
            max_age_s=int(retry.get("maxAgeSeconds") or DEFAULT_MAX_AGE_S),
        )

    def spec(self) -> dict[str, Any]:
        """Back to `spec.retry`'s shape, every field given."""
        return {
            "maxAttempts": self.max_attempts,
            "backoff": {
                "initialSeconds": self.initial_s,
                "factor": self.factor,
                "maxSeconds": self.max_s,
            },
            "retryOn": sorted(self.retry_on),
            "maxAgeSeconds": self.max_age_s,
        }

    def delay_s(self, attempt: int) -> float:
        """The wait after failed attempt `attempt` (1-based) before the next one."""
        return float(min(self.max_s, self.initial_s * self.factor ** max(0, attempt - 1)))

    def retries(self, error_type: str, attempt: int) -> bool:
        """Whether a failure of this type, on attempt `attempt`, is tried again (age aside)."""
        return error_type in self.retry_on and attempt < self.max_attempts


def retry_of(spec: dict[str, Any]) -> RetrySpec:
    """`spec.retry` of a VortexFunction spec, defaults applied."""
    value = spec.get("retry")
    return RetrySpec.parse(value if isinstance(value, dict) else None)


def check_retry(value: object) -> None:
    """Raise ValueError saying what is wrong with a `retry` object (what the CRD refuses)."""
    if not isinstance(value, dict):
        raise ValueError("retry must be an object")
    unknown = set(value) - {"maxAttempts", "backoff", "retryOn", "maxAgeSeconds"}
    if unknown:
        raise ValueError(f"retry has unknown fields: {', '.join(sorted(unknown))}")
    backoff = value.get("backoff", {})
    if not isinstance(backoff, dict) or set(backoff) - {"initialSeconds", "factor", "maxSeconds"}:
        raise ValueError("retry.backoff takes initialSeconds, factor and maxSeconds")
    checks: list[tuple[str, object, float, float, bool]] = [
        ("maxAttempts", value.get("maxAttempts"), MIN_MAX_ATTEMPTS, MAX_MAX_ATTEMPTS, True),
        ("maxAgeSeconds", value.get("maxAgeSeconds"), MIN_MAX_AGE_S, MAX_MAX_AGE_S, True),
        (
            "backoff.initialSeconds",
            backoff.get("initialSeconds"),
            MIN_BACKOFF_S,
            MAX_BACKOFF_S,
            False,
        ),
        ("backoff.maxSeconds", backoff.get("maxSeconds"), MIN_BACKOFF_S, MAX_BACKOFF_S, False),
        ("backoff.factor", backoff.get("factor"), MIN_BACKOFF_FACTOR, MAX_BACKOFF_FACTOR, False),
    ]
    for name, number, low, high, integer in checks:
        if number is None:
            continue
        kinds = (int,) if integer else (int, float)
        if isinstance(number, bool) or not isinstance(number, kinds) or not low <= number <= high:
            kind = "an integer" if integer else "a number"
            raise ValueError(f"retry.{name} must be {kind} from {low:g} to {high:g}")
    retry_on = value.get("retryOn")
    if retry_on is not None:
        if not isinstance(retry_on, list) or not all(isinstance(t, str) for t in retry_on):
            raise ValueError("retry.retryOn must be a list of error types")
        strange = sorted(set(retry_on) - set(RETRYABLE_ERRORS))
        if strange:
            raise ValueError(
                f"retry.retryOn: {', '.join(strange)} is not an error type; one of"
                f" {', '.join(RETRYABLE_ERRORS)}"
            )


def check_schedule(schedule: str, time_zone: str | None) -> None:
    """Raise ValueError saying what is wrong with `spec.schedule` and `spec.timeZone`."""
    Schedule.parse(schedule)
    zone(time_zone)


def default_target_concurrency(concurrency: int) -> float:
    """The target when `spec.scale.targetConcurrency` is absent: 70% of `concurrency`."""
    return max(float(MIN_TARGET_CONCURRENCY), concurrency * DEFAULT_TARGET_SHARE)


@dataclass(frozen=True)
class FunctionSpec:
    """`spec` of a VortexFunction with the CRD's defaults applied.

    The API server applies the CRD's defaults; `parse` applies the same ones again, so neither the
    API nor the operator depends on them (older objects, unit tests).
    """

    code: str | None = None
    code_ref: CodeRef | None = None
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    memory_mb: int = DEFAULT_MEMORY_MB
    cpu_limit_ms: int | None = None
    kv_namespace: str | None = None  # spec.kv.namespace; None: the function's own keyspace
    egress: dict[str, Any] | None = None  # spec.egress; None: fetch reaches nothing
    resources: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    replicas: int = DEFAULT_REPLICAS
    concurrency: int = DEFAULT_CONCURRENCY
    env: tuple[dict[str, Any], ...] = ()
    isolation: Isolation = DEFAULT_ISOLATION
    # Set only when the object has `spec.scale` (then the autoscaler owns `replicas`).
    scale: ScaleSpec | None = None
    retry: RetrySpec = RetrySpec()
    on_success: str | None = None  # spec.onSuccess / onFailure: functions called async after
    on_failure: str | None = None
    schedule: str | None = None  # spec.schedule (five-field cron), in spec.timeZone
    time_zone: str | None = None
    schedule_event: Any = None  # spec.scheduleEvent: the event of each scheduled invocation
    # spec.revisionHistoryLimit and spec.traffic (vortex_kube.versions); a split that does not
    # parse counts as none, and `traffic_error` says why.
    revision_history_limit: int = DEFAULT_HISTORY_LIMIT
    traffic: Traffic = field(default_factory=Traffic)
    traffic_error: str | None = None
    # spec.rollout (vortex_kube.rollout); one that does not parse counts as none.
    rollout: RolloutSpec | None = None
    # Which fields the object itself set (the rest are defaults), by spec key.
    given: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, spec: dict[str, Any] | None) -> FunctionSpec:
        spec = spec or {}
        ref = spec.get("codeRef")
        code_ref = None
        if isinstance(ref, dict):
            cm = ref.get("configMapKeyRef") or {}
            s3 = ref.get("s3") or {}
            code_ref = CodeRef(
                config_map=cm.get("name"),
                config_map_key=cm.get("key"),
                s3_bucket=s3.get("bucket"),
                s3_key=s3.get("key"),
            )
        env = tuple(e for e in spec.get("env") or [] if isinstance(e, dict) and e.get("name"))
        isolation = parse_isolation(spec.get("isolation"))
        concurrency = int(spec.get("concurrency") or DEFAULT_CONCURRENCY)
        scale = spec.get("scale")
        traffic, traffic_error = Traffic(), None
        try:
            traffic = Traffic.parse(spec.get("traffic"))
        except VersionError as exc:
            traffic_error = str(exc)
        try:
            rollout = RolloutSpec.parse(spec.get("rollout"))
        except VersionError:
            rollout = None
        return cls(
            code=spec.get("code") if isinstance(spec.get("code"), str) else None,
            code_ref=code_ref,
            timeout_ms=int(spec.get("timeoutMs") or DEFAULT_TIMEOUT_MS),
            memory_mb=int(spec.get("memoryMb") or DEFAULT_MEMORY_MB),
            cpu_limit_ms=int(spec["cpuLimitMs"]) if spec.get("cpuLimitMs") else None,
            kv_namespace=kv_namespace(spec),
            egress=egress_of(spec),
            resources=dict(spec.get("resources") or DEFAULT_RESOURCES),
            replicas=int(spec["replicas"]) if spec.get("replicas") is not None else 1,
            concurrency=concurrency,
            env=env,
            isolation=isolation,
            scale=ScaleSpec.parse(scale, concurrency) if isinstance(scale, dict) else None,
            retry=retry_of(spec),
            on_success=str(spec["onSuccess"]) if spec.get("onSuccess") else None,
            on_failure=str(spec["onFailure"]) if spec.get("onFailure") else None,
            schedule=str(spec["schedule"]) if spec.get("schedule") else None,
            time_zone=str(spec["timeZone"]) if spec.get("timeZone") else None,
            schedule_event=spec.get("scheduleEvent"),
            revision_history_limit=int(spec.get("revisionHistoryLimit") or DEFAULT_HISTORY_LIMIT),
            traffic=traffic,
            traffic_error=traffic_error,
            rollout=rollout,
            given=frozenset(k for k, v in spec.items() if v is not None),
        )
