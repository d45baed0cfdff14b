"""The VortexFunction resource as typed values: names, labels and the parsed spec (pure).

The API server applies the CRD's defaults; `FunctionSpec.parse` applies the same ones again so the
operator never depends on them (older objects, unit tests). `reconcile`, `manifests` and the
controller use these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

GROUP = "vortex.dev"
VERSION = "v1alpha1"
PLURAL = "vortexfunctions"
KIND = "VortexFunction"
API_VERSION = f"{GROUP}/{VERSION}"

CHILD_PREFIX = "vf-"
CODE_PREFIX = "functions/"
CODE_ANNOTATION = "vortex.dev/code-sha256"
FUNCTION_LABEL = "vortex.dev/function"
ISOLATION_LABEL = "vortex.dev/isolation"
NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "vortex-operator"
FIELD_MANAGER = "vortex-operator"
FINALIZER = "vortex.dev/code-objects"
DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "25m", "memory": "128Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}
MAX_CODE_BYTES = 1 << 20

Isolation = Literal["warm", "pod"]


def child_name(function: str) -> str:
    """`vf-<name>`: the Deployment, Service, NetworkPolicy and Secret of a function."""
    return f"{CHILD_PREFIX}{function}"


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


def function_labels(function: str) -> dict[str, str]:
    """Labels every child (and every warm pod) of a function carries."""
    return {
        NAME_LABEL: "vortex-function",
        MANAGED_BY_LABEL: MANAGER,
        FUNCTION_LABEL: function,
    }


def warm_selector(function: str) -> dict[str, str]:
    """The label selector of a function's warm pods (one-shot pods carry isolation=pod)."""
    return {FUNCTION_LABEL: function, ISOLATION_LABEL: "warm"}


@dataclass(frozen=True)
class CodeRef:
    config_map: str | None = None
    config_map_key: str | None = None
    s3_bucket: str | None = None
    s3_key: str | None = None


@dataclass(frozen=True)
class FunctionSpec:
    """`spec` of a VortexFunction with the CRD's defaults applied."""

    code: str | None
    code_ref: CodeRef | None
    timeout_ms: int = 5000
    memory_mb: int = 128
    resources: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    replicas: int = 1
    concurrency: int = 4
    env: tuple[dict[str, Any], ...] = ()
    isolation: Isolation = "warm"

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
        isolation: Isolation = "pod" if spec.get("isolation") == "pod" else "warm"
        return cls(
            code=spec.get("code") if isinstance(spec.get("code"), str) else None,
            code_ref=code_ref,
            timeout_ms=int(spec.get("timeoutMs") or 5000),
            memory_mb=int(spec.get("memoryMb") or 128),
            resources=dict(spec.get("resources") or DEFAULT_RESOURCES),
            replicas=int(spec["replicas"]) if spec.get("replicas") is not None else 1,
            concurrency=int(spec.get("concurrency") or 4),
            env=env,
            isolation=isolation,
        )


@dataclass(frozen=True)
class FunctionRef:
    """Who a function is: enough to name, own and post Events about it."""

    namespace: str
    name: str
    uid: str
    generation: int = 0

    @classmethod
    def of(cls, body: dict[str, Any]) -> FunctionRef:
        meta = body.get("metadata") or {}
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
            generation=int(meta.get("generation") or 0),
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def child(self) -> str:
        return child_name(self.name)

    def owner_body(self) -> dict[str, Any]:
        """A minimal body of the VortexFunction, for owner references and Events."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"namespace": self.namespace, "name": self.name, "uid": self.uid},
        }
