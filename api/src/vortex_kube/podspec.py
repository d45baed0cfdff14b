"""The one builder of runtime pod specs: warm pods, one-shot pods and the shared pool's pods.

Every runtime pod gets the same hardening, which Pod Security `restricted` admits: non-root with a
fixed uid, a read-only root file system with a small in-memory `/tmp`, no capabilities, no
privilege escalation, seccomp `RuntimeDefault`, no service-account token and no service links.
MinIO credentials come only from a Secret (`secretKeyRef`), never inline, and `MINIO_SECURE`
turns TLS to S3 on when the install uses it.

The operator's `manifests.deployment` (warm pods) and the API's `k8s_objects.one_shot_pod` call
`warm_pod_spec` and `one_shot_pod_spec`; both read `Platform` from their settings (pure, no I/O).
The Helm chart renders the pool's Deployment (templates/pool/deployment.yaml) itself;
tests/e2e/test_chart.py holds its pod spec equal to `pool_pod_spec` built from the same values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vortex_kube.contract import RUNTIME_PORT, RUNTIME_USER, SECRET_KEYS
from vortex_runtime.egress import to_json

CONTAINER = "runtime"
ENV_PREFIX = "VORTEX_ENV_"
_TMP = {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}
# A one-shot pod without resources in its spec gets the isolate's heap plus this much.
ONE_SHOT_OVERHEAD_MB = 128


@dataclass(frozen=True)
class Platform:
    """What every runtime pod of one install shares: image, port, user, where code lives."""

    image: str
    minio_endpoint: str
    minio_bucket: str
    minio_secure: bool = False
    pull_policy: str = "IfNotPresent"
    port: int = RUNTIME_PORT
    user: int = RUNTIME_USER
    log_format: str = "json"


@dataclass(frozen=True)
class RuntimeCode:
    """One function's code object and limits, as a runtime pod runs them."""

    function: str
    code_key: str
    sha256: str
    timeout_ms: int
    memory_mb: int
    cpu_limit_ms: int | None = None
    kv_namespace: str | None = None
    egress: dict[str, Any] | None = None  # spec.egress, for VORTEX_EGRESS
    # The function's env entries as declared: {name, value} or {name, valueFrom}.
    env: tuple[dict[str, Any], ...] = ()
    # The Secret that holds SECRET_KEYS (MinIO read credentials).
    secret: str = ""


def _env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def _listen_env(platform: Platform) -> list[dict[str, Any]]:
    return [
        _env("VORTEX_RUNTIME_HOST", "0.0.0.0"),
        _env("VORTEX_RUNTIME_PORT", str(platform.port)),
        _env("VORTEX_LOG_FORMAT", platform.log_format),
    ]


def _minio_env(platform: Platform, secret: str) -> list[dict[str, Any]]:
    """Where code objects live; the keys only as references to `secret`."""
    env = [
        _env("MINIO_ENDPOINT", platform.minio_endpoint),
        _env("MINIO_BUCKET", platform.minio_bucket),
        _env("MINIO_SECURE", "true" if platform.minio_secure else "false"),
    ]
    for key in SECRET_KEYS:
        env.append({"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    return env


def runtime_env(platform: Platform, code: RuntimeCode, pool_size: int) -> list[dict[str, Any]]:
    """The runtime's environment: where it listens, its code object, limits, MinIO, user env."""
    env = [
        *_listen_env(platform),
        _env("VORTEX_FUNCTION_NAME", code.function),
        _env("VORTEX_CODE_KEY", code.code_key),
        _env("VORTEX_CODE_SHA256", code.sha256),
        _env("VORTEX_TIMEOUT_MS", str(code.timeout_ms)),
        _env("VORTEX_MEMORY_MB", str(code.memory_mb)),
        _env("VORTEX_POOL_SIZE", str(pool_size)),
        *_minio_env(platform, code.secret),
    ]
    if code.cpu_limit_ms:
        env.insert(7, _env("VORTEX_CPU_LIMIT_MS", str(code.cpu_limit_ms)))
    if code.kv_namespace:
        env.insert(7, _env("VORTEX_KV_NAMESPACE", code.kv_namespace))
    if code.egress:
        env.insert(7, _env("VORTEX_EGRESS", to_json(code.egress)))
        # fetch denies the node's own address as it denies loopback
        env.insert(8, _NODE_IP_ENV)
    for item in code.env:
        entry: dict[str, Any] = {"name": f"{ENV_PREFIX}{item['name']}"}
        if "valueFrom" in item:
            entry["valueFrom"] = item["valueFrom"]
        else:
            entry["value"] = str(item.get("value", ""))
        env.append(entry)
    return env


def container_security_context(platform: Platform) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": platform.user,
        "runAsGroup": platform.user,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _readiness(period_s: int = 1) -> dict[str, Any]:
    return {
        "httpGet": {"path": "/readyz", "port": "http"},
        "periodSeconds": period_s,
        "timeoutSeconds": 1,
        "successThreshold": 1,
        "failureThreshold": 2,
    }


def _container(
    platform: Platform, env: list[dict[str, Any]], resources: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": CONTAINER,
        "image": platform.image,
        "imagePullPolicy": platform.pull_policy,
        "args": ["serve"],
        "ports": [{"name": "http", "containerPort": platform.port, "protocol": "TCP"}],
        "env": env,
        "resources": resources,
        "readinessProbe": _readiness(),
        "securityContext": container_security_context(platform),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _pod_spec(platform: Platform, container: dict[str, Any]) -> dict[str, Any]:
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": platform.user,
            "runAsGroup": platform.user,
            "fsGroup": platform.user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [dict(_TMP)],
    }


def _serve_long(container: dict[str, Any], drain_s: int) -> None:
    """What a long-lived runtime pod (warm or pool) adds: a liveness probe, and a drain of
    `drain_s` (preStop) before SIGTERM, so routers drop the pod first."""
    container["livenessProbe"] = {
        "httpGet": {"path": "/healthz", "port": "http"},
        "periodSeconds": 10,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }
    if drain_s:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": drain_s}}}


def warm_pod_spec(
    platform: Platform,
    code: RuntimeCode,
    *,
    pool_size: int,
    resources: dict[str, Any],
    drain_s: int,
) -> dict[str, Any]:
    """The pod template spec of a function's warm Deployment.

    SIGTERM comes after a drain of `drain_s` (preStop), then in-flight invocations get their
    timeout to finish."""
    container = _container(platform, runtime_env(platform, code, pool_size), resources)
    _serve_long(container, drain_s)
    spec = _pod_spec(platform, container)
    spec["terminationGracePeriodSeconds"] = drain_s + math.ceil(code.timeout_ms / 1000) + 2
    return spec


def one_shot_pod_spec(
    platform: Platform,
    code: RuntimeCode,
    *,
    resources: dict[str, Any] | None,
    deadline_extra_s: int,
) -> dict[str, Any]:
    """The spec of a Pod that serves one execution: never restarted, killed past its deadline
    (the function's timeout plus `deadline_extra_s`)."""
    if not resources:
        memory = f"{code.memory_mb + ONE_SHOT_OVERHEAD_MB}Mi"
        resources = {"requests": {"memory": memory}, "limits": {"memory": memory}}
    container = _container(platform, runtime_env(platform, code, 1), resources)
    spec = _pod_spec(platform, container)
    spec["restartPolicy"] = "Never"
    spec["activeDeadlineSeconds"] = math.ceil(code.timeout_ms / 1000) + deadline_extra_s
    spec["terminationGracePeriodSeconds"] = 1
    return spec


# The pod's node (the downward API's status.hostIP), which fetch denies as it denies loopback.
_NODE_IP_ENV = {"name": "VORTEX_NODE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}


def pool_env(
    platform: Platform,
    *,
    memory_budget_mb: int,
    isolates_per_function: int,
    prewarm_isolates: int,
    secret: str,
) -> list[dict[str, Any]]:
    """The environment of a pool pod: many functions by code key, code read from MinIO."""
    return [
        *_listen_env(platform),
        _env("VORTEX_USE_MINIO", "true"),
        _env("VORTEX_MEMORY_BUDGET_MB", str(memory_budget_mb)),
        _env("VORTEX_POOL_SIZE", str(isolates_per_function)),
        _env("VORTEX_PREWARM_ISOLATES", str(prewarm_isolates)),
        _NODE_IP_ENV,  # its functions' fetch denies the node's own address
        *_minio_env(platform, secret),
    ]


def pool_pod_spec(
    platform: Platform,
    *,
    memory_budget_mb: int,
    isolates_per_function: int,
    prewarm_isolates: int,
    resources: dict[str, Any],
    drain_s: int,
    grace_s: int,
    secret: str,
) -> dict[str, Any]:
    """The pod template spec of the shared pool's Deployment (one per install).

    A pool pod serves every shared function (`POST /invoke/<code-key>`), loading each code object
    on first use; idle isolates of the least recently used functions close past
    `memory_budget_mb`, which must stay well below the memory limit. `grace_s` covers the drain
    and the longest invocation in flight."""
    env = pool_env(
        platform,
        memory_budget_mb=memory_budget_mb,
        isolates_per_function=isolates_per_function,
        prewarm_isolates=prewarm_isolates,
        secret=secret,
    )
    container = _container(platform, env, resources)
    _serve_long(container, drain_s)
    spec = _pod_spec(platform, container)
    spec["terminationGracePeriodSeconds"] = grace_s
    return spec
