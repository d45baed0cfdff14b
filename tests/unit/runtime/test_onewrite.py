"""The one-write HTTP protocol: each response's head and first body part go out in one write, and
every other behaviour (keep-alive, streaming, close, an app failing mid-response) is uvicorn's."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from vortex_runtime.onewrite import OneWriteProtocol

WRITES: list[bytes] = []


class _Counting:
    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def write(self, data: bytes) -> None:
        WRITES.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class CountingProtocol(OneWriteProtocol):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.transport = _Counting(self.transport)  # type: ignore[assignment]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/fail-after-start":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("the app broke after starting its answer")
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    config = uvicorn.Config(
        app, http=CountingProtocol, host="127.0.0.1", port=free, log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield free
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)


async def exchange(port: int, request: bytes, until_close: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), 2)
            if not chunk:
                break
            data += chunk
            if not until_close and data.count(b'{"ok":true}') == request.count(b"GET "):
                break
    finally:
        writer.close()
    return data


GET = b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n"


async def test_a_response_is_one_write(port: int) -> None:
    WRITES.clear()
    data = await exchange(port, GET % b"")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b'\r\n\r\n{"ok":true}')
    assert [data] == WRITES


async def test_keep_alive_and_pipelining_stay_as_they_were(port: int) -> None:
    WRITES.clear()
    data = await exchange(port, (GET % b"a") * 3)
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert len(WRITES) == 3


async def test_a_last_response_is_written_before_the_close(port: int) -> None:
    WRITES.clear()
    request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    data = await exchange(port, request, until_close=True)
    assert data.endswith(b'{"ok":true}')
    assert b"connection: close" in data.lower()
    assert len(WRITES) == 1


async def test_a_streamed_body_keeps_its_later_parts(port: int) -> None:
    WRITES.clear()
    data = await exchange(
        port, b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", True
    )
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body == b"4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n"
    assert len(WRITES) == 4  # head with the first part, then each later part as uvicorn writes it


async def test_an_app_failing_after_its_start_still_ends_the_connection(port: int) -> None:
    WRITES.clear()
    data = await exchange(port, GET % b"fail-after-start", until_close=True)
    assert data.startswith(b"HTTP/1.1 200 OK")  # the head that was held, then the close
