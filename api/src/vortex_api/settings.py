"""Typed settings of the API, read from the environment through one cached getter.

Everything is prefixed `VORTEX_` except the seed's MinIO variables (`MINIO_ENDPOINT`,
`MINIO_ACCESS_KEY`, `MINIO_SECRET_KEY`, `MINIO_BUCKET`), which keep their names. `app.create_app`,
`__main__` and the backends read a `Settings`; tests build one directly.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """API settings; field `x` is read from `VORTEX_X` unless an alias says otherwise."""

    model_config = SettingsConfigDict(env_prefix="VORTEX_", extra="ignore", populate_by_name=True)

    backend: Literal["local", "kubernetes"] = "local"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)

    # Bulkhead: concurrent executions per API process, and an optional default per function.
    max_workers: int = Field(default=10, ge=1)
    max_inflight_per_function: int | None = Field(default=None, ge=1)
    retry_after_s: int = Field(default=1, ge=1)

    # Function defaults and limits.
    default_timeout_ms: int = Field(default=5000, ge=1)
    max_timeout_ms: int = Field(default=300_000, ge=1)
    default_memory_mb: int = Field(default=128, ge=16)
    max_memory_mb: int = Field(default=4096, ge=16)
    timeout_grace_ms: int = Field(default=1000, ge=0)
    max_code_bytes: int = Field(default=1 << 20, ge=1)
    max_event_bytes: int = Field(default=6 << 20, ge=1)

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

    # Kubernetes backend.
    namespace: str = "default"
    runtime_image: str = "vortex-runtime:latest"
    runtime_port: int = 8080
    readiness_wait_s: float = Field(default=30.0, ge=0)
    pod_deadline_extra_s: int = Field(default=0, ge=0)
    minio_secret_name: str | None = None
    minio_endpoint: str = Field(
        default="localhost:9000", validation_alias=AliasChoices("MINIO_ENDPOINT", "minio_endpoint")
    )
    minio_access_key: str = Field(
        default="minioadmin",
        validation_alias=AliasChoices("MINIO_ACCESS_KEY", "minio_access_key"),
    )
    minio_secret_key: SecretStr = Field(
        default=SecretStr("minioadmin"),
        validation_alias=AliasChoices("MINIO_SECRET_KEY", "minio_secret_key"),
    )
    minio_bucket: str = Field(
        default="vortex-functions",
        validation_alias=AliasChoices("MINIO_BUCKET", "minio_bucket"),
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
