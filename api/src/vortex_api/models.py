"""Request and response bodies of the HTTP API, as pydantic models (they also feed `/docs`).

Routes validate input with these; `/execute` answers are passed through from the runtime as
bytes, so `ExecuteResponse` documents that shape without being built per request.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# A function id doubles as a Kubernetes object name and, prefixed with "vf-", as a Service name:
# a DNS-1123 label short enough for the prefix.
FUNCTION_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,58}[a-z0-9])?$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"

# The VortexFunction CRD's bounds (crds/vortexfunction.yaml; tests/unit/api/test_crd_contract.py
# holds the two equal): a body `/deploy` accepts is one the cluster accepts too.
MAX_TIMEOUT_MS = 300_000
MIN_MEMORY_MB, MAX_MEMORY_MB = 16, 4096
MAX_CONCURRENCY = 64
MAX_REPLICAS = 100
MAX_ENV_ENTRIES = 64
MAX_ENV_VALUE_CHARS = 32_768


class DeployRequest(BaseModel):
    """`POST /deploy`: the code plus optional settings."""

    model_config = ConfigDict(extra="forbid", strict=True)

    code: str = Field(min_length=1, description="function body or module with a default export")
    name: str | None = Field(
        default=None,
        pattern=FUNCTION_NAME_PATTERN,
        description="function id to use (lower-case DNS label); a UUID is generated without it",
    )
    timeout_ms: int | None = Field(
        default=None, ge=1, le=MAX_TIMEOUT_MS, description="wall-clock timeout"
    )
    memory_mb: int | None = Field(
        default=None, ge=MIN_MEMORY_MB, le=MAX_MEMORY_MB, description="isolate heap limit"
    )
    env: dict[str, Annotated[str, Field(max_length=MAX_ENV_VALUE_CHARS)]] | None = Field(
        default=None, max_length=MAX_ENV_ENTRIES, description="context.env of the function"
    )
    isolation: Literal["warm", "pod"] | None = Field(
        default=None, description="warm isolates (default) or one Pod per execution (Kubernetes)"
    )
    concurrency: int | None = Field(
        default=None, ge=1, le=MAX_CONCURRENCY, description="concurrent executions per replica"
    )
    replicas: int | None = Field(
        default=None, ge=0, le=MAX_REPLICAS, description="warm runtime pods (Kubernetes)"
    )


class DeployResponse(BaseModel):
    function_id: str


class LogEntry(BaseModel):
    timestamp: str
    level: str
    message: str


class ExecuteResponse(BaseModel):
    """What a successful `/execute` returns (passed through from the runtime)."""

    output: Any = None
    logs: list[LogEntry]
    execution_time_ms: float


class HealthResponse(BaseModel):
    status: Literal["healthy", "unhealthy"]
    active_workers: int
    max_workers: int


class FunctionSpecOut(BaseModel):
    timeout_ms: int
    memory_mb: int
    env: dict[str, str]
    isolation: Literal["warm", "pod"]
    concurrency: int | None = None
    replicas: int | None = None


class FunctionStatusOut(BaseModel):
    phase: str
    ready: bool
    ready_replicas: int | None = None
    conditions: list[dict[str, Any]] = Field(default_factory=list)


class FunctionInfo(BaseModel):
    function_id: str
    code_sha256: str | None
    created_at: str | None
    spec: FunctionSpecOut
    status: FunctionStatusOut


class FunctionList(BaseModel):
    functions: list[FunctionInfo]


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    message: str


class ErrorResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    error: ErrorDetail
