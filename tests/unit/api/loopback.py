"""A real HTTP/1.1 server on 127.0.0.1 that answers runtime requests with an httpx-style handler.

The API unit tests run the production `FastTransport` against it. `LoopbackServer.transport()`
dials this server for every runtime URL (`http://worker-0`, `http://10.0.0.1:8080`, ...); the
request keeps its `Host`, and the server turns it back into an `httpx.Request` for
`handler(request)`, which returns an `httpx.Response` (or an awaitable of one) to write back.
conftest's `FakeRuntime` owns one per test, and the local and Kubernetes backend fixtures build
their transports from it.

A handler plays a failing runtime by raising httpx's transport errors:
- `httpx.ConnectError` or `ConnectTimeout`: the runtime refuses connections. A server that has read
  the request cannot refuse it any more, so it drops the connection and refuses the next connection
  to that host and port, and `LoopbackTransport` sends a request that failed this way once more:
  the caller gets FastTransport's own refused-connect failure (`reached=False`), and the handler
  saw the request once.
- any other `httpx.TimeoutException`: the server stays silent until the client gives up.
- any other `httpx.TransportError`: the connection is dropped without an answer.
Any other exception is a bug in the test: the connection is dropped and `close` raises it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

import httpx

from vortex_api.errors import RuntimeUnavailable
from vortex_api.fasthttp import FastTransport
from vortex_api.transport import RuntimeReply

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]

# Framing is the server's own: it writes the body with its length.
_FRAMING = {"content-length", "transfer-encoding", "connection"}


def _key(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 80


class LoopbackServer:
    """Serves HTTP/1.1 on an ephemeral loopback port with `handler`; use as `async with`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.address = ("127.0.0.1", 0)
        self._server: asyncio.Server | None = None
        # Bound but never listening: a connection to it is refused.
        self._refuser = socket.socket()
        self._refusing: set[tuple[str, int]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._transports: list[FastTransport] = []
        self._errors: list[Exception] = []

    async def __aenter__(self) -> LoopbackServer:
        self._refuser.bind(("127.0.0.1", 0))
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = (host, port)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def transport(self) -> FastTransport:
        """A `FastTransport` whose connections all go to this server (closed by `close`)."""
        transport = LoopbackTransport(self)
        self._transports.append(transport)
        return transport

    def connect_to(self, host: str, port: int) -> tuple[str, int]:
        """Where to dial for a runtime's host and port: this server, unless it refuses it."""
        if (host, port) in self._refusing:
            self._refusing.discard((host, port))
            refuser_host, refuser_port = self._refuser.getsockname()[:2]
            return refuser_host, refuser_port
        return self.address

    def refuses(self, url: str) -> bool:
        """Whether the next connection to `url`'s runtime will be refused."""
        return _key(url) in self._refusing

    async def close(self) -> None:
        for transport in self._transports:
            await transport.aclose()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        self._refuser.close()
        if self._errors:
            raise self._errors[0]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while await self._answer(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is to be dropped."""
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines)]
        fields = {name.lower(): value for name, value in headers}
        body = await reader.readexactly(int(fields.get("content-length", "0")))
        url = f"http://{fields['host']}{target}"
        request = httpx.Request(method, url, headers=headers, content=body)
        try:
            response = self.handler(request)
            if inspect.isawaitable(response):
                response = await response
        except (httpx.ConnectError, httpx.ConnectTimeout):
            self._refusing.add(_key(url))
            return False
        except httpx.TimeoutException:
            await reader.read()
            return False
        except httpx.TransportError:
            return False
        except Exception as exc:
            self._errors.append(exc)
            return False
        writer.write(_serialize(response, await response.aread()))
        await writer.drain()
        return True


def _serialize(response: httpx.Response, content: bytes) -> bytes:
    parts = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n".encode()]
    for name, value in response.headers.multi_items():
        if name.lower() not in _FRAMING:
            parts.append(f"{name}: {value}\r\n".encode("latin-1"))
    parts.append(b"content-length: %d\r\n\r\n" % len(content))
    parts.append(content)
    return b"".join(parts)


class LoopbackTransport(FastTransport):
    """`FastTransport` dialing a `LoopbackServer`, sending once more what a refusal dropped."""

    def __init__(self, server: LoopbackServer) -> None:
        super().__init__(connect_to=server.connect_to)
        self._server = server

    def _refused(self, url: str, exc: RuntimeUnavailable) -> bool:
        """Whether `exc` is the dropped connection of a handler's connect error."""
        if not (exc.reached and self._server.refuses(url)):
            return False
        parts = urlsplit(url)
        self.forget(f"{parts.scheme}://{parts.netloc}")  # a refusing runtime keeps no connection
        return True

    async def post(
        self, url: str, headers: Sequence[tuple[str, str]], body: bytes, timeout_s: float
    ) -> RuntimeReply:
        try:
            return await super().post(url, headers, body, timeout_s)
        except RuntimeUnavailable as exc:
            if not self._refused(url, exc):
                raise
        return await super().post(url, headers, body, timeout_s)

    async def get(self, url: str, timeout_s: float) -> RuntimeReply:
        try:
            return await super().get(url, timeout_s)
        except RuntimeUnavailable as exc:
            if not self._refused(url, exc):
                raise
        return await super().get(url, timeout_s)
