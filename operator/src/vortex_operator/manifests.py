"""Builders of a function's children, as plain dicts ready for server-side apply (pure).

- `secret`: `vf-<name>`, the MinIO keys its pods read code with (referenced, never inlined).
- `deployment`: `vf-<name>`, warm runtime pods; the pod template carries the code hash, so a new
  hash rolls the pods (maxUnavailable 0, readiness on /readyz) and a revert is a hash swap.
- `service`: `vf-<name>`, port 80 (`http`) to the pods' 8080.
- `network_policy`: `vf-<name>`, the function's pods (warm and one-shot) may only reach DNS and
  MinIO.

Every child is adopted (`kopf.adopt`): owner reference to the VortexFunction, same namespace.
The controller applies what `children` returns.
"""

from __future__ import annotations

import base64
import ipaddress
import math
from typing import Any, cast

import kopf

from vortex_operator.model import (
    CODE_ANNOTATION,
    ISOLATION_LABEL,
    FunctionRef,
    FunctionSpec,
    code_key,
    function_labels,
    warm_selector,
)
from vortex_operator.settings import Settings

CONTAINER = "runtime"
SECRET_KEYS = ("MINIO_ACCESS_KEY", "MINIO_SECRET_KEY")


def _meta(ref: FunctionRef, extra_labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": ref.child,
        "namespace": ref.namespace,
        "labels": {**function_labels(ref.name), **(extra_labels or {})},
    }


def secret(ref: FunctionRef, settings: Settings) -> dict[str, Any]:
    access, secret_key = settings.runtime_credentials()
    data = {
        "MINIO_ACCESS_KEY": base64.b64encode(access.encode()).decode(),
        "MINIO_SECRET_KEY": base64.b64encode(secret_key.encode()).decode(),
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(ref),
        "type": "Opaque",
        "data": data,
    }


def _env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def runtime_env(
    ref: FunctionRef, spec: FunctionSpec, sha256: str, settings: Settings
) -> list[dict[str, Any]]:
    """The runtime's environment: its code object, limits, MinIO (keys from the Secret), env."""
    env = [
        _env("VORTEX_RUNTIME_HOST", "0.0.0.0"),
        _env("VORTEX_RUNTIME_PORT", str(settings.runtime_port)),
        _env("VORTEX_LOG_FORMAT", "json"),
        _env("VORTEX_FUNCTION_NAME", ref.name),
        _env("VORTEX_CODE_KEY", code_key(sha256)),
        _env("VORTEX_CODE_SHA256", sha256),
        _env("VORTEX_TIMEOUT_MS", str(spec.timeout_ms)),
        _env("VORTEX_MEMORY_MB", str(spec.memory_mb)),
        _env("VORTEX_POOL_SIZE", str(spec.concurrency)),
        _env("MINIO_ENDPOINT", settings.minio_endpoint),
        _env("MINIO_BUCKET", settings.minio_bucket),
        _env("MINIO_SECURE", "true" if settings.minio_secure else "false"),
    ]
    for key in SECRET_KEYS:
        env.append({"name": key, "valueFrom": {"secretKeyRef": {"name": ref.child, "key": key}}})
    for item in spec.env:
        entry: dict[str, Any] = {"name": f"VORTEX_ENV_{item['name']}"}
        if "valueFrom" in item:
            entry["valueFrom"] = item["valueFrom"]
        else:
            entry["value"] = str(item.get("value", ""))
        env.append(entry)
    return env


def _security_context(settings: Settings) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": settings.runtime_user,
        "runAsGroup": settings.runtime_user,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def deployment(
    ref: FunctionRef, spec: FunctionSpec, sha256: str, settings: Settings
) -> dict[str, Any]:
    port = settings.runtime_port
    pod_labels = {**function_labels(ref.name), **warm_selector(ref.name)}
    # In-flight invocations finish within their timeout after SIGTERM; the drain comes first.
    grace = settings.drain_seconds + math.ceil(spec.timeout_ms / 1000) + 2
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": settings.runtime_image,
        "imagePullPolicy": settings.runtime_image_pull_policy,
        "args": ["serve"],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": runtime_env(ref, spec, sha256, settings),
        "resources": spec.resources,
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 1,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "securityContext": _security_context(settings),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if settings.drain_seconds:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": settings.drain_seconds}}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(ref, {ISOLATION_LABEL: "warm"}),
        "spec": {
            "replicas": spec.replicas,
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": 120,
            "selector": {"matchLabels": warm_selector(ref.name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {CODE_ANNOTATION: sha256},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": grace,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": settings.runtime_user,
                        "runAsGroup": settings.runtime_user,
                        "fsGroup": settings.runtime_user,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}
                    ],
                },
            },
        },
    }


def service(ref: FunctionRef, settings: Settings) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(ref),
        "spec": {
            "type": "ClusterIP",
            "selector": warm_selector(ref.name),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def minio_peers(settings: Settings) -> tuple[list[dict[str, Any]], int]:
    """NetworkPolicy peers and port of MinIO, from the settings or derived from the endpoint."""
    host, _, port_text = settings.minio_endpoint.rpartition(":")
    if not host:  # no port in the endpoint
        host, port_text = port_text, ""
    port = settings.minio_port or int(port_text or (443 if settings.minio_secure else 80))
    if settings.minio_peers:
        return list(settings.minio_peers), port
    host = host.strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        parts = host.split(".")
        if len(parts) >= 2 and (len(parts) == 2 or parts[2] == "svc"):
            return [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": parts[1]}},
                    "podSelector": {"matchLabels": dict(settings.minio_pod_labels)},
                }
            ], port
        # An external host name: NetworkPolicy cannot name it, so only the port is pinned.
        return [{"ipBlock": {"cidr": "0.0.0.0/0"}}], port
    bits = 32 if address.version == 4 else 128
    return [{"ipBlock": {"cidr": f"{address}/{bits}"}}], port


def network_policy(ref: FunctionRef, settings: Settings) -> dict[str, Any]:
    peers, port = minio_peers(settings)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(ref),
        "spec": {
            # Warm pods and the API's one-shot pods of this function alike.
            "podSelector": {"matchLabels": {"vortex.dev/function": ref.name}},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": list(settings.dns_peers),
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {"to": peers, "ports": [{"protocol": "TCP", "port": port}]},
            ],
        },
    }


def children(
    ref: FunctionRef, spec: FunctionSpec, sha256: str, settings: Settings
) -> list[dict[str, Any]]:
    """Every child the function should have, adopted, in apply order (Secret before pods)."""
    objs = [secret(ref, settings), network_policy(ref, settings)]
    if spec.isolation == "warm":
        objs += [service(ref, settings), deployment(ref, spec, sha256, settings)]
    kopf.adopt(objs, owner=kopf.Body(cast(kopf.RawBody, ref.owner_body())))
    return objs


def unwanted(spec: FunctionSpec) -> list[tuple[str, str]]:
    """(kind, reason) of children that must not exist for this spec."""
    if spec.isolation == "pod":
        return [("Deployment", "isolation is pod"), ("Service", "isolation is pod")]
    return []
