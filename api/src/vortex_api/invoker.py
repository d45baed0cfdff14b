"""One invocation over the endpoint table: pick, post, retry only if never sent, map the answer.

Both backends call `Invoker.invoke` for warm execution (local workers, the shared pool and warm
pods speak the same runtime protocol), so there is one execute path. The runtime's answer body is
passed through as bytes; only its status is mapped onto the API's status table (507, a function
hitting its memory limit, is the function's own error and becomes 500). `Invoker.warm` asks the
runtime a function will go to for an isolate ahead of its first call.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vortex_api.errors import (
    ApiError,
    ExecutionTimeout,
    NotReady,
    RuntimeUnavailable,
)
from vortex_api.functions import Function
from vortex_api.routing import Endpoint, EndpointTable
from vortex_api.transport import RuntimeReply, RuntimeTransport
from vortex_runtime.kv import space_of


@dataclass(slots=True)
class Invocation:
    """What the execute route hands a backend: the event bytes and the original request."""

    body: bytes
    method: str
    path: str
    query: str
    invocation_id: str
    headers: list[tuple[str, str]]
    attempt: int = 1  # of an async invocation (context.attempt)
    pin: str | None = None  # its X-Vortex-Version header: the version asked for, if any

    def runtime_headers(self, function: Function) -> list[tuple[str, str]]:
        headers = [
            *function.runtime_headers,
            ("x-vortex-invocation-id", self.invocation_id),
            ("x-vortex-method", self.method),
            ("x-vortex-path", self.path),
            ("x-vortex-query", self.query),
            *self.headers,
        ]
        if self.attempt != 1:
            headers.append(("x-vortex-attempt", str(self.attempt)))
        return headers


@dataclass(slots=True)
class InvocationResult:
    """The answer to send back: status, body bytes, and what metrics need."""

    status: int
    body: bytes
    outcome: str
    cold_kind: str | None = None  # "prewarmed", "isolate" or "pod"; None when warm
    retry_after: str | None = None
    # A cold start whose length the API measured itself: the wait for a pod of a function that
    # was scaled to zero (None: the execution's whole time stands for it).
    cold_start_s: float | None = None
    cpu_s: float | None = None  # CPU time the function used, where its runtime measured it
    fetches: str | None = None  # its fetch requests by outcome, "ok=2,denied=1"
    version: int | None = None  # the function's version that ran, where versions are kept


# runtime status -> (API status, outcome label)
_STATUS_MAP: dict[int, tuple[int, str]] = {
    200: (200, "success"),
    400: (400, "invalid"),
    413: (413, "too_large"),
    500: (500, "error"),
    503: (503, "busy"),
    504: (504, "timeout"),
    507: (500, "error"),
}


WARM_TIMEOUT_S = 2.0  # a warm-up waits at most this long for the isolate
KV_TIMEOUT_S = 10.0  # a KV operation of the API (the store's own timeouts are shorter)
_BUSY = b'"RuntimeBusy"'
_CPU_LIMIT = b'"CpuLimitExceeded"'


def to_result(reply: RuntimeReply) -> InvocationResult:
    """Map a runtime reply onto the API's status table."""
    mapped = _STATUS_MAP.get(reply.status)
    if mapped is None:
        if reply.status == 404:
            raise RuntimeUnavailable("the runtime has no code for this function", reached=True)
        raise RuntimeUnavailable(
            f"the runtime answered with unexpected status {reply.status}", reached=True
        )
    status, outcome = mapped
    if status == 504 and _CPU_LIMIT in reply.body[:64]:
        outcome = "cpu_limit"
    retry_after = reply.retry_after or ("1" if status == 503 else None)
    return InvocationResult(
        status,
        reply.body,
        outcome,
        reply.cold_kind,
        retry_after,
        cpu_s=reply.cpu_s,
        fetches=reply.fetches,
    )


class Invoker:
    """Routes invocations of a group to its least-loaded endpoint."""

    def __init__(
        self,
        transport: RuntimeTransport,
        table: EndpointTable,
        *,
        grace_ms: int,
        readiness_wait_s: float,
        retry_after_s: int,
        on_timeout: Callable[[Endpoint], None] | None = None,
    ) -> None:
        self.transport = transport
        self.table = table
        self.grace_ms = grace_ms
        self.readiness_wait_s = readiness_wait_s
        self.retry_after_s = retry_after_s
        self.on_timeout = on_timeout

    async def invoke(
        self,
        group: str,
        path: str,
        function: Function,
        invocation: Invocation,
        *,
        sticky: bool = False,
    ) -> InvocationResult:
        """Run one invocation on the group. `sticky`: on the function's rendezvous endpoint,
        spilling to the next one when it answers busy (nothing ran there)."""
        table = self.table
        key = function.route_key if sticky else None
        endpoint = table.pick(group, function.affinity, sticky=key)
        if endpoint is None:
            endpoint = await table.wait(group, self.readiness_wait_s, function.affinity, sticky=key)
            if endpoint is None:
                raise NotReady(
                    f"no runtime is ready for {function.function_id!r}",
                    retry_after_s=self.retry_after_s,
                )
        headers = invocation.runtime_headers(function)
        deadline = function.deadline_s(self.grace_ms)
        tried: list[Endpoint] = []
        while True:
            current = endpoint
            current.inflight += 1
            try:
                reply = await self.transport.post(
                    current.url + path, headers, invocation.body, deadline
                )
            except RuntimeUnavailable as exc:
                if exc.reached:
                    raise
                # The request never reached this runtime: another one may take it, or the
                # replacement of this one (a restarted worker, a rescheduled pod).
                tried.append(current)
                retry = await table.wait(
                    group, self.readiness_wait_s, function.affinity, exclude=tried, sticky=key
                )
                if retry is None:
                    raise
                endpoint = retry
                continue
            except ExecutionTimeout:
                if self.on_timeout is not None:
                    self.on_timeout(current)
                raise
            finally:
                current.inflight -= 1
            if sticky and reply.status == 503 and _BUSY in reply.body[:200]:
                # Every isolate of the function there stayed busy: the next pod may have room.
                tried.append(current)
                spill = table.pick(group, function.affinity, exclude=tried, sticky=key)
                if spill is not None:
                    endpoint = spill
                    continue
            return to_result(reply)

    async def kv(self, group: str, function: Function, request: dict[str, Any]) -> RuntimeReply:
        """One operation on `function`'s keyspace (the runtime's `/kv/{space}`), by any ready
        runtime of `group`: every runtime of a backend reaches the same store."""
        endpoint = self.table.pick(group)
        if endpoint is None:
            raise NotReady(
                "No runtime is ready to serve this request yet", retry_after_s=self.retry_after_s
            )
        space = space_of(function.function_id, function.kv_namespace)
        url = f"{endpoint.url}/kv/{space}"
        return await self.transport.post(url, (), json.dumps(request).encode(), KV_TIMEOUT_S)

    async def warm(self, group: str, path: str, function: Function, *, sticky: bool) -> bool:
        """Have the runtime the function's next call goes to start an isolate for it now, so
        that call finds it warm. Best effort: False if that failed, which only costs a cold
        start."""
        key = function.route_key if sticky else None
        endpoint = self.table.pick(group, function.affinity, sticky=key)
        if endpoint is None:
            return False
        with contextlib.suppress(ApiError):  # the transport's timeout is an ApiError too
            reply = await self.transport.post(
                endpoint.url + path, function.runtime_headers, b"", WARM_TIMEOUT_S
            )
            return reply.status == 200
        return False
