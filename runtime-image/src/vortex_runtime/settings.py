"""Typed settings for the runtime, from `VORTEX_*` and `MINIO_*` environment variables.

Read once through `get_settings()`; the CLI (`__main__.py`) overrides fields from its flags.
The only module of the runtime that reads the environment: service.py asks these classes
whether MinIO is configured and for the function's own `VORTEX_ENV_*` variables.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class MinioSettings(BaseSettings):
    """Where code objects live, with the seed's variable names (`MINIO_ENDPOINT`, ...).

    The one definition of these settings: the runtime reads code with them, the operator stores
    code with them, and the API tells one-shot pods where code lives (`minio` field of their
    settings)."""

    model_config = SettingsConfigDict(env_prefix="MINIO_", extra="ignore")

    endpoint: str = "localhost:9000"
    access_key: SecretStr = SecretStr("minioadmin")
    secret_key: SecretStr = SecretStr("minioadmin")
    bucket: str = "vortex-functions"
    # TLS to S3.
    secure: bool = False

    @property
    def configured(self) -> bool:
        """Whether an endpoint was given (`MINIO_ENDPOINT`), rather than left at its default."""
        return "endpoint" in self.model_fields_set


# A shared KV namespace (spec.kv.namespace): a DNS label; kv.py prefixes keyspaces with it.
KV_NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# `VORTEX_ENV_<NAME>` variables become the function's `context.env.<NAME>`.
ENV_PREFIX = "VORTEX_ENV_"
# How long the runtime keeps an idle kept-alive connection open (uvicorn's default is 5 s). The
# API's runtime client reuses one for at most half of this (`vortex_api.fasthttp.IDLE_EXPIRY_S`),
# so it never writes a request onto a connection that the runtime is closing at that moment.
KEEP_ALIVE_S = 60


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VORTEX_")

    runtime_host: str = "0.0.0.0"
    runtime_port: int = 8080
    code_file: Path | None = None
    store_dir: Path | None = None
    code_key: str | None = None
    code_sha256: str | None = None
    function_name: str = "function"
    # Limits: each one is the default for functions that don't set their own.
    timeout_ms: int = Field(default=5000, ge=1, le=15 * 60 * 1000)
    memory_mb: int = Field(default=128, ge=8, le=4096)
    # CPU time an invocation may use on its isolate's thread (None: only the timeout applies).
    cpu_limit_ms: int | None = Field(default=None, ge=1, le=15 * 60 * 1000)
    # context.kv: files under this directory (local mode), else MinIO when it is configured.
    kv_dir: Path | None = None
    # The shared KV namespace of the one function (spec.kv.namespace); unset: its own keyspace.
    kv_namespace: str | None = Field(default=None, pattern=KV_NAMESPACE_PATTERN)
    # What `fetch` may reach (spec.egress as JSON, egress.py) when a request names none; unset:
    # nothing. The node's address (the downward API's status.hostIP) is denied like loopback.
    egress: str | None = None
    node_ip: str | None = None
    # `host:port` of the one DNS server `fetch` resolves names with; unset: the system's.
    fetch_dns_server: str | None = None
    pool_size: int = Field(default=8, ge=1, le=256)
    # Blank isolates (bootstrap evaluated) kept ready, so a new function starts in about a
    # millisecond; 0 turns the stock off.
    prewarm_isolates: int = Field(default=2, ge=0, le=64)
    max_event_bytes: int = 6 * 1024 * 1024
    max_output_bytes: int = 1024 * 1024
    max_log_entries: int = 1000
    max_log_bytes: int = 256 * 1024
    max_timers: int = 1000
    # How long an invocation may wait for a free isolate before a 503.
    queue_timeout_ms: int = 1000
    # Many-function mode: idle isolates of least recently used functions are closed past this.
    memory_budget_mb: int = 512
    # An isolate that cannot be closed within this time makes the process drain: no new
    # invocations, those in flight finish (within `drain_timeout_ms`), then it exits (restart).
    watchdog_grace_ms: int = 2000
    drain_timeout_ms: int = Field(default=30000, ge=0)
    # Idle isolates are probed this often: one that does not answer within the probe timeout
    # runs something of an earlier invocation and is recycled; the answers feed the budget.
    probe_interval_ms: int = Field(default=1000, ge=50)
    probe_timeout_ms: int = Field(default=250, ge=10)
    use_minio: bool = False
    # The CPU that serves (the event loop and the isolates of short invocations): "off" (the
    # default) leaves every thread free to run anywhere; "auto" pins local mode's workers, one
    # CPU each by worker index; a number names one. Then isolates are made on the other CPUs,
    # and CPU-bound ones moved there (sched.py).
    serve_cpu: str = Field(default="off", pattern=r"^(auto|off|[0-9]{1,4})$")
    # Set by local mode's supervisor for each worker, so that "auto" spreads them.
    worker_index: int | None = Field(default=None, ge=0)
    # A Unix socket to serve on as well as the TCP port (local mode's supervisor sets one per
    # worker, for the API's hop: no TCP stack on either side of it).
    runtime_uds: Path | None = None
    # Invocation records (records.py): appended to this file, rotated past the size, or written
    # to stdout when no file is given (the cluster, where the API reads them from pod logs).
    records_file: Path | None = None
    records_max_bytes: int = Field(default=8 * 1024 * 1024, ge=4096)
    # "json" logs one JSON object a line; anything else logs plain text (`--log-format`).
    log_format: str = "json"

    def function_env(self) -> dict[str, str]:
        """The `VORTEX_ENV_*` variables as they are now, without the prefix (single mode)."""
        return {k[len(ENV_PREFIX) :]: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}


@lru_cache(maxsize=1)
def get_settings() -> RuntimeSettings:
    return RuntimeSettings()


@lru_cache(maxsize=1)
def get_minio_settings() -> MinioSettings:
    return MinioSettings()
