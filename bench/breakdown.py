"""Where the time of one warm invocation goes: each layer of the hot path measured on its own.

`python -m bench breakdown` times one request at a time (the median of many, after a warm-up),
peeling one layer off at a time, and prints each layer's own share as the difference between
two neighbouring figures:

1. the engine floor: `await eval_cancelable` of a constant on a bare MiniRacer inside the event
   loop (mini-racer's hand-off to its V8 thread and back);
2. `Isolate.invoke` of the trivial function: our isolate layer on top of that (context and event
   through the I/O buffer, the handler's promise, the result and logs read back);
3. the runtime's ASGI app called in process with a ready-made scope (no socket): parsing
   headers and event, the service and pool, records, metrics, the response bytes;
4. `POST /invoke` over loopback to a runtime process, from a raw keep-alive socket (so the
   client costs almost nothing): uvicorn, httptools and the kernel's TCP on top of 3;
5. `POST /execute` through local mode's API, from the same kind of socket: the API process
   (auth, lookup, event screen, bulkhead, its own hop to a worker) on top of 4.

Run from `make bench`; the numbers are medians in microseconds.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import anchors

RUNS = 3000
WARMUP = 300


async def _median_us(call: Callable[[], Awaitable[Any]], runs: int = RUNS) -> float:
    for _ in range(WARMUP):
        await call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - started) / 1000)
    return statistics.median(samples)


async def engine_floor_us() -> float:
    from py_mini_racer import MiniRacer

    racer = MiniRacer()
    racer.eval("globalThis.f = () => 42")
    try:
        return await _median_us(lambda: racer.eval_cancelable("f()"))
    finally:
        racer.close()


async def isolate_us() -> float:
    from vortex_runtime.isolate import Isolate, Limits

    isolate = await Isolate.create(anchors.TRIVIAL_BODY, Limits())
    try:
        return await _median_us(lambda: isolate.invoke("null", dict(anchors.CONTEXT), 5))
    finally:
        isolate.close_now()


async def _call(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> None:
    """One POST of an empty body to an ASGI app, as a server would hand it over."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"{path} answered {message['status']}")

    await app(scope, receive, send)


async def api_app_us(data_dir: Path) -> float:
    """The API's app called in process, with local mode's real workers behind it."""
    from vortex_api.app import create_app, lifespan
    from vortex_api.models import DeployRequest
    from vortex_api.settings import Settings

    app = create_app(Settings(data_dir=data_dir, max_workers=64))
    async with lifespan(app):
        backend = app.state.gateway.backend
        function = await backend.deploy(DeployRequest(code=anchors.TRIVIAL_BODY, name="trivial"))
        headers = [(b"host", b"api"), (b"content-length", b"0")]
        return await _median_us(lambda: _call(app, f"/execute/{function.function_id}", headers))


async def asgi_app_us(code_file: Path) -> float:
    from vortex_runtime.records import RecordWriter
    from vortex_runtime.server import create_app
    from vortex_runtime.service import build_service
    from vortex_runtime.settings import RuntimeSettings

    service = build_service(RuntimeSettings(code_file=code_file, function_name="bench"))
    await service.start()
    for _ in range(3000):
        if service.ready:
            break
        await asyncio.sleep(0.01)
    # Records are written as in local mode, to a file (within 0.2 s, in one write).
    with tempfile.TemporaryDirectory() as tmp:
        writer = RecordWriter(Path(tmp, "records-0.jsonl"), 8 << 20)
        app = create_app(service, writer)
        headers = [
            (b"host", b"runtime"),
            (b"content-type", b"application/json"),
            (b"content-length", b"0"),
            (b"x-vortex-invocation-id", b"0123456789abcdef0123456789abcdef"),
        ]

        try:
            return await _median_us(lambda: _call(app, "/invoke", headers))
        finally:
            writer.close()
            service.close()


def socket_us(url: str, path: str, headers: dict[str, str] | None = None) -> float:
    """Serial median of `POST path` over one keep-alive connection, read to its last byte."""
    host, port = url.removeprefix("http://").split(":")
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    request = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n{extra}\r\n").encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def one() -> None:
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"{path} answered {head[:40]!r}")
            fields = head.lower()
            if b"content-length:" in fields:
                length = int(fields.split(b"content-length:")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += sock.recv(65536)
            else:  # chunked
                while not body.endswith(b"0\r\n\r\n"):
                    body += sock.recv(65536)

        for _ in range(WARMUP):
            one()
        samples = []
        for _ in range(RUNS):
            started = time.perf_counter_ns()
            one()
            samples.append((time.perf_counter_ns() - started) / 1000)
    return statistics.median(samples)


def main() -> None:
    print("== where one warm invocation's time goes (serial medians, us) ==")
    import httpx

    from bench.e2e_bench import deploy, local_api

    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp, "trivial.js")
        code.write_text(anchors.TRIVIAL_BODY)
        floor = asyncio.run(engine_floor_us())
        isolate = asyncio.run(isolate_us())
        app = asyncio.run(asgi_app_us(code))
        api_app = asyncio.run(api_app_us(Path(tmp, "data")))
    with anchors.trivial_runtime() as url:
        runtime = socket_us(url, "/invoke")
    with local_api(VORTEX_MAX_WORKERS="64") as api:
        with httpx.Client(timeout=30) as client:
            name = deploy(client, api.url, anchors.TRIVIAL_BODY)
        execute = socket_us(api.url, f"/execute/{name}")
    with anchors.workerd() as url:
        workerd = socket_us(url, "/")
    rows = [
        ("mini-racer hand-off (eval_cancelable of a constant)", floor, floor),
        ("isolate layer (Isolate.invoke)", isolate, isolate - floor),
        ("runtime app in process (parse, service, pool, records)", app, app - isolate),
        ("runtime over loopback HTTP (uvicorn, httptools, TCP)", runtime, runtime - app),
        ("API app in process, its hop to a worker (auth ... response)", api_app, api_app - runtime),
        ("local mode /execute over loopback HTTP (uvicorn, TCP)", execute, execute - api_app),
    ]
    print(f"  {'layer':58} {'total':>8} {'its own':>8}")
    for label, total, own in rows:
        print(f"  {label:58} {total:8.1f} {own:8.1f}")
    print(f"  workerd over loopback HTTP, same client: {workerd:.1f} us")
    print(
        f"  runtime /invoke vs workerd, serial: {workerd / runtime:.2f}x;"
        f" local /execute vs workerd: {workerd / execute:.2f}x"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
