"""The lean runtime client against a real loopback server that misbehaves on request."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.unit.api.helpers import eventually
from vortex_api import fasthttp
from vortex_api.errors import ExecutionTimeout, RuntimeUnavailable
from vortex_api.fasthttp import FastTransport
from vortex_runtime.settings import KEEP_ALIVE_S

Respond = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


class Server:
    """Reads requests (head + Content-Length body) and answers with `respond`."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed = 0
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
            self.closed += 1
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

    assert (reply.status, reply.body, reply.retry_after, reply.cold_kind) == (
        503,
        b"hello world",
        "2",
        "isolate",  # a runtime that names no kind
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


async def test_connection_idle_past_its_expiry_is_not_reused(
    server: Server, transport: FastTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runtime closes an idle connection after its keep-alive timeout; one written to just then
    # is reset after the request was sent. The client gives up on idle ones well before.
    monkeypatch.setattr(fasthttp, "IDLE_EXPIRY_S", 0.1)
    await transport.post(server.url + "/a", [], b"", 5)
    await transport.post(server.url + "/a", [], b"", 5)
    assert server.connections == 1
    await asyncio.sleep(0.15)
    reply = await transport.post(server.url + "/a", [], b"", 5)
    assert reply.status == 200
    assert server.connections == 2
    await eventually(lambda: server.closed == 1)


async def test_expired_idle_connections_are_closed_when_another_returns(
    server: Server, transport: FastTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)
        return await Server.json_ok(request, writer)

    server.respond = slow
    monkeypatch.setattr(fasthttp, "IDLE_EXPIRY_S", 0.2)
    # Three connections at once, then one request at a time, which always reuses the freshest:
    # the other two expire at the bottom of the pool, and a returning request closes them.
    await asyncio.gather(*(transport.post(server.url + "/a", [], b"", 5) for _ in range(3)))
    assert server.connections == 3
    for _ in range(6):
        await transport.post(server.url + "/a", [], b"", 5)
    await eventually(lambda: server.closed == 2)
    assert server.connections == 3


def test_the_client_gives_up_on_idle_connections_before_the_runtime_does() -> None:
    assert fasthttp.IDLE_EXPIRY_S <= KEEP_ALIVE_S / 2


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
    with pytest.raises(RuntimeUnavailable) as caught:
        await transport.get(server.url + "/healthz", 0.1)
    assert caught.value.reached is True  # written, so the runtime may be running it


async def test_connect_past_the_deadline_never_reached(transport: FastTransport) -> None:
    """A connect that does not complete in time sent nothing: not reached, for POST and GET."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        host, port = full.getsockname()
        held = []
        for _ in range(8):  # fill the accept queue: further connects then hang
            try:
                async with asyncio.timeout(0.2):
                    held.append((await asyncio.open_connection(host, port))[1])
            except TimeoutError:
                break
        url = f"http://{host}:{port}"
        try:
            with pytest.raises(RuntimeUnavailable) as posted:
                await transport.post(url + "/invoke", [], b"", 0.1)
            with pytest.raises(RuntimeUnavailable) as probed:
                await transport.get(url + "/readyz", 0.1)
        finally:
            for writer in held:
                writer.close()
    assert posted.value.reached is False
    assert probed.value.reached is False


async def test_cancelled_request_closes_its_connection(
    server: Server, transport: FastTransport
) -> None:
    async def never(request: bytes, writer: asyncio.StreamWriter) -> bool:
        return True  # reads on without answering

    server.respond = never
    call = asyncio.create_task(transport.post(server.url + "/x", [], b"", 5))
    await eventually(lambda: server.requests)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await eventually(lambda: server.closed == 1)


async def test_connect_to_dials_elsewhere_and_keeps_the_host(server: Server) -> None:
    dialed: list[tuple[str, int]] = []
    host, port = server.url.removeprefix("http://").split(":")

    def connect_to(runtime_host: str, runtime_port: int) -> tuple[str, int]:
        dialed.append((runtime_host, runtime_port))
        return host, int(port)

    transport = FastTransport(connect_to=connect_to)
    try:
        await transport.post("http://worker-0/invoke", [], b"", 5)
        await transport.get("http://[fd00::5]:8081/readyz", 5)
    finally:
        await transport.aclose()
    assert dialed == [("worker-0", 80), ("fd00::5", 8081)]
    assert server.requests[0].startswith(b"POST /invoke HTTP/1.1\r\nhost: worker-0\r\n")
    assert server.requests[1].startswith(b"GET /readyz HTTP/1.1\r\nhost: [fd00::5]:8081\r\n")


async def test_forget_closes_idle_connections(server: Server, transport: FastTransport) -> None:
    await transport.post(server.url + "/a", [], b"", 5)
    transport.forget(server.url)
    await transport.post(server.url + "/a", [], b"", 5)
    assert server.connections == 2


async def test_a_runtime_dialled_through_its_unix_socket(
    server: Server, transport: FastTransport, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Once told a runtime's Unix socket, the client sends its requests there (with the URL's
    Host still), and drops the connections it kept to the port."""
    unix_server = Server()
    path = str(tmp_path / "w.sock")
    unix = await asyncio.start_unix_server(unix_server.handle, path)
    try:
        await transport.post(server.url + "/invoke/k.js", [], b"{}", 5)  # kept alive
        transport.dial_unix(server.url, path)
        await eventually(lambda: server.closed == 1)
        for _ in range(3):
            reply = await transport.post(server.url + "/invoke/k.js", [], b"{}", 5)
            assert (reply.status, reply.body) == (200, b'{"output":1}\n')
        assert len(server.requests) == 1
        assert unix_server.connections == 1
        assert len(unix_server.requests) == 3
        host = server.url.removeprefix("http://").encode()
        assert all(b"\r\nhost: " + host + b"\r\n" in r for r in unix_server.requests)
    finally:
        unix.close()
        await unix.wait_closed()
