"""Builders of a function's children, as plain dicts ready for server-side apply (pure).

- `secret`: `vf-<name>`, the MinIO keys its pods read code with (referenced, never inlined).
- `deployment`: `vf-<name>`, warm runtime pods; the pod template carries the code hash, so a new
  hash rolls the pods (maxUnavailable 0, readiness on /readyz) and a revert is a hash swap.
- `service`: `vf-<name>`, port 80 (`http`) to the pods' 8080.
- `network_policy`: `vf-<name>`, the function's pods (warm and one-shot) may only reach DNS and
  MinIO.

Every child is adopted (`kopf.adopt`): owner reference to the VortexFunction, same namespace.
The controller applies what `children` returns (nothing for a shared function, which the
install's pool serves) and deletes what `unwanted` lists.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Any, cast

import kopf

from vortex_kube.contract import (
    CODE_ANNOTATION,
    COMPONENT_LABEL,
    FUNCTION_APP,
    FUNCTION_LABEL,
    ISOLATION_LABEL,
    NAME_LABEL,
    POOL_COMPONENT,
    SECRET_KEYS,
    FunctionSpec,
    code_key,
    function_labels,
    warm_selector,
)
from vortex_kube.podspec import RuntimeCode, warm_pod_spec
from vortex_operator.model import FunctionRef
from vortex_operator.settings import Settings
from vortex_runtime import egress as egress_rules


def _meta(ref: FunctionRef, extra_labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": ref.child,
        "namespace": ref.namespace,
        "labels": {**function_labels(ref.name), **(extra_labels or {})},
    }


def secret(ref: FunctionRef, settings: Settings) -> dict[str, Any]:
    values = settings.runtime_credentials()
    data = {
        k: base64.b64encode(v.encode()).decode() for k, v in zip(SECRET_KEYS, values, strict=True)
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(ref),
        "type": "Opaque",
        "data": data,
    }


def runtime_code(ref: FunctionRef, spec: FunctionSpec, sha256: str) -> RuntimeCode:
    """The code object and limits the function's runtime pods run; keys from its Secret."""
    return RuntimeCode(
        function=ref.name,
        code_key=code_key(sha256),
        sha256=sha256,
        timeout_ms=spec.timeout_ms,
        memory_mb=spec.memory_mb,
        cpu_limit_ms=spec.cpu_limit_ms,
        kv_namespace=spec.kv_namespace,
        egress=spec.egress,
        env=spec.env,
        secret=ref.child,
    )


def deployment(
    ref: FunctionRef, spec: FunctionSpec, sha256: str, settings: Settings
) -> dict[str, Any]:
    pod_labels = {**function_labels(ref.name), **warm_selector(ref.name)}
    pod_spec = warm_pod_spec(
        settings.platform(),
        runtime_code(ref, spec, sha256),
        pool_size=spec.concurrency,
        resources=spec.resources,
        drain_s=settings.drain_seconds,
    )
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
                "spec": pod_spec,
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
    host, _, port_text = settings.minio.endpoint.rpartition(":")
    if not host:  # no port in the endpoint
        host, port_text = port_text, ""
    port = settings.minio_port or int(port_text or (443 if settings.minio.secure else 80))
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


# What a host rule outside the cluster may reach: the internet, without the ranges fetch denies.
_PUBLIC_V4 = {
    "ipBlock": {
        "cidr": "0.0.0.0/0",
        "except": [str(n) for n in egress_rules.RESERVED + egress_rules.PRIVATE if n.version == 4],
    }
}


def egress_peers(spec: dict[str, Any] | None) -> list[dict[str, Any]]:
    """NetworkPolicy egress entries for `spec.egress`: an IP or CIDR rule its block; a rule
    naming Services (`x.ns.svc.cluster.local`, `*.ns.svc...`, `*.svc.cluster.local`) the pods
    of that namespace (every namespace); any other host name the internet (NetworkPolicy
    cannot name hosts). A rule's port pins the port. The runtime checks each request itself."""
    entries: list[dict[str, Any]] = []
    for rule in egress_rules.parse(spec).rules if spec else ():
        if rule.network is not None:
            peer: dict[str, Any] = {"ipBlock": {"cidr": str(rule.network)}}
        else:
            namespace = rule.in_cluster_namespace()
            if namespace is None:
                peer = _PUBLIC_V4
            elif namespace:
                selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                peer = {"namespaceSelector": selector}
            else:
                peer = {"namespaceSelector": {}}
        entry: dict[str, Any] = {"to": [peer]}
        if rule.port is not None:
            entry["ports"] = [{"protocol": "TCP", "port": rule.port}]
        entries.append(entry)
    return entries


def pool_network_policy(ref: FunctionRef, spec: FunctionSpec) -> dict[str, Any]:
    """A shared function's egress on the pool's pods: NetworkPolicies add up, so the pool
    reaches what its functions' rules name, besides the chart's DNS and MinIO."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(ref),
        "spec": {
            "podSelector": {
                "matchLabels": {NAME_LABEL: FUNCTION_APP, COMPONENT_LABEL: POOL_COMPONENT}
            },
            "policyTypes": ["Egress"],
            "egress": egress_peers(spec.egress),
        },
    }


def network_policy(
    ref: FunctionRef, settings: Settings, spec: FunctionSpec | None = None
) -> dict[str, Any]:
    peers, port = minio_peers(settings)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(ref),
        "spec": {
            # Warm pods and the API's one-shot pods of this function alike.
            "podSelector": {"matchLabels": {FUNCTION_LABEL: ref.name}},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": list(settings.dns_peers),
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {"to": peers, "ports": [{"protocol": "TCP", "port": port}]},
                *egress_peers(spec.egress if spec is not None else None),
            ],
        },
    }


def children(
    ref: FunctionRef, spec: FunctionSpec, sha256: str, settings: Settings
) -> list[dict[str, Any]]:
    """Every child the function should have, adopted, in apply order (Secret before pods).

    A shared function has none: the install's pool serves it."""
    if spec.isolation == "shared":
        if not spec.egress or not spec.egress.get("allow"):
            return []
        objs = [pool_network_policy(ref, spec)]
        kopf.adopt(objs, owner=kopf.Body(cast(kopf.RawBody, ref.owner_body())))
        return objs
    objs = [secret(ref, settings), network_policy(ref, settings, spec)]
    if spec.isolation == "warm":
        objs += [service(ref, settings), deployment(ref, spec, sha256, settings)]
    kopf.adopt(objs, owner=kopf.Body(cast(kopf.RawBody, ref.owner_body())))
    return objs


def unwanted(spec: FunctionSpec) -> list[tuple[str, str]]:
    """(kind, reason) of children that must not exist for this spec."""
    if spec.isolation == "pod":
        return [("Deployment", "isolation is pod"), ("Service", "isolation is pod")]
    if spec.isolation == "shared":
        # Pods first: a warm pod still draining keeps reading code with its Secret.
        pooled_egress = bool(spec.egress and spec.egress.get("allow"))
        return [
            (kind, "isolation is shared")
            for kind in ("Deployment", "Service", "NetworkPolicy", "Secret")
            if not (kind == "NetworkPolicy" and pooled_egress)
        ]
    return []
