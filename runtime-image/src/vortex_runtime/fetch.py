"""`fetch` for functions: the host side of a function's requests, checked against its egress.

An isolate's `fetch(url, init)` is a host call (bootstrap.js, isolate.py) that reaches
`FetchCalls`, built per invocation by service.py with the function's `egress.Egress`. For each
request, and again for each redirect hop:

- the URL must be http(s) and its host and port match a rule, else TypeError `fetch to <host>
  is not allowed`;
- the host is resolved once, every address it resolves to must be allowed (`address_allowed`:
  loopback, link-local, the node and the private ranges only when a rule names them), and the
  connection goes to the checked address: `_CheckedBackend` resolves and connects in one step,
  so DNS rebinding cannot slip a second answer past the check;
- at most `max_requests` requests per invocation (each redirect hop counts), `MAX_BODY_BYTES`
  of response bodies, and no longer than the invocation has left.

Requests run with httpx on the runtime's event loop (never on the isolate's thread), one
transport per rule set, so that a pooled connection is only ever reused under the rules it was
checked with, and no cookie jar: nothing a server sets is sent again. Each request is logged
(`FetchCalls.log`: method, host, status, ms, outcome) for the invocation record and counted by
outcome for the API's `vortex_fetch_requests_total`. The one module of the runtime that imports
httpx.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import json
import random
import socket
import struct
import time
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from vortex_runtime.egress import Egress, IPNetwork, Outcome, ip_address
from vortex_runtime.errors import HostCallError

MAX_BODY_BYTES = 10 * 1024 * 1024  # response bodies per invocation, and one request's body
MAX_REDIRECTS = 20
MAX_CLIENTS = 64  # rule sets with a client (and its pooled connections) at a time
# Not the function's to set: the connection's own, or what the host decides.
_HOP_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "host",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
USER_AGENT = "vortex-fetch"
# Sent unless the function sets them (what a browser's or Node's fetch sends; httpx decodes
# gzip and deflate).
_DEFAULT_HEADERS = (
    ("user-agent", USER_AGENT),
    ("accept", "*/*"),
    ("accept-encoding", "gzip, deflate"),
)
# Dropped when a redirect leaves the origin, as the Fetch standard does with Authorization.
_CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


class Denied(Exception):
    """A connection the egress rules do not allow (raised inside httpcore's connect)."""


@dataclass
class Resolver:
    """Names to addresses: the system's resolver, or one DNS server (`host:port`, A records)."""

    server: tuple[str, int] | None = None

    async def resolve(self, host: str, port: int) -> list[str]:
        if ip_address(host) is not None:
            return [host.strip("[]")]
        if self.server is not None:
            return await _query_a(self.server, host)
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _Datagram(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.answer.done():
            self.answer.set_result(data)


async def _query_a(server: tuple[str, int], name: str) -> list[str]:
    """The A records of `name` from one DNS server, over UDP."""
    qid = random.randrange(1 << 16)
    labels = name.rstrip(".").split(".")
    qname = b"".join(bytes([len(p)]) + p.encode("idna") for p in labels) + b"\0"
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_Datagram, remote_addr=server)
    try:
        transport.sendto(packet)
        async with asyncio.timeout(5):
            data = await protocol.answer
    finally:
        transport.close()
    rid, flags, qd, an = struct.unpack(">HHHH", data[:8])
    if rid != qid or flags & 0x000F:
        return []
    offset = 12
    for _ in range(qd):
        offset = _skip_name(data, offset) + 4
    out = []
    for _ in range(an):
        offset = _skip_name(data, offset)
        rtype, _, _, size = struct.unpack(">HHIH", data[offset : offset + 10])
        offset += 10
        if rtype == 1 and size == 4:
            out.append(socket.inet_ntoa(data[offset : offset + 4]))
        offset += size
    return out


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2
        offset += 1 + length


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's connect, with the name resolved here once and the connection made to the
    address that was checked."""

    def __init__(self, egress: Egress, node: tuple[IPNetwork, ...], resolver: Resolver) -> None:
        self._egress = egress
        self._node = node
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._resolver.resolve(host, port)
        except (OSError, TimeoutError, ValueError, IndexError, struct.error) as exc:
            raise httpcore.ConnectError(f"{host} could not be resolved: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} could not be resolved")
        for text in addresses:
            address = ip_address(text)
            if address is None or not self._egress.address_allowed(host, port, address, self._node):
                why = "" if text == host.strip("[]") else f": it resolves to {text}"
                raise Denied(f"fetch to {host} is not allowed{why}")
        return await self._inner.connect_tcp(
            addresses[0], port, timeout, local_address, socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CheckedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, egress: Egress, node: tuple[IPNetwork, ...], resolver: Resolver) -> None:
        super().__init__(trust_env=False)
        # httpx's own pool, with the connect step that checks each address.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_CheckedBackend(egress, node, resolver),
        )


class Fetcher:
    """The runtime's one source of fetch transports: one per rule set, the least recently used
    closed past `MAX_CLIENTS`. Requests go to a transport directly, not through an
    `httpx.AsyncClient`: fetch keeps no cookie jar (a client's would carry one tenant's cookies
    into the next request under the same rules), and redirects and defaults are ours."""

    def __init__(self, node: Iterable[IPNetwork] = (), resolver: Resolver | None = None) -> None:
        self.node = tuple(node)
        self.resolver = resolver or Resolver()
        self._transports: collections.OrderedDict[Egress, _CheckedTransport] = (
            collections.OrderedDict()
        )
        self._closing: set[asyncio.Task[None]] = set()

    def transport(self, egress: Egress) -> httpx.AsyncBaseTransport:
        transport = self._transports.get(egress)
        if transport is not None:
            self._transports.move_to_end(egress)
            return transport
        transport = _CheckedTransport(egress, self.node, self.resolver)
        self._transports[egress] = transport
        while len(self._transports) > MAX_CLIENTS:
            self._close(self._transports.popitem(last=False)[1])
        return transport

    def close(self) -> None:
        """Close every transport (their pooled connections) in the background."""
        transports, self._transports = list(self._transports.values()), collections.OrderedDict()
        for transport in transports:
            self._close(transport)

    def _close(self, transport: httpx.AsyncBaseTransport) -> None:
        task = asyncio.ensure_future(transport.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


def _headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A request's headers: the function's, after the defaults it did not set."""
    named = {k.lower() for k, _ in headers}
    return [(k, v) for k, v in _DEFAULT_HEADERS if k not in named] + headers


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)


@dataclass
class FetchCalls:
    """The fetch calls of one invocation: its rules, its deadline (event-loop time) and what
    it has used; `log` and `outcomes` say what it did."""

    fetcher: Fetcher
    egress: Egress
    deadline: float
    requests: int = 0
    body_bytes: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)

    async def __call__(self, args: dict[str, Any]) -> tuple[str, str]:
        url = args.get("url")
        method = str(args.get("method") or "GET").upper()
        if not isinstance(url, str):
            raise HostCallError("TypeError", "fetch needs a URL")
        body = args.get("body")
        content = body.encode("latin-1") if isinstance(body, str) else None
        if content is not None and len(content) > MAX_BODY_BYTES:
            raise HostCallError(
                "RangeError", f"A fetch request body is over the limit of {MAX_BODY_BYTES} bytes"
            )
        headers = [
            (str(k), str(v))
            for k, v in args.get("headers") or []
            if str(k).lower() not in _HOP_HEADERS
        ]
        redirect = args.get("redirect") or "follow"
        redirected = False
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._one(method, url, headers, content)
            location = response.location
            if response.status not in (301, 302, 303, 307, 308) or not location:
                break
            if redirect == "manual":
                break
            if redirect == "error":
                raise HostCallError("TypeError", f"fetch to {url} was redirected (redirect: error)")
            try:
                target = httpx.URL(url).join(location)
            except (httpx.InvalidURL, TypeError, ValueError):
                raise HostCallError(
                    "TypeError", f"fetch to {url}: the redirect location is not a URL"
                ) from None
            if _origin(target) != _origin(httpx.URL(url)):  # credentials stay with their origin
                headers = [(k, v) for k, v in headers if k.lower() not in _CREDENTIALS]
            url = str(target)
            redirected = True
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, content = "GET", None
                headers = [(k, v) for k, v in headers if not k.lower().startswith("content-")]
        else:
            raise HostCallError("TypeError", f"fetch followed more than {MAX_REDIRECTS} redirects")
        answer = {
            "status": response.status,
            "statusText": response.reason,
            "headers": response.headers,
            "url": url,
            "redirected": redirected,
            "body": response.body.decode("latin-1"),
        }
        return "json", json.dumps(answer, ensure_ascii=False)

    async def _one(
        self, method: str, url: str, headers: list[tuple[str, str]], content: bytes | None
    ) -> _Answer:
        """One request (one hop): checked, counted, logged; the body read within the limits."""
        started = time.perf_counter()
        entry: dict[str, Any] = {"method": method, "host": None, "status": None}
        outcome: Outcome = "error"
        try:
            response = await self._send(entry, method, url, headers, content)
            entry["status"] = response.status
            outcome = "ok"
            return response
        except FetchFailed as exc:
            outcome = exc.outcome
            raise
        finally:
            entry["ms"] = round((time.perf_counter() - started) * 1000, 3)
            entry["outcome"] = outcome
            self.log.append(entry)
            self.outcomes[outcome] += 1

    async def _send(
        self,
        entry: dict[str, Any],
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        content: bytes | None,
    ) -> _Answer:
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise FetchFailed(
                "error", "TypeError", f"fetch: {url[:200]!r} is not a valid URL"
            ) from None
        host = target.host
        entry["host"] = host or None
        if target.scheme not in ("http", "https") or not host:
            raise FetchFailed(
                "error", "TypeError", f"fetch: only http and https URLs, not {url[:200]!r}"
            )
        port = target.port or (443 if target.scheme == "https" else 80)
        if not self.egress.host_allowed(host, port):
            raise FetchFailed("denied", "TypeError", f"fetch to {host} is not allowed")
        if self.requests >= self.egress.max_requests:
            raise FetchFailed(
                "limit",
                "RangeError",
                f"fetch: more than {self.egress.max_requests} requests in one invocation",
            )
        self.requests += 1
        left = self.deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise FetchFailed(
                "timeout", "TypeError", f"fetch to {host}: the invocation has no time left"
            )
        transport = self.fetcher.transport(self.egress)
        request = httpx.Request(method, target, headers=_headers(headers), content=content)
        try:
            async with asyncio.timeout(left):
                response = await transport.handle_async_request(request)
                try:
                    chunks = []
                    async for chunk in response.aiter_bytes():
                        self.body_bytes += len(chunk)
                        if self.body_bytes > MAX_BODY_BYTES:
                            raise FetchFailed(
                                "limit",
                                "RangeError",
                                f"fetch: response bodies over {MAX_BODY_BYTES} bytes in one"
                                " invocation",
                            )
                        chunks.append(chunk)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise FetchFailed(
                "timeout", "TypeError", f"fetch to {host} timed out: the invocation ran out of time"
            ) from None
        except Denied as exc:
            raise FetchFailed("denied", "TypeError", str(exc)) from None
        except httpx.HTTPError as exc:
            raise FetchFailed("error", "TypeError", f"fetch to {host} failed: {exc}") from None
        return _Answer(
            response.status_code,
            response.reason_phrase,
            response.headers.multi_items(),
            b"".join(chunks),
        )


class FetchFailed(HostCallError):
    """A fetch that rejects, and its outcome for the metric (denied, limit, timeout, error)."""

    def __init__(self, outcome: Outcome, name: str, message: str) -> None:
        super().__init__(name, message)
        self.outcome = outcome


def outcomes_header(outcomes: typing.Mapping[str, int]) -> bytes:
    """`ok=2,denied=1`: an invocation's fetches by outcome, for the API's metric."""
    return ",".join(f"{k}={v}" for k, v in sorted(outcomes.items()) if v).encode()


def node_networks(address: str | None) -> tuple[IPNetwork, ...]:
    """The pod's node (VORTEX_NODE_IP) as networks denied like loopback."""
    parsed = ip_address(address) if address else None
    return () if parsed is None else (ipaddress.ip_network(parsed),)


def dns_server(text: str | None) -> tuple[str, int] | None:
    """`host:port` of VORTEX_FETCH_DNS_SERVER (port 53 by default), or None: the system's."""
    if not text:
        return None
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "53")
    return host.strip("[]"), int(port)
