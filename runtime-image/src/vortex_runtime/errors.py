"""The runtime's error tree; server.py turns each into its HTTP status and JSON body.

    RuntimeFailure                  (base: .status, .type, .message, .details())
    ├── InvalidRequest      400     a malformed header or path
    │   └── InvalidJSON     400     the event body is not JSON
    ├── FunctionNotFound    404     no code under that key (many-function mode)
    ├── PayloadTooLarge     413     the event is over its limit
    ├── OutputTooLarge      413     the function's result is over its limit
    ├── FunctionError       500     the function threw (name, message, stack)
    ├── CompileError        500     the code does not compile (line, column)
    ├── CodeLoadError       503     the code is missing, too large or fails its checksum
    ├── NotReady            503     the code is not loaded yet
    ├── RuntimeBusy         503     every isolate is busy (Retry-After)
    ├── InvocationTimeout   504     the function ran past its timeout
    └── MemoryLimitExceeded 507     the isolate hit its heap limit

Foreign exceptions (py_mini_racer's, minio's) are mapped at the module that owns the client
(isolate.py, loader.py), with `raise X from exc`.
"""

from __future__ import annotations

from typing import Any


class RuntimeFailure(Exception):
    status = 500
    type = "RuntimeError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.logs: list[dict[str, Any]] = []

    def details(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message}


class InvalidRequest(RuntimeFailure):
    status = 400
    type = "InvalidRequest"


class InvalidJSON(InvalidRequest):
    type = "InvalidJSON"


class FunctionNotFound(RuntimeFailure):
    status = 404
    type = "FunctionNotFound"


class PayloadTooLarge(RuntimeFailure):
    status = 413
    type = "PayloadTooLarge"


class OutputTooLarge(RuntimeFailure):
    status = 413
    type = "OutputTooLarge"


class FunctionError(RuntimeFailure):
    status = 500
    type = "FunctionError"

    def __init__(self, name: str, message: str, stack: str = "") -> None:
        super().__init__(message)
        self.name = name
        self.stack = stack

    def details(self) -> dict[str, Any]:
        return {**super().details(), "name": self.name, "stack": self.stack}


class CompileError(RuntimeFailure):
    status = 500
    type = "CompileError"

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(f"{message}{where}")
        self.reason = message
        self.line = line
        self.column = column

    def details(self) -> dict[str, Any]:
        return {**super().details(), "line": self.line, "column": self.column}


class CodeLoadError(RuntimeFailure):
    status = 503
    type = "CodeLoadError"


class NotReady(RuntimeFailure):
    status = 503
    type = "NotReady"


class RuntimeBusy(RuntimeFailure):
    status = 503
    type = "RuntimeBusy"
    retry_after_s = 1


class InvocationTimeout(RuntimeFailure):
    status = 504
    type = "Timeout"


class MemoryLimitExceeded(RuntimeFailure):
    status = 507
    type = "MemoryLimitExceeded"
