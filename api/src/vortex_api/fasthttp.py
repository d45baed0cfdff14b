"""A lean HTTP/1.1 keep-alive client for the runtime hop (the API's `RuntimeTransport`).

Runtimes are our own, on loopback or the pod network, and speak plain HTTP/1.1; a general client
spends more time per request than the runtime does on a trivial function, so this one does only
what the hop needs: one pool of kept-alive connections per runtime, a request written in one
`write`, the response read by Content-Length or chunks. A failure before the request was written
(no connection) is `RuntimeUnavailable(reached=False)`; once it was written the runtime may have
run it, so a broken exchange is `reached=True` and the deadline `ExecutionTimeout`. An idle
connection is reused only within `IDLE_EXPIRY_S`, well inside the runtime's own keep-alive
timeout (`vortex_runtime.settings.KEEP_ALIVE_S`): a request written just as the runtime closes an
idle connection would be reset after it was sent, and fail although nothing ran. The backends
build it; `forget` drops a departed runtime's pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from vortex_api.errors import ExecutionTimeout, RuntimeUnavailable
from vortex_api.transport import RuntimeReply
from vortex_runtime.settings import KEEP_ALIVE_S

_CONNECT_TIMEOUT_S = 2.0
_MAX_HEAD = 1 << 20
_MAX_IDLE = 256
# Half the runtime's keep-alive timeout, so that a connection the client still takes for open is
# one the runtime still keeps.
IDLE_EXPIRY_S = KEEP_ALIVE_S / 2


class _Connection:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        return (
            now - self.idle_since < IDLE_EXPIRY_S
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        self.writer.close()


class _Pool:
    __slots__ = ("alive", "authority", "host", "idle", "port", "unix")

    def __init__(self, host: str, port: int, authority: str) -> None:
        self.host = host
        self.port = port
        self.unix: str | None = None  # a Unix socket of the same runtime, dialled instead
        self.authority = authority.encode()
        self.idle: list[_Connection] = []
        self.alive = True


def _split(url: str) -> tuple[str, str]:
    """("http://host:port", "/path") of a URL."""
    slash = url.find("/", 8)
    return (url, "/") if slash < 0 else (url[:slash], url[slash:])


class FastTransport:
    """`RuntimeTransport` over asyncio streams with a keep-alive pool per runtime.

    Whether a failed request reached the runtime depends only on whether it was written: a request
    handed to a connection in full may have run, so any failure after that, the deadline of a GET
    included, has `reached=True` (a POST's deadline is `ExecutionTimeout`); a failure before it,
    a refused connect or a connect that did not finish within the deadline or `_CONNECT_TIMEOUT_S`,
    has `reached=False`, which is what lets the invoker retry elsewhere.

    `connect_to(host, port)`, when given, names the address to dial instead of the URL's (the unit
    tests send every runtime to one loopback server); requests still carry the URL's `Host`.
    `dial_unix(base, path)` sends a runtime's requests through its Unix socket from then on (local
    mode's workers serve on one besides their port).
    """

    def __init__(self, connect_to: Callable[[str, int], tuple[str, int]] | None = None) -> None:
        self._pools: dict[str, _Pool] = {}
        self._connect_to = connect_to

    def _pool(self, base: str) -> _Pool:
        pool = self._pools.get(base)
        if pool is None:
            parts = urlsplit(base)
            pool = self._pools[base] = _Pool(parts.hostname or "", parts.port or 80, parts.netloc)
        return pool

    def dial_unix(self, base: str, path: str) -> None:
        """Reach the runtime at `base` ("http://host:port") through the Unix socket `path`
        (connections kept to its port are closed: new ones go through the socket)."""
        pool = self._pool(base)
        pool.unix = path
        while pool.idle:
            pool.idle.pop().close()

    async def _connect(self, pool: _Pool) -> _Connection:
        try:
            host, port = pool.host, pool.port
            if self._connect_to is not None:
                host, port = self._connect_to(host, port)
            async with asyncio.timeout(_CONNECT_TIMEOUT_S):
                if pool.unix is not None:
                    reader, writer = await asyncio.open_unix_connection(pool.unix, limit=_MAX_HEAD)
                else:
                    reader, writer = await asyncio.open_connection(host, port, limit=_MAX_HEAD)
        except (OSError, TimeoutError) as exc:
            raise RuntimeUnavailable(f"runtime unreachable: {exc!r}", reached=False) from exc
        return _Connection(reader, writer)

    async def _exchange(
        self,
        method: bytes,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        timeout_s: float,
    ) -> RuntimeReply:
        base, path = _split(url)
        pool = self._pool(base)
        conn = None
        now = time.monotonic()
        while pool.idle:
            candidate = pool.idle.pop()
            if candidate.usable(now):
                conn = candidate
                break
            candidate.close()
        sent = done = False
        try:
            async with asyncio.timeout(timeout_s):
                if conn is None:
                    conn = await self._connect(pool)
                parts = [method, b" ", path.encode(), b" HTTP/1.1\r\nhost: ", pool.authority]
                parts.append(b"\r\ncontent-length: %d\r\n" % len(body))
                for name, value in headers:
                    parts.append(f"{name}: {value}\r\n".encode("latin-1"))
                parts.append(b"\r\n")
                parts.append(body)
                conn.writer.write(b"".join(parts))
                sent = True
                reply, keep = await _read_response(conn.reader)
                done = True
        except TimeoutError as exc:
            if not sent:
                raise RuntimeUnavailable(
                    "runtime unreachable: connect timed out", reached=False
                ) from exc
            raise ExecutionTimeout("the function did not answer within its timeout") from exc
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise RuntimeUnavailable(f"runtime connection failed: {exc!r}", reached=sent) from exc
        finally:
            # Failed or cancelled mid-exchange, the connection is in an unknown state.
            if not done and conn is not None:
                conn.close()
        if keep and pool.alive and len(pool.idle) < _MAX_IDLE:
            conn.idle_since = time.monotonic()
            pool.idle.append(conn)
            # The most recent is reused first, so the oldest wait at the bottom: close expired ones.
            while pool.idle[0].idle_since < conn.idle_since - IDLE_EXPIRY_S:
                pool.idle.pop(0).close()
        else:
            conn.close()
        return reply

    async def post(
        self, url: str, headers: Sequence[tuple[str, str]], body: bytes, timeout_s: float
    ) -> RuntimeReply:
        return await self._exchange(b"POST", url, headers, body, timeout_s)

    async def get(self, url: str, timeout_s: float) -> RuntimeReply:
        try:
            return await self._exchange(b"GET", url, (), b"", timeout_s)
        except ExecutionTimeout as exc:
            raise RuntimeUnavailable("runtime did not answer", reached=True) from exc

    def forget(self, base_url: str) -> None:
        pool = self._pools.pop(base_url, None)
        if pool is not None:
            pool.alive = False
            for conn in pool.idle:
                conn.close()
            pool.idle.clear()

    async def aclose(self) -> None:
        for base in list(self._pools):
            self.forget(base)


async def _read_response(reader: asyncio.StreamReader) -> tuple[RuntimeReply, bool]:
    """Read one response; returns it and whether the connection may be reused."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status_line = lines[0].split(b" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP response: {lines[0][:80]!r}")
    status = int(status_line[1])
    length = -1
    chunked = False
    keep = status_line[0] == b"HTTP/1.1"
    cold_start = False
    cold_kind = None
    retry_after = None
    cpu_s = None
    fetches = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            keep = value.lower() != b"close"
        elif name == b"x-vortex-cold-start":
            cold_start = value == b"1"
        elif name == b"x-vortex-cold-start-kind":
            cold_kind = value.decode("latin-1")
        elif name == b"retry-after":
            retry_after = value.decode("latin-1")
        elif name == b"x-vortex-fetches":
            fetches = value.decode("latin-1")
        elif name == b"x-vortex-cpu-time-ms":
            with contextlib.suppress(ValueError):
                cpu_s = float(value) / 1000
    if chunked:
        chunks = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                # Trailers (if any) end with an empty line.
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                break
            chunks.append(await reader.readexactly(size + 2))
        body = b"".join(c[:-2] for c in chunks)
    elif length >= 0:
        body = await reader.readexactly(length) if length else b""
    elif status in (204, 304) or 100 <= status < 200:
        body = b""
    else:
        body = await reader.read()
        keep = False
    kind = (cold_kind or "isolate") if cold_start else None
    return RuntimeReply(status, body, kind, retry_after, cpu_s, fetches), keep


__all__ = ["FastTransport"]
