"""Typed settings of the operator, read from the environment through one cached getter.

Fields are read from `VORTEX_OPERATOR_<FIELD>`, except the MinIO connection, which keeps the names
the runtime and the API use (`MINIO_ENDPOINT`, `MINIO_ACCESS_KEY`, `MINIO_SECRET_KEY`,
`MINIO_BUCKET`, `MINIO_SECURE`), read by the one `vortex_runtime.settings.MinioSettings`. In the
cluster the MinIO keys come from a Secret through `secretKeyRef` in the operator's own Deployment.
`__main__`, the kopf startup handler and the controller read a `Settings`; tests build one directly.
"""

from __future__ import annotations

import json
import socket
from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from vortex_kube.contract import (
    DEFAULT_MAX_SCALE,
    DEFAULT_MIN_SCALE,
    DEFAULT_RUNTIME_IMAGE,
    MIN_MAX_SCALE,
    POOL_MIN_REPLICAS,
    RUNTIME_PORT,
    RUNTIME_USER,
)
from vortex_kube.podspec import Platform
from vortex_runtime.settings import MinioSettings


class Settings(BaseSettings):
    """Operator settings; field `x` is read from `VORTEX_OPERATOR_X` unless an alias says so."""

    model_config = SettingsConfigDict(
        env_prefix="VORTEX_OPERATOR_", extra="ignore", populate_by_name=True
    )

    # What to watch: no namespaces means the whole cluster.
    namespaces: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Runtime pods.
    runtime_image: str = DEFAULT_RUNTIME_IMAGE
    runtime_image_pull_policy: str = "IfNotPresent"
    runtime_port: int = RUNTIME_PORT
    runtime_user: int = RUNTIME_USER
    # Seconds a terminating warm pod keeps serving, so routers drop it before it stops listening.
    drain_seconds: int = Field(default=2, ge=0, le=30)
    cluster_domain: str = "cluster.local"

    # MinIO (MINIO_*): where code objects live. The operator writes; runtime pods only read.
    minio: MinioSettings = Field(default_factory=MinioSettings)
    # Credentials handed to runtime pods (through a per-function Secret); the operator's own when
    # unset. Give pods a read-only MinIO user in production.
    runtime_minio_access_key: SecretStr | None = None
    runtime_minio_secret_key: SecretStr | None = None
    storage_timeout_s: float = Field(default=5.0, gt=0)
    # How long deletion may wait for MinIO before the finalizer is released anyway.
    delete_timeout_s: float = Field(default=30.0, ge=0)
    # Old code objects kept per function besides the current one, on top of every kept version's.
    code_history: int = Field(default=2, ge=0, le=20)

    # NetworkPolicy egress peers (JSON lists of NetworkPolicyPeer). MinIO: derived from the endpoint
    # when empty (an IP becomes an ipBlock, `svc.namespace` a namespace selector).
    minio_peers: list[dict[str, Any]] = Field(default_factory=list)
    minio_pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "minio"}
    )
    minio_port: int | None = None
    dns_peers: list[dict[str, Any]] = Field(
        default_factory=lambda: [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ]
    )

    # Re-read codeRef sources this often (seconds).
    code_ref_interval_s: float = Field(default=30.0, gt=0)

    # Autoscaling (the leader only): warm functions with spec.scale and the shared pool follow the
    # executions in flight, read from every pod of the API Service each tick. Off without
    # api_service.
    autoscale: bool = True
    autoscale_interval_s: float = Field(default=2.0, gt=0)
    # Cron triggers (the leader only, through the API Service): how often functions' schedules
    # are looked at besides their ticks (a new schedule is seen within this).
    cron_interval_s: float = Field(default=10.0, gt=0)
    # The API's Service, its namespace (the operator's own when unset) and its admin key.
    api_service: str | None = None
    api_namespace: str | None = None
    api_admin_key: SecretStr | None = None
    # The shared pool's Deployment (in api_namespace) and its bounds; not scaled when unset.
    pool_deployment: str | None = None
    pool_min_replicas: int = Field(default=DEFAULT_MIN_SCALE, ge=POOL_MIN_REPLICAS)
    pool_max_replicas: int = Field(default=DEFAULT_MAX_SCALE, ge=MIN_MAX_SCALE)
    # Executions in flight per pool pod, across every shared function.
    pool_target_concurrency: float = Field(default=40.0, gt=0)

    # Leader election (python -m vortex_operator): one Lease, held by one replica at a time.
    leader_election: bool = True
    lease_name: str = "vortex-operator"
    lease_namespace: str | None = None
    lease_duration_s: int = Field(default=15, ge=2)
    lease_renew_s: float = Field(default=5.0, gt=0)
    identity: str = Field(default_factory=socket.gethostname)

    # Health endpoint (python -m vortex_operator): /healthz and /readyz.
    health_host: str = "0.0.0.0"
    health_port: int = 8081
    # Prometheus metrics (python -m vortex_operator): /metrics on this port; off when unset.
    metrics_port: int | None = None

    log_format: str = "json"

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("minio_peers", "dns_peers", mode="before")
    @classmethod
    def _peers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value

    def platform(self) -> Platform:
        """What every runtime pod the operator creates shares."""
        return Platform(
            image=self.runtime_image,
            pull_policy=self.runtime_image_pull_policy,
            port=self.runtime_port,
            user=self.runtime_user,
            minio_endpoint=self.minio.endpoint,
            minio_bucket=self.minio.bucket,
            minio_secure=self.minio.secure,
        )

    def runtime_credentials(self) -> tuple[str, str]:
        """The access and secret key runtime pods get."""
        access = self.runtime_minio_access_key or self.minio.access_key
        secret = self.runtime_minio_secret_key or self.minio.secret_key
        return access.get_secret_value(), secret.get_secret_value()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
