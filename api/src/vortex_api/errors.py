"""The API's error tree and its one JSON shape, `{"error": {"type", "message", ...}}`.

    ApiError                      (status, type, message)
    ├── BadRequest            400  InvalidRequest, InvalidJSON, CompileError
    ├── Unauthorized          401  no or malformed Bearer token
    ├── Forbidden             403  a key that does not grant this action
    ├── NotFound              404  FunctionNotFound, VersionNotFound, NotFound (no such route)
    ├── MethodNotAllowed      405
    ├── Conflict              409  Conflict (the VortexFunction changed or exists)
    ├── FunctionNotRunnable   409  exists but cannot run: CompileError, CodeRefInvalid, StorageError
    ├── PayloadTooLarge       413
    ├── InternalError         500  a bug or an unexpected backend failure (never a traceback)
    ├── RuntimeUnavailable    502  the runtime could not be reached or broke the protocol
    ├── KubernetesUnavailable 502  KubernetesUnavailable, KubernetesForbidden (see `from_kube`)
    ├── AsyncNotEnabled       501  this install has no queue for async invocations
    ├── Unavailable           503  CapacityExceeded, NotReady, StorageUnavailable (Retry-After)
    └── ExecutionTimeout      504  the function ran past its timeout plus the grace

Kubernetes failures (`vortex_kube.errors`) become API errors in one place, `from_kube`:
NotFound 404 FunctionNotFound, Conflict 409, Invalid 400 InvalidRequest (the API server's message
names the field), Forbidden 502 KubernetesForbidden, Unavailable (and anything else) 502
KubernetesUnavailable.

Routes and backends raise these; `install_handlers` (called by `app.create_app`) turns them, and
FastAPI's own validation, 404 and 405 errors, into JSON responses. Errors a runtime answered with
are not re-raised: the backend passes the runtime's body through with a mapped status.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from vortex_kube import errors as kube

log = logging.getLogger("vortex_api")

JSON_TYPE = "application/json"


def error_body(error_type: str, message: str, **extra: Any) -> bytes:
    """The serialized `{"error": {...}}` document."""
    return json.dumps(
        {"error": {"type": error_type, "message": message, **extra}}, separators=(",", ":")
    ).encode()


class ApiError(Exception):
    """Base of every error the API answers with; subclasses fix the status and default type."""

    status = 500
    default_type = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type or self.default_type
        self.headers = headers or {}
        self.extra = extra

    def to_response(self) -> Response:
        """The JSON response for this error."""
        return Response(
            error_body(self.error_type, self.message, **self.extra),
            status_code=self.status,
            headers=self.headers,
            media_type=JSON_TYPE,
        )


class BadRequest(ApiError):
    status = 400
    default_type = "InvalidRequest"


class Unauthorized(ApiError):
    status = 401
    default_type = "Unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    status = 403
    default_type = "Forbidden"


class NotFound(ApiError):
    status = 404
    default_type = "NotFound"


class FunctionNotFound(NotFound):
    default_type = "FunctionNotFound"

    def __init__(self, function_id: str) -> None:
        super().__init__(f"no function {function_id!r}")


class VersionNotFound(NotFound):
    """A version (or tag) the request names that the function does not keep."""

    default_type = "VersionNotFound"


class MethodNotAllowed(ApiError):
    status = 405
    default_type = "MethodNotAllowed"


class Conflict(ApiError):
    status = 409
    default_type = "Conflict"


class FunctionNotRunnable(ApiError):
    """The function exists but cannot run until it is changed: its code does not compile, its
    codeRef points at nothing, or storage refuses it. Answered at once, never after a wait."""

    status = 409
    default_type = "FunctionNotRunnable"


class PayloadTooLarge(ApiError):
    status = 413
    default_type = "PayloadTooLarge"


class InternalError(ApiError):
    status = 500
    default_type = "InternalError"


class RuntimeUnavailable(ApiError):
    """The runtime was unreachable or broke the protocol.

    `reached` is False when the request never got to a runtime (connect errors), which is the only
    case where retrying it on another runtime is safe.
    """

    status = 502
    default_type = "RuntimeUnavailable"

    def __init__(self, message: str, *, reached: bool) -> None:
        super().__init__(message)
        self.reached = reached


class KubernetesUnavailable(ApiError):
    """The Kubernetes API failed or refused the API's own service account."""

    status = 502
    default_type = "KubernetesUnavailable"


def from_kube(exc: kube.KubeError, function_id: str | None = None) -> ApiError:
    """The one API answer for each kind of Kubernetes failure."""
    if isinstance(exc, kube.NotFound) and function_id is not None:
        return FunctionNotFound(function_id)
    if isinstance(exc, kube.Conflict):
        return Conflict(f"the Kubernetes API refused a conflicting change: {exc.message}")
    if isinstance(exc, kube.Invalid):
        return BadRequest(f"the Kubernetes API refused the function: {exc.message}")
    if isinstance(exc, kube.Forbidden):
        return KubernetesUnavailable(
            f"the API's service account may not do this: {exc.message}",
            error_type="KubernetesForbidden",
        )
    return KubernetesUnavailable(f"the Kubernetes API failed: {exc}")


class Unavailable(ApiError):
    status = 503
    default_type = "Unavailable"

    def __init__(self, message: str, *, retry_after_s: int, error_type: str | None = None) -> None:
        super().__init__(
            message, error_type=error_type, headers={"Retry-After": str(retry_after_s)}
        )


class CapacityExceeded(Unavailable):
    default_type = "CapacityExceeded"


class NotReady(Unavailable):
    default_type = "NotReady"


class StorageUnavailable(Unavailable):
    default_type = "StorageUnavailable"


class QueueUnavailable(Unavailable):
    """The queue of async invocations could not be read or written."""

    default_type = "QueueUnavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after_s=1)


class AsyncNotEnabled(ApiError):
    """This install has no queue for async invocations."""

    status = 501
    default_type = "AsyncNotEnabled"


class KVUnavailable(Unavailable):
    """KV storage cannot be reached, or is not configured (from the runtime's `/kv`)."""

    default_type = "KVUnavailable"


class ExecutionTimeout(ApiError):
    status = 504
    default_type = "Timeout"


def _validation_message(exc: RequestValidationError) -> tuple[str, str]:
    """(error type, message) for FastAPI's validation error, without echoing the input."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return "InvalidJSON", "the request body is not valid JSON"
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "InvalidRequest", "; ".join(parts) or "invalid request"


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.to_response()


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    error_type, message = _validation_message(exc)
    return BadRequest(message, error_type=error_type).to_response()


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return NotFound("no such route").to_response()
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        return MethodNotAllowed("method not allowed", headers={"Allow": allow}).to_response()
    if exc.status_code in (400, 413):
        cls = BadRequest if exc.status_code == 400 else PayloadTooLarge
        return cls(str(exc.detail)).to_response()
    error = ApiError(str(exc.detail), error_type="HTTPError", headers=dict(exc.headers or {}))
    error.status = exc.status_code
    return error.to_response()


async def _unexpected(_: Request, exc: Exception) -> Response:
    log.error("unexpected error", exc_info=exc)
    return InternalError("internal error").to_response()


def install_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the JSON error shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
