"""Pure translations between the API's view and Kubernetes objects (no I/O).

- `function_body` / `function_patch`: the `VortexFunction` for a deploy request.
- `function_from_object`: a `VortexFunction` (spec + status) as a `Function`.
- `slice_endpoints`: the group (function, or the pool) and ready runtime URLs of an EndpointSlice.
- `one_shot_pod`: the Pod that runs a single execution of an `isolation: pod` function.

The Kubernetes backend and the pod runner call these; unit tests check them directly.
"""

from __future__ import annotations

from typing import Any

from vortex_api.functions import Function
from vortex_api.models import DeployRequest, ScaleOut
from vortex_api.settings import Settings
from vortex_kube import contract
from vortex_kube.contract import (
    API,
    CODE_ANNOTATION,
    INVOCATION_LABEL,
    ISOLATION_LABEL,
    SERVICE_NAME_LABEL,
    child_name,
    condition,
    condition_is_true,
    function_labels,
    function_of_child,
)
from vortex_kube.podspec import RuntimeCode, one_shot_pod_spec
from vortex_kube.rollout import Rollout
from vortex_kube.versions import History, Traffic, VersionError


def function_spec(request: DeployRequest, settings: Settings) -> dict[str, Any]:
    """The `spec` of the VortexFunction for a deploy request (absent fields are null)."""
    return {
        "code": request.code,
        "timeoutMs": request.timeout_ms or settings.default_timeout_ms,
        "memoryMb": request.memory_mb or settings.default_memory_mb,
        "cpuLimitMs": request.cpu_limit_ms,
        "kv": {"namespace": request.kv.namespace} if request.kv and request.kv.namespace else None,
        "egress": request.egress.spec() if request.egress is not None else None,
        "env": [{"name": k, "value": v} for k, v in (request.env or {}).items()],
        "isolation": request.isolation or contract.DEFAULT_ISOLATION,
        "concurrency": request.concurrency,
        "replicas": request.replicas,
        "scale": request.scale.spec() if request.scale is not None else None,
        "retry": request.retry,
        "onSuccess": request.on_success,
        "onFailure": request.on_failure,
        "schedule": request.schedule,
        "timeZone": request.time_zone,
        "scheduleEvent": request.schedule_event,
        "revisionHistoryLimit": request.revision_history_limit,
        "rollout": request.rollout,
    }


def function_body(
    name: str, namespace: str, request: DeployRequest, settings: Settings
) -> dict[str, Any]:
    spec = {k: v for k, v in function_spec(request, settings).items() if v is not None}
    body = contract.function_body(name, spec, manager=API)
    body["metadata"]["namespace"] = namespace
    return body


def function_patch(request: DeployRequest, settings: Settings) -> dict[str, Any]:
    """A merge patch replacing the spec fields the API sets (nulls remove old values; the
    history limit, the rollout and the traffic split stay as they are unless given)."""
    spec = function_spec(request, settings)
    for kept in ("revisionHistoryLimit", "rollout"):
        if spec[kept] is None:
            del spec[kept]
    return {"spec": {**spec, "codeRef": None}}


# CodeStored=False reasons (the operator's) that no wait can heal, and the one that can.
NOT_RUNNABLE = ("CompileError", "CodeRefInvalid", "StorageError")
STORAGE_UNAVAILABLE = "StorageUnavailable"


def blocked_by(status: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    """(reason, message, extra) when the status says the function cannot run now: its code was
    never stored and the operator says why. None while code serves or is still being stored."""
    if status.get("codeSha256"):
        return None  # older code still serves
    stored = condition(status, "CodeStored")
    if stored is None or stored.get("status") != "False":
        return None
    reason = str(stored.get("reason") or "")
    if reason not in (*NOT_RUNNABLE, STORAGE_UNAVAILABLE):
        return None
    extra: dict[str, Any] = {}
    compile_error = status.get("compileError") or {}
    if reason == "CompileError":
        extra = {k: compile_error[k] for k in ("line", "column") if compile_error.get(k)}
    return reason, str(stored.get("message") or reason), extra


def function_from_object(obj: dict[str, Any], settings: Settings) -> Function:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    env_spec = [e for e in spec.get("env") or [] if isinstance(e, dict) and e.get("name")]
    env = {str(e["name"]): str(e["value"]) if "value" in e else "<from secret>" for e in env_spec}
    concurrency = spec.get("concurrency")
    replicas = spec.get("replicas")
    ready_replicas = status.get("readyReplicas")
    isolation = contract.parse_isolation(spec.get("isolation"))
    parsed_spec = contract.FunctionSpec.parse(spec)
    parsed = parsed_spec.scale
    cap = None
    if concurrency:
        pods = 1 if isolation == "shared" else max(1, int(ready_replicas or replicas or 1))
        if parsed is not None:  # autoscaled: what it may grow to (requests held meanwhile)
            pods = max(pods, parsed.max_replicas)
        cap = int(concurrency) * pods
    blocked = blocked_by(status)
    if isolation == "shared" and blocked is None:
        unreadable = contract.env_not_pooled(env_spec)
        if unreadable is not None:
            blocked = (contract.ENV_NOT_POOLED, unreadable, {})
    ready_condition = condition(status, "Ready") or {}
    scale = None
    if parsed is not None:
        scale = ScaleOut(
            min_replicas=parsed.min_replicas,
            max_replicas=parsed.max_replicas,
            target_concurrency=parsed.target_concurrency,
        )
    observed = status.get("observedConcurrency")
    function = Function(
        function_id=str(meta.get("name")),
        timeout_ms=int(spec.get("timeoutMs") or settings.default_timeout_ms),
        memory_mb=int(spec.get("memoryMb") or settings.default_memory_mb),
        cpu_limit_ms=int(spec["cpuLimitMs"]) if spec.get("cpuLimitMs") else None,
        kv_namespace=contract.kv_namespace(spec),
        egress=contract.egress_of(spec),
        retry=contract.retry_of(spec),
        on_success=spec.get("onSuccess") or None,
        on_failure=spec.get("onFailure") or None,
        schedule=spec.get("schedule") or None,
        time_zone=spec.get("timeZone") or None,
        schedule_event=spec.get("scheduleEvent"),
        last_schedule_time=status.get("lastScheduleTime"),
        last_schedule_invocation=status.get("lastScheduleInvocation"),
        code_sha256=status.get("codeSha256"),
        env=env,
        isolation=isolation,
        concurrency=concurrency,
        replicas=replicas,
        created_at=meta.get("creationTimestamp"),
        phase=str(status.get("phase") or "Pending"),
        ready=condition_is_true(status, "Ready")
        or (isolation == "pod" and condition_is_true(status, "CodeStored")),
        ready_replicas=ready_replicas,
        scale=scale,
        desired_replicas=status.get("desiredReplicas"),
        observed_concurrency=float(observed) if observed is not None else None,
        conditions=list(status.get("conditions") or []),
        code_object=status.get("codeObject"),
        env_spec=env_spec,
        inflight_cap=cap,
        resources=spec.get("resources"),
        blocked=blocked,
        ready_reason=ready_condition.get("reason"),
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
    ).prepare(send_env=isolation == "shared")
    return _with_versions(function, parsed_spec, status)


def _with_versions(
    function: Function, spec: contract.FunctionSpec, status: dict[str, Any]
) -> Function:
    """The function with the versions the operator keeps (`status.versions`), following
    `spec.traffic`. The pool serves any kept version by its code object, and a one-shot pod is
    made for the version chosen at dispatch. Warm pods run the code they were made with, the
    latest version; a warm function's other versions run in the pool (`KubernetesBackend`)."""
    history = History.from_json(status.get("versions"), spec.revision_history_limit)
    latest = history.latest
    if latest is None or latest.code_sha256 != function.code_sha256:
        return function  # not recorded yet, or recorded for a newer spec than is served
    traffic = spec.traffic
    rollout = _standing_rollout(status, latest.number)
    if not traffic.targets and rollout is not None:
        traffic = rollout.traffic()  # a split set in the spec wins over the rollout's
    try:
        traffic.check(history.numbers())
    except VersionError:
        traffic = Traffic()  # the operator says why in an event; all to the latest
    return function.with_versions(history, traffic)


def _standing_rollout(status: dict[str, Any], latest: int) -> Rollout | None:
    """The operator's rollout of the latest version, while it holds traffic (in progress, or
    rolled back until the next version)."""
    rollout = Rollout.read(status.get("rollout"))
    if rollout is None or rollout.version != latest or rollout.phase == "Complete":
        return None
    return rollout


# The routing group of the shared pool's pods: a name no function can have.
POOL_GROUP = ":pool"


def slice_endpoints(
    obj: dict[str, Any], default_port: int, pool_service: str | None = None
) -> tuple[str | None, list[str]]:
    """(group, ready runtime URLs) of an EndpointSlice: the function of a `vf-<name>` Service,
    or POOL_GROUP for the pool's Service; no group if neither."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    service = labels.get(SERVICE_NAME_LABEL) or ""
    function = (
        POOL_GROUP if pool_service and service == pool_service else function_of_child(service)
    )
    if function is None:
        return None, []
    ports = obj.get("ports") or []
    port = default_port
    for p in ports:
        if p.get("name") == "http" and p.get("port"):
            port = int(p["port"])
            break
    else:
        if ports and ports[0].get("port"):
            port = int(ports[0]["port"])
    urls = []
    for endpoint in obj.get("endpoints") or []:
        conditions = endpoint.get("conditions") or {}
        # A missing `ready` means ready (EndpointSlice API); terminating pods are not ready.
        if conditions.get("ready") is False or conditions.get("terminating") is True:
            continue
        for address in (endpoint.get("addresses") or [])[:1]:
            host = f"[{address}]" if ":" in address else address
            urls.append(f"http://{host}:{port}")
    return function, urls


def one_shot_pod(
    function: Function, pod_name: str, invocation_id: str, settings: Settings
) -> dict[str, Any]:
    """The Pod for one execution: deadline = the function's timeout, its resources, its code.

    MinIO keys come from `VORTEX_MINIO_SECRET_NAME` if set, else from the function's own Secret
    `vf-<name>` that the operator keeps; never inline."""
    code = RuntimeCode(
        function=function.function_id,
        code_key=function.code_object or "",
        sha256=function.code_sha256 or "",
        timeout_ms=function.timeout_ms,
        memory_mb=function.memory_mb,
        cpu_limit_ms=function.cpu_limit_ms,
        kv_namespace=function.kv_namespace,
        egress=function.egress,
        env=tuple(function.env_spec),
        secret=settings.minio_secret_name or child_name(function.function_id),
    )
    spec = one_shot_pod_spec(
        settings.platform(),
        code,
        resources=function.resources,
        deadline_extra_s=settings.pod_deadline_extra_s,
    )
    labels = function_labels(function.function_id, manager=API)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "namespace": settings.namespace,
            "labels": {**labels, ISOLATION_LABEL: "pod", INVOCATION_LABEL: invocation_id},
            "annotations": {CODE_ANNOTATION: function.code_sha256 or ""},
        },
        "spec": spec,
    }
