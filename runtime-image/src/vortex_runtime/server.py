"""The runtime's HTTP face: a small ASGI app for /invoke, /warm, /healthz, /readyz and /metrics.

HTTP only, no V8 here: it parses the request into an `InvokeRequest` (the event checked by
events.py), hands it to the `Service` (service.py) and renders the outcome or the
`RuntimeFailure` as JSON with the status from errors.py. Any other exception is a JSON 500
`InternalError` (logged, never sent), and the in-flight gauge falls on every path.
Plain ASGI rather than a framework, because this is the hot path.
Built by `create_app()`; served by uvicorn from __main__.py.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from vortex_runtime import egress, fetch, kv, metrics, randomness, records
from vortex_runtime.errors import (
    InvalidRequest,
    NotReady,
    PayloadTooLarge,
    RuntimeFailure,
)
from vortex_runtime.events import event_json
from vortex_runtime.service import InvokeRequest, ManyFunctionService, Service

log = logging.getLogger("vortex_runtime.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
MAX_ATTEMPT = 100  # contract.MAX_MAX_ATTEMPTS: the most attempts an async invocation gets
MAX_VERSION = 999_999_999  # the API's version numbers (X-Vortex-Version), only recorded
# What an unexpected exception is answered with; the exception itself goes to the log only.
_INTERNAL = "The runtime failed unexpectedly; the failure is in its log"
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "content-length",
    "host",
}
# Failures of the function's own making, which the runtime does not log as its own.
_FUNCTIONS_OWN = frozenset({"FunctionError", "Timeout", "CpuLimitExceeded"})
_OUTCOME = {
    "FunctionError": "error",
    "CompileError": "error",
    "Timeout": "timeout",
    "CpuLimitExceeded": "cpu_limit",
    "MemoryLimitExceeded": "memory",
    "OutputTooLarge": "output_too_large",
    "RuntimeBusy": "busy",
    "NotReady": "not_ready",
    "FunctionNotFound": "not_found",
    "CodeLoadError": "code_unavailable",
}


def _utf8_json(value: Any) -> bytes:
    """JSON as UTF-8 bytes, non-ASCII unescaped, so its size on the wire is what the runtime's
    byte limits counted; a stray lone surrogate becomes "?" rather than an error."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "replace")


async def _send_json(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            # Never run a truncated event ("12" of "123" is JSON too); the answer goes nowhere.
            raise InvalidRequest("The client disconnected before sending the whole event")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The event is over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _cpu_fields(cpu_ms: float | None, extra: list[tuple[bytes, bytes]]) -> bytes:
    """The `cpu_time_ms` field of a reply body (empty where unknown); the same figure goes in
    the x-vortex-cpu-time-ms header, for the API's metrics."""
    if cpu_ms is None:
        return b""
    text = str(round(cpu_ms, 3)).encode()
    extra.append((b"x-vortex-cpu-time-ms", text))
    return b',"cpu_time_ms":' + text


def _int_header(headers: dict[str, str], name: str, low: int, high: int) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"Header {name} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise InvalidRequest(f"Header {name} must be between {low} and {high}")
    return value


def _kv_namespace(headers: dict[str, str]) -> str | None:
    value = headers.get("x-vortex-kv-namespace")
    if value is not None and not kv.NAMESPACE.match(value):
        raise InvalidRequest("Header x-vortex-kv-namespace must be a DNS label")
    return value


def _egress(headers: dict[str, str]) -> egress.Egress | None:
    value = headers.get("x-vortex-egress")
    if value is None:
        return None
    try:
        return egress.from_json(value)
    except egress.RuleError as exc:
        raise InvalidRequest(f"Header x-vortex-egress: {exc}") from None


def _fetch_fields(request: InvokeRequest | None, extra: list[tuple[bytes, bytes]]) -> None:
    """The x-vortex-fetches header (`ok=2,denied=1`) for the API's metric, if any were made."""
    calls = request.fetch if request is not None else None
    if calls is not None and calls.outcomes:
        extra.append((b"x-vortex-fetches", fetch.outcomes_header(calls.outcomes)))


def _build_request(scope: Scope, body: bytes) -> InvokeRequest:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    event = event_json(body)
    env = None
    if "x-vortex-env" in headers:
        try:
            env = json.loads(headers["x-vortex-env"])
        except (ValueError, RecursionError):
            env = None
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise InvalidRequest("Header x-vortex-env must be a JSON object of strings")
    raw_query = headers.get("x-vortex-query", scope.get("query_string", b"").decode("latin-1"))
    context = {
        "method": headers.get("x-vortex-method", scope["method"]),
        "path": headers.get("x-vortex-path", scope["path"]),
        "query": dict(parse_qsl(raw_query, keep_blank_values=True)),
        "headers": {
            k: v
            for k, v in headers.items()
            if not k.startswith("x-vortex-") and k not in _HOP_BY_HOP
        },
        "invocationId": headers.get("x-vortex-invocation-id") or randomness.token_hex(16),
        # 1 but for retries of an async invocation (the same invocationId each time)
        "attempt": _int_header(headers, "x-vortex-attempt", 1, MAX_ATTEMPT) or 1,
    }
    return InvokeRequest(
        event_json=event,
        context=context,
        timeout_ms=_int_header(headers, "x-vortex-timeout-ms", 1, 15 * 60 * 1000),
        memory_mb=_int_header(headers, "x-vortex-memory-mb", 8, 4096),
        cpu_limit_ms=_int_header(headers, "x-vortex-cpu-limit-ms", 1, 15 * 60 * 1000),
        kv_namespace=_kv_namespace(headers),
        egress=_egress(headers),
        sha256=headers.get("x-vortex-code-sha256"),
        env=env,
        function_name=headers.get("x-vortex-function"),
        function_version=_int_header(headers, "x-vortex-version", 1, MAX_VERSION),
    )


def create_app(
    service: Service, writer: records.RecordWriter | None = None
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    max_event = service.settings.max_event_bytes
    default_name = service.settings.function_name
    default_version = service.settings.code_sha256

    def record(
        request: InvokeRequest | None,
        key: str | None,
        started_at: float,
        elapsed_ms: float,
        error_type: str | None,
        logs_json: bytes,
        cpu_ms: float | None = None,
    ) -> None:
        """One record per invocation that reached a function (a request too malformed to
        name one, such as a body that is not JSON, has none)."""
        if writer is None or request is None:
            return
        writer.write(
            records.encode(
                request.context["invocationId"],
                request.function_name or key or default_name,
                request.sha256 or default_version or key,
                started_at,
                elapsed_ms,
                error_type,
                logs_json,
                cpu_ms,
                request.fetch.log if request.fetch is not None else None,
                request.function_version,
            )
        )

    async def invoke(scope: Scope, receive: Receive, send: Send, key: str | None) -> None:
        started = time.perf_counter()
        metrics.INFLIGHT.inc()
        try:
            await _invoke(scope, receive, send, key, started, time.time())
        finally:  # whatever happened, this invocation is no longer in flight
            metrics.INFLIGHT.dec()

    async def _invoke(
        scope: Scope,
        receive: Receive,
        send: Send,
        key: str | None,
        started: float,
        started_at: float,
    ) -> None:
        request: InvokeRequest | None = None
        try:
            body = await _read_body(receive, max_event)
            request = _build_request(scope, body)
            result = await service.invoke(key, request)
        except RuntimeFailure as failure:
            elapsed = (time.perf_counter() - started) * 1000
            outcome = _OUTCOME.get(failure.type, "bad_request")
            metrics.INVOCATIONS.labels(outcome=outcome).inc()
            metrics.INVOCATION_SECONDS.observe(elapsed / 1000)
            extra: list[tuple[bytes, bytes]] = []
            retry = getattr(failure, "retry_after_s", None)
            if retry:
                extra.append((b"retry-after", str(retry).encode()))
            _fetch_fields(request, extra)
            if failure.status >= 500 and failure.type not in _FUNCTIONS_OWN:
                log.warning(
                    "invocation failed: %s: %s",
                    failure.type,
                    failure.message,
                    extra={"invocation_id": _invocation_id(request)},
                )
            logs_json = _utf8_json(failure.logs)
            cpu_ms = failure.cpu_time_ms
            record(request, key, started_at, elapsed, failure.type, logs_json, cpu_ms)
            body_err = (
                b'{"error":'
                + _utf8_json(failure.details())
                + b',"logs":'
                + logs_json
                + b',"execution_time_ms":'
                + str(round(elapsed, 3)).encode()
                + _cpu_fields(cpu_ms, extra)
                + b"}"
            )
            await _send_json(send, failure.status, body_err, extra)
            return
        except Exception:
            elapsed = (time.perf_counter() - started) * 1000
            metrics.INVOCATIONS.labels(outcome="internal").inc()
            metrics.INVOCATION_SECONDS.observe(elapsed / 1000)
            log.exception(
                "invocation failed unexpectedly",
                extra={"invocation_id": _invocation_id(request)},
            )
            record(request, key, started_at, elapsed, "InternalError", b"[]")
            payload = {
                "error": {"type": "InternalError", "message": _INTERNAL},
                "logs": [],
                "execution_time_ms": round(elapsed, 3),
            }
            await _send_json(send, 500, _utf8_json(payload), [])
            return
        elapsed = (time.perf_counter() - started) * 1000
        metrics.INVOCATIONS.labels(outcome="ok").inc()
        metrics.INVOCATION_SECONDS.observe(elapsed / 1000)
        extra = []
        if result.cold_kind is not None:
            metrics.COLD_STARTS.labels(kind=result.cold_kind).inc()
            extra.append((b"x-vortex-cold-start", b"1"))
            extra.append((b"x-vortex-cold-start-kind", result.cold_kind.encode()))
        _fetch_fields(request, extra)
        logs_json = _utf8_json(result.outcome.logs)
        cpu_ms = result.outcome.cpu_time_ms
        record(request, key, started_at, elapsed, None, logs_json, cpu_ms)
        body_out = (
            b'{"output":'
            + result.outcome.output_json.encode()
            + b',"logs":'
            + logs_json
            + b',"execution_time_ms":'
            + str(round(elapsed, 3)).encode()
            + _cpu_fields(cpu_ms, extra)
            + b"}"
        )
        await _send_json(send, 200, body_out, extra)

    async def warm(scope: Scope, receive: Receive, send: Send, key: str) -> None:
        """Get a function ready ahead of its first invocation (the API calls it on deploy)."""
        try:
            await _read_body(receive, max_event)
            request = _build_request(scope, b"")
            if isinstance(service, ManyFunctionService):
                started = await service.warm(key, request)
            elif service.ready:
                started = False  # the one function was warmed when it loaded
            else:
                raise NotReady(f"The function is not ready: {service.not_ready_reason}")
        except RuntimeFailure as failure:
            await _error(send, failure.status, failure.type, failure.message)
            return
        body = json.dumps({"warm": True, "started": started}).encode()
        await _send_json(send, 200, body, [])

    async def kv_admin(receive: Receive, send: Send, space: str) -> None:
        """One KV operation on a keyspace, for the API (`vortex kv`, `?purge=kv`)."""
        try:
            body = await _read_body(receive, max_event)
            try:
                request = json.loads(body)
            except ValueError:
                raise InvalidRequest("The body must be a JSON object") from None
            if not isinstance(request, dict):
                raise InvalidRequest("The body must be a JSON object")
            answer = await kv.admin(service.kv, kv.check_space(space), request)
        except RuntimeFailure as failure:
            await _error(send, failure.status, failure.type, failure.message)
            return
        await _send_json(send, 200, _utf8_json(answer), [])

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/invoke" or path.startswith("/invoke/"):
            if method != "POST":
                await _error(send, 405, "MethodNotAllowed", "Use POST to invoke")
                return
            key = path[len("/invoke/") :] if path.startswith("/invoke/") else None
            await invoke(scope, receive, send, key or None)
        elif path.startswith("/kv/") and method == "POST":
            await kv_admin(receive, send, path[len("/kv/") :])
        elif path.startswith("/warm/") and method == "POST":
            await warm(scope, receive, send, path[len("/warm/") :])
        elif path == "/healthz":
            await _send_json(send, 200, b'{"status":"ok"}', [])
        elif path == "/readyz":
            if service.ready:
                await _send_json(send, 200, b'{"status":"ready"}', [])
            else:
                await _error(send, 503, "NotReady", service.not_ready_reason)
        elif path == "/metrics":
            text = generate_latest(metrics.REGISTRY)  # before the start: a failure is still JSON
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode())],
                }
            )
            await send({"type": "http.response.body", "body": text})
        else:
            await _error(send, 404, "NotFound", f"No route for {method} {path}")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(service, receive, send, writer)
            return
        if scope["type"] != "http":
            return
        responded = False

        async def tracked(message: Message) -> None:
            nonlocal responded
            if message["type"] == "http.response.start":
                responded = True
            await send(message)

        try:
            await route(scope, receive, tracked)
        except Exception:
            log.exception("request %s %s failed unexpectedly", scope["method"], scope["path"])
            if responded:  # too late for a JSON answer: let the server drop the connection
                raise
            await _error(send, 500, "InternalError", _INTERNAL)

    return app


def _invocation_id(request: InvokeRequest | None) -> str | None:
    return request.context["invocationId"] if request is not None else None


async def _error(send: Send, status: int, type_: str, message: str) -> None:
    body = _utf8_json({"error": {"type": type_, "message": message}})
    await _send_json(send, status, body, [])


async def _lifespan(
    service: Service, receive: Receive, send: Send, writer: records.RecordWriter | None
) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await service.start()
            except Exception as exc:  # reported to uvicorn, which exits non-zero
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            service.close()
            if writer is not None:
                writer.flush()
            await send({"type": "lifespan.shutdown.complete"})
            return
