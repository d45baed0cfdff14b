"""Typed settings of the API, read from the environment through one cached getter.

Everything is prefixed `VORTEX_` except the seed's MinIO variables (`MINIO_ENDPOINT`,
`MINIO_BUCKET`, `MINIO_SECURE`, ...), which keep their names and are read by the one
`vortex_runtime.settings.MinioSettings`. `app.create_app`,
`__main__` and the backends read a `Settings`; tests build one directly.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vortex_kube import contract
from vortex_kube.podspec import Platform
from vortex_runtime.settings import MinioSettings


class Settings(BaseSettings):
    """API settings; field `x` is read from `VORTEX_X` unless an alias says otherwise."""

    model_config = SettingsConfigDict(env_prefix="VORTEX_", extra="ignore", populate_by_name=True)

    backend: Literal["local", "kubernetes"] = "local"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)

    # Logs: "text", one line a record for a person (local mode's default), or "json", one object
    # a line (the default with the kubernetes backend); and one access line per execution.
    log_format: Literal["text", "json"] = "text"
    access_log: bool = True

    # Bulkhead: concurrent executions per API process, and an optional default per function.
    max_workers: int = Field(default=10, ge=1)
    max_inflight_per_function: int | None = Field(default=None, ge=1)
    retry_after_s: int = Field(default=1, ge=1)

    # Function defaults and limits.
    default_timeout_ms: int = Field(default=contract.DEFAULT_TIMEOUT_MS, ge=1)
    max_timeout_ms: int = Field(default=contract.MAX_TIMEOUT_MS, ge=1)
    default_memory_mb: int = Field(default=contract.DEFAULT_MEMORY_MB, ge=contract.MIN_MEMORY_MB)
    max_memory_mb: int = Field(default=contract.MAX_MEMORY_MB, ge=contract.MIN_MEMORY_MB)
    timeout_grace_ms: int = Field(default=1000, ge=0)
    max_code_bytes: int = Field(default=contract.MAX_CODE_BYTES, ge=1)
    max_event_bytes: int = Field(default=6 << 20, ge=1)

    # Async invocations (POST /async/{id}): the queue ("sqlite": a file under the data dir,
    # local mode's default; "nats": JetStream at nats_url; "none": refused, the kubernetes
    # backend's default until it has one), how many this process runs at once (within the
    # bulkhead; default: half of max_workers, so that /execute keeps room), and how long ended
    # ones are kept (at least the 24 h of Idempotency-Key). With NATS, an attempt whose process
    # went silent for nats_ack_wait_s is handed to another.
    async_queue: Literal["sqlite", "nats", "none"] | None = None
    nats_url: str = "nats://127.0.0.1:4222"
    nats_ack_wait_s: float = Field(default=30.0, ge=0.5, le=3600)
    async_workers: int | None = Field(default=None, ge=1)
    async_retention_s: int = Field(default=7 * 86_400, ge=86_400)

    # Auth: Bearer keys. No admin key means deploy/delete are open; no invoke keys means execute
    # is open (the admin key is always accepted where an invoke key is).
    admin_key: SecretStr | None = None
    invoke_keys: SecretStr | None = Field(default=None, description="comma-separated invoke keys")

    # Local backend.
    data_dir: Path = Path(".vortex")
    local_workers: int = Field(default=2, ge=1)
    worker_start_timeout_s: float = Field(default=30.0, gt=0)
    worker_python: str | None = None
    # the runtime executable workers run (`vortex-runtime`); default: this Python's vortex_runtime
    runtime_path: str | None = None
    # passed on to every worker as its VORTEX_SERVE_CPU (`auto`: one CPU each); unset: theirs
    serve_cpu: str | None = None
    # Each worker's file of invocation records rotates past this size, keeping one older part.
    records_max_bytes: int = Field(default=8 << 20, ge=4096)

    # Kubernetes backend.
    namespace: str = "default"
    runtime_image: str = contract.DEFAULT_RUNTIME_IMAGE
    runtime_port: int = contract.RUNTIME_PORT
    readiness_wait_s: float = Field(default=30.0, ge=0)
    # How long a request for a function scaled to zero (spec.scale.minReplicas 0) is held while
    # the autoscaler wakes it, before 503 NotReady with Retry-After.
    cold_start_wait_s: float = Field(default=60.0, ge=0)
    pod_deadline_extra_s: int = Field(default=0, ge=0)
    minio_secret_name: str | None = None
    # The Service of the shared pool (the chart's `<fullname>-pool`); None: no pool, so shared
    # functions cannot run.
    pool_service: str | None = None
    # The label selector of the API's own pods (the chart's): their stdout keeps the records of
    # one-shot pods, which are deleted after their invocation. None: those records are not kept.
    api_pods: str | None = None
    # How long `/deploy` of a shared function waits for the operator to store its code (and
    # then warms it), so that its first execute is warm; past it, deploy answers anyway.
    deploy_wait_s: float = Field(default=10.0, ge=0)
    # Where code lives (MINIO_*), for one-shot pods; their keys come from a Secret.
    minio: MinioSettings = Field(default_factory=MinioSettings)

    @model_validator(mode="after")
    def _cluster_logs_json(self) -> Settings:
        if "log_format" not in self.model_fields_set and self.backend == "kubernetes":
            self.log_format = "json"
        if self.async_queue is None:
            self.async_queue = "sqlite" if self.backend == "local" else "none"
        if self.async_workers is None:  # half the bulkhead: /execute keeps room meanwhile
            self.async_workers = max(1, self.max_workers // 2)
        return self

    def platform(self) -> Platform:
        """What the one-shot pods the API creates share with every runtime pod."""
        return Platform(
            image=self.runtime_image,
            port=self.runtime_port,
            minio_endpoint=self.minio.endpoint,
            minio_bucket=self.minio.bucket,
            minio_secure=self.minio.secure,
        )

    @property
    def invoke_key_list(self) -> list[str]:
        """The invoke keys, split on commas, blanks dropped."""
        if self.invoke_keys is None:
            return []
        return [k.strip() for k in self.invoke_keys.get_secret_value().split(",") if k.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
