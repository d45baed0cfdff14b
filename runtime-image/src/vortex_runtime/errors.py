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
    ├── KVUnavailable       503     KV storage is not configured or cannot be reached (/kv)
    ├── NotReady            503     the code is not loaded yet
    ├── RuntimeBusy         503     every isolate is busy (Retry-After)
    ├── InvocationTimeout   504     the function ran past its timeout
    ├── CpuLimitExceeded    504     the function used more CPU time than its `cpuLimitMs`
    └── MemoryLimitExceeded 507     the isolate hit its heap limit

Foreign exceptions (py_mini_racer's, minio's) are mapped at the module that owns the client
(isolate.py, loader.py), with `raise X from exc`.

Text that comes from a function (a `FunctionError`'s name, message and stack, a
`CompileError`'s reason) is bounded in bytes as it goes on the wire (UTF-8 inside a JSON
string, escapes included) and cut with the `TRUNCATED` marker: the name to 256 bytes, the
message to 8 KiB, the stack to 16 KiB. js/bootstrap.js applies the same bounds before the text
leaves the isolate (isolate.py passes them in); the constructors here apply them again to text
from anywhere else, such as V8's own report of an exception.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_ERROR_NAME_BYTES = 256
MAX_ERROR_MESSAGE_BYTES = 8 * 1024
MAX_ERROR_STACK_BYTES = 16 * 1024
# Ends a log message or error text that was cut to its bound.
TRUNCATED = "... [truncated]"
_SURROGATE = re.compile("[\ud800-\udfff]")


def wire_bytes(text: str) -> int:
    """The size of `text` inside a JSON string sent as UTF-8, escapes included."""
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


def bounded(text: str, limit: int) -> str:
    """`text` with lone surrogates (which UTF-8 cannot carry) replaced by U+FFFD, cut with the
    `TRUNCATED` marker to at most `limit` bytes on the wire (see `wire_bytes`)."""
    # Every character takes at least one byte: what lies past `limit` of them is cut anyway.
    cut = len(text) > limit
    if cut:
        text = text[:limit]
    # JSON decoding has already joined each valid surrogate pair into one character.
    text = _SURROGATE.sub("\ufffd", text)
    # An escaped control character is the widest, at six bytes.
    if not cut and (len(text) * 6 <= limit or wire_bytes(text) <= limit):
        return text
    room = limit - len(TRUNCATED)
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with the marker
        mid = (low + high + 1) // 2
        if wire_bytes(text[:mid]) <= room:
            low = mid
        else:
            high = mid - 1
    return text[:low] + TRUNCATED


class RuntimeFailure(Exception):
    status = 500
    type = "RuntimeError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.logs: list[dict[str, Any]] = []
        # CPU time the invocation used on its isolate's thread, where it got that far
        self.cpu_time_ms: float | None = None

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
        super().__init__(bounded(message, MAX_ERROR_MESSAGE_BYTES))
        self.name = bounded(name, MAX_ERROR_NAME_BYTES)
        self.stack = bounded(stack, MAX_ERROR_STACK_BYTES)

    def details(self) -> dict[str, Any]:
        return {**super().details(), "name": self.name, "stack": self.stack}


class CompileError(RuntimeFailure):
    status = 500
    type = "CompileError"

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        message = bounded(message, MAX_ERROR_MESSAGE_BYTES)
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


class CpuLimitExceeded(RuntimeFailure):
    status = 504
    type = "CpuLimitExceeded"


class KVUnavailable(RuntimeFailure):
    status = 503
    type = "KVUnavailable"


class HostCallError(Exception):
    """A host call of a function (`context.kv`) that failed: the JavaScript error it rejects
    with (`name`: Error, TypeError or RangeError). Never an HTTP answer of its own."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


class MemoryLimitExceeded(RuntimeFailure):
    status = 507
    type = "MemoryLimitExceeded"
