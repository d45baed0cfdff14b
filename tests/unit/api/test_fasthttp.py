"""The lean runtime client against a real loopback server that misbehaves on request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from vortex_api.errors import ExecutionTimeout, RuntimeUnavailable
from vortex_api.fasthttp import FastTransport

Respond = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


class Server:
    """Reads requests (head + Content-Length body) and answers with `respond`."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.connections = 0
        self.respond: Respond = self.json_ok
        self.url = ""

    @staticmethod
    async def json_ok(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\n{"output":1}\n')
        return True

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                if not await self.respond(request, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    tcp = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.url = f"http://127.0.0.1:{tcp.sockets[0].getsockname()[1]}"
    async with tcp:
        yield srv
        tcp.close()


@pytest.fixture
async def transport() -> AsyncIterator[FastTransport]:
    t = FastTransport()
    yield t
    await t.aclose()


async def test_request_shape_and_keep_alive(server: Server, transport: FastTransport) -> None:
    for _ in range(3):
        reply = await transport.post(
            server.url + "/invoke/k.js", [("x-vortex-function", "f")], b'{"a":1}', 5
        )
        assert (reply.status, reply.body) == (200, b'{"output":1}\n')
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /invoke/k.js HTTP/1.1\r\n")
    assert b"\r\nx-vortex-function: f\r\n" in first
    assert b"\r\ncontent-length: 7\r\n" in first
    assert first.endswith(b'\r\n\r\n{"a":1}')


async def test_chunked_body_and_headers(server: Server, transport: FastTransport) -> None:
    async def chunked(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n"
            b"retry-after: 2\r\nx-vortex-cold-start: 1\r\n\r\n"
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
        )
        return True

    server.respond = chunked
    reply = await transport.post(server.url + "/x", [], b"", 5)
    again = await transport.post(server.url + "/x", [], b"", 5)

    assert (reply.status, reply.body, reply.retry_after, reply.cold_start) == (
        503,
        b"hello world",
        "2",
        True,
    )
    assert again.body == b"hello world"
    assert server.connections == 1


async def test_connection_close_is_honoured(server: Server, transport: FastTransport) -> None:
    async def close(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok")
        return False

    server.respond = close
    for _ in range(2):
        assert (await transport.get(server.url + "/readyz", 5)).body == b"ok"
    assert server.connections == 2


async def test_idle_connection_closed_by_the_server_is_replaced(
    server: Server, transport: FastTransport
) -> None:
    async def once(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await Server.json_ok(request, writer)
        return False  # closes after answering, without saying so

    server.respond = once
    await transport.post(server.url + "/a", [], b"", 5)
    await asyncio.sleep(0.05)
    reply = await transport.post(server.url + "/a", [], b"", 5)
    assert reply.status == 200
    assert server.connections == 2


async def test_refused_connection_never_reached(transport: FastTransport) -> None:
    with pytest.raises(RuntimeUnavailable) as caught:
        await transport.post("http://127.0.0.1:1/invoke", [], b"", 5)
    assert caught.value.reached is False


async def test_broken_exchange_reached(server: Server, transport: FastTransport) -> None:
    async def hang_up(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\npartial")
        return False

    server.respond = hang_up
    with pytest.raises(RuntimeUnavailable) as caught:
        await transport.post(server.url + "/x", [], b"", 5)
    assert caught.value.reached is True


async def test_garbage_is_reached_failure(server: Server, transport: FastTransport) -> None:
    async def garbage(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"SSH-2.0-nope\r\n\r\n")
        return True

    server.respond = garbage
    with pytest.raises(RuntimeUnavailable):
        await transport.post(server.url + "/x", [], b"", 5)


async def test_silence_past_the_deadline_times_out(
    server: Server, transport: FastTransport
) -> None:
    async def silent(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(10)
        return False

    server.respond = silent
    with pytest.raises(ExecutionTimeout):
        await transport.post(server.url + "/x", [], b"", 0.1)
    with pytest.raises(RuntimeUnavailable):
        await transport.get(server.url + "/healthz", 0.1)


async def test_forget_closes_idle_connections(server: Server, transport: FastTransport) -> None:
    await transport.post(server.url + "/a", [], b"", 5)
    transport.forget(server.url)
    await transport.post(server.url + "/a", [], b"", 5)
    assert server.connections == 2
