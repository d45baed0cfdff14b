"""The one HTTP hop to runtimes (local workers and pods), behind a one-method-per-verb Protocol.

`invoker` posts invocations through a `RuntimeTransport`; the local supervisor and the Kubernetes
pod runner probe `/readyz` and `/healthz` through it. `HttpxTransport` keeps one pooled
`httpx.AsyncClient` per runtime, so when a runtime goes away (`forget`) its kept-alive connections
go with it and no request is ever written to a dead runtime's stale connection; tests hand it an
`httpx.MockTransport`. Transport failures become `RuntimeUnavailable` (with `reached` telling
whether the request may have got to a runtime) or `ExecutionTimeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from vortex_api.errors import ExecutionTimeout, RuntimeUnavailable


@dataclass(slots=True)
class RuntimeReply:
    """A runtime's answer: status, the headers the API cares about, and the raw body."""

    status: int
    body: bytes
    cold_start: bool = False
    retry_after: str | None = None


class RuntimeTransport(Protocol):
    """How the API talks HTTP to a runtime."""

    async def post(
        self, url: str, headers: Sequence[tuple[str, str]], body: bytes, timeout_s: float
    ) -> RuntimeReply: ...

    async def get(self, url: str, timeout_s: float) -> RuntimeReply: ...

    def forget(self, base_url: str) -> None:
        """Drop the connections kept to a runtime that is gone."""

    async def aclose(self) -> None: ...


_CONNECT_TIMEOUT_S = 2.0


class HttpxTransport:
    """`RuntimeTransport` over one shared, pooled `httpx.AsyncClient`."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._timeouts: dict[float, httpx.Timeout] = {}

    def _client(self, url: str) -> httpx.AsyncClient:
        # The base is "scheme://host:port": everything before the third slash.
        base = url[: url.find("/", 8)] if url.find("/", 8) > 0 else url
        client = self._clients.get(base)
        if client is None:
            client = self._clients[base] = httpx.AsyncClient(
                transport=self._transport,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
                timeout=None,
                trust_env=False,
            )
        return client

    def forget(self, base_url: str) -> None:
        client = self._clients.pop(base_url, None)
        if client is not None:
            task = asyncio.get_running_loop().create_task(client.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _timeout(self, seconds: float) -> httpx.Timeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = httpx.Timeout(seconds, connect=min(seconds, _CONNECT_TIMEOUT_S))
            self._timeouts[seconds] = timeout
        return timeout

    async def post(
        self, url: str, headers: Sequence[tuple[str, str]], body: bytes, timeout_s: float
    ) -> RuntimeReply:
        try:
            response = await self._client(url).post(
                url, content=body, headers=list(headers), timeout=self._timeout(timeout_s)
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise RuntimeUnavailable(f"runtime unreachable: {exc!r}", reached=False) from exc
        except httpx.TimeoutException as exc:
            raise ExecutionTimeout("the function did not answer within its timeout") from exc
        except httpx.HTTPError as exc:
            raise RuntimeUnavailable(f"runtime connection failed: {exc!r}", reached=True) from exc
        headers_in = response.headers
        return RuntimeReply(
            status=response.status_code,
            body=response.content,
            cold_start=headers_in.get("x-vortex-cold-start") == "1",
            retry_after=headers_in.get("retry-after"),
        )

    async def get(self, url: str, timeout_s: float) -> RuntimeReply:
        try:
            response = await self._client(url).get(url, timeout=self._timeout(timeout_s))
        except httpx.HTTPError as exc:
            raise RuntimeUnavailable(f"runtime unreachable: {exc!r}", reached=False) from exc
        return RuntimeReply(status=response.status_code, body=response.content)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(c.aclose() for c in clients), *self._closing)
