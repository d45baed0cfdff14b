"""Request and response bodies of the HTTP API, as pydantic models (they also feed `/docs`).

Routes validate input with these; `/execute` answers are passed through from the runtime as
bytes, so `ExecuteResponse` documents that shape without being built per request.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# A function id doubles as a Kubernetes object name and, prefixed with "vf-", as a Service name:
# a DNS-1123 label short enough for the prefix.
FUNCTION_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,58}[a-z0-9])?$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"


class DeployRequest(BaseModel):
    """`POST /deploy`: the code plus optional settings."""

    model_config = ConfigDict(extra="forbid", strict=True)

    code: str = Field(min_length=1, description="function body or module with a default export")
    name: str | None = Field(
        default=None,
        pattern=FUNCTION_NAME_PATTERN,
        description="function id to use (lower-case DNS label); a UUID is generated without it",
    )
    timeout_ms: int | None = Field(default=None, ge=1, description="wall-clock timeout")
    memory_mb: int | None = Field(default=None, ge=16, description="isolate heap limit")
    env: dict[str, str] | None = Field(default=None, description="context.env of the function")
    isolation: Literal["warm", "pod"] | None = Field(
        default=None, description="warm isolates (default) or one Pod per execution (Kubernetes)"
    )
    concurrency: int | None = Field(
        default=None, ge=1, le=1000, description="concurrent executions per replica"
    )
    replicas: int | None = Field(
        default=None, ge=0, le=100, description="warm runtime pods (Kubernetes)"
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
