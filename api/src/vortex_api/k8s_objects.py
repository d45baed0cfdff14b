"""Pure translations between the API's view and Kubernetes objects (no I/O).

- `function_body` / `function_patch`: the `VortexFunction` for a deploy request.
- `function_from_object`: a `VortexFunction` (spec + status) as a `Function`.
- `slice_endpoints`: the function and ready runtime URLs an EndpointSlice of `vf-<name>` lists.
- `one_shot_pod`: the Pod that runs a single execution of an `isolation: pod` function.

The Kubernetes backend and the pod runner call these; unit tests check them directly.
"""

from __future__ import annotations

import math
from typing import Any

from vortex_api.functions import Function, Isolation
from vortex_api.kube import GROUP, KIND, VERSION
from vortex_api.models import DeployRequest
from vortex_api.settings import Settings

SERVICE_PREFIX = "vf-"
SERVICE_LABEL = "kubernetes.io/service-name"
MANAGED_BY = {"app.kubernetes.io/managed-by": "vortex-api"}
_RUNTIME_OVERHEAD_MB = 128


def function_spec(request: DeployRequest, settings: Settings) -> dict[str, Any]:
    """The `spec` of the VortexFunction for a deploy request (absent fields are null)."""
    return {
        "code": request.code,
        "timeoutMs": request.timeout_ms or settings.default_timeout_ms,
        "memoryMb": request.memory_mb or settings.default_memory_mb,
        "env": [{"name": k, "value": v} for k, v in (request.env or {}).items()],
        "isolation": request.isolation or "warm",
        "concurrency": request.concurrency,
        "replicas": request.replicas,
    }


def function_body(name: str, request: DeployRequest, settings: Settings) -> dict[str, Any]:
    spec = {k: v for k, v in function_spec(request, settings).items() if v is not None}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "labels": dict(MANAGED_BY)},
        "spec": spec,
    }


def function_patch(request: DeployRequest, settings: Settings) -> dict[str, Any]:
    """A merge patch replacing the spec fields the API sets (nulls remove old values)."""
    return {"spec": {**function_spec(request, settings), "codeRef": None}}


def _condition(status: dict[str, Any], kind: str) -> bool:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status")) == "True"
    return False


def function_from_object(obj: dict[str, Any], settings: Settings) -> Function:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    env_spec = [e for e in spec.get("env") or [] if isinstance(e, dict) and e.get("name")]
    env = {str(e["name"]): str(e["value"]) if "value" in e else "<from secret>" for e in env_spec}
    concurrency = spec.get("concurrency")
    replicas = spec.get("replicas")
    ready_replicas = status.get("readyReplicas")
    cap = None
    if concurrency:
        cap = int(concurrency) * max(1, int(ready_replicas or replicas or 1))
    isolation: Isolation = "pod" if spec.get("isolation") == "pod" else "warm"
    return Function(
        function_id=str(meta.get("name")),
        timeout_ms=int(spec.get("timeoutMs") or settings.default_timeout_ms),
        memory_mb=int(spec.get("memoryMb") or settings.default_memory_mb),
        code_sha256=status.get("codeSha256"),
        env=env,
        isolation=isolation,
        concurrency=concurrency,
        replicas=replicas,
        created_at=meta.get("creationTimestamp"),
        phase=str(status.get("phase") or "Pending"),
        ready=_condition(status, "Ready")
        or (isolation == "pod" and _condition(status, "CodeStored")),
        ready_replicas=ready_replicas,
        conditions=list(status.get("conditions") or []),
        code_object=status.get("codeObject"),
        env_spec=env_spec,
        inflight_cap=cap,
        resources=spec.get("resources"),
    ).prepare(send_env=False)


def slice_endpoints(obj: dict[str, Any], default_port: int) -> tuple[str | None, list[str]]:
    """(function name, ready runtime URLs) of an EndpointSlice; no name if not a function's."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    service = labels.get(SERVICE_LABEL) or ""
    if not service.startswith(SERVICE_PREFIX):
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
    return service[len(SERVICE_PREFIX) :], urls


def _env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def one_shot_pod(
    function: Function, pod_name: str, invocation_id: str, settings: Settings
) -> dict[str, Any]:
    """The Pod for one execution: deadline = the function's timeout, its resources, its code."""
    port = settings.runtime_port
    env = [
        _env("VORTEX_RUNTIME_HOST", "0.0.0.0"),
        _env("VORTEX_RUNTIME_PORT", str(port)),
        _env("VORTEX_CODE_KEY", function.code_object or ""),
        _env("VORTEX_CODE_SHA256", function.code_sha256 or ""),
        _env("VORTEX_FUNCTION_NAME", function.function_id),
        _env("VORTEX_TIMEOUT_MS", str(function.timeout_ms)),
        _env("VORTEX_MEMORY_MB", str(function.memory_mb)),
        _env("VORTEX_POOL_SIZE", "1"),
        _env("MINIO_ENDPOINT", settings.minio_endpoint),
        _env("MINIO_BUCKET", settings.minio_bucket),
    ]
    if settings.minio_secret_name:
        for key in ("MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"):
            ref = {"secretKeyRef": {"name": settings.minio_secret_name, "key": key}}
            env.append({"name": key, "valueFrom": ref})
    else:
        env.append(_env("MINIO_ACCESS_KEY", settings.minio_access_key))
        env.append(_env("MINIO_SECRET_KEY", settings.minio_secret_key.get_secret_value()))
    for entry in function.env_spec:
        item = {k: v for k, v in entry.items() if k in ("value", "valueFrom")}
        env.append({"name": f"VORTEX_ENV_{entry['name']}", **item})
    memory = f"{function.memory_mb + _RUNTIME_OVERHEAD_MB}Mi"
    resources = function.resources or {"requests": {"memory": memory}, "limits": {"memory": memory}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "labels": {
                "app.kubernetes.io/name": "vortex-function",
                "vortex.dev/function": function.function_id,
                "vortex.dev/isolation": "pod",
                "vortex.dev/invocation": invocation_id,
                **MANAGED_BY,
            },
            "annotations": {"vortex.dev/code-sha256": function.code_sha256 or ""},
        },
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": math.ceil(function.timeout_ms / 1000)
            + settings.pod_deadline_extra_s,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "containers": [
                {
                    "name": "runtime",
                    "image": settings.runtime_image,
                    "ports": [{"name": "http", "containerPort": port}],
                    "env": env,
                    "resources": resources,
                    "readinessProbe": {
                        "httpGet": {"path": "/readyz", "port": port},
                        "periodSeconds": 1,
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
