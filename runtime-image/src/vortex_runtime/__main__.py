"""Command line: `python -m vortex_runtime serve ...` starts the runtime HTTP server."""

from __future__ import annotations

import argparse
import contextlib
import math
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vortex_runtime import logs, records, sched, watchdog
from vortex_runtime.settings import KEEP_ALIVE_S, RuntimeSettings, get_settings

if TYPE_CHECKING:
    import uvicorn


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vortex_runtime")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve functions over HTTP")
    source = serve.add_mutually_exclusive_group()
    source.add_argument("--code-file", type=Path, help="serve the one function in this file")
    source.add_argument("--store", type=Path, help="serve many functions from this directory")
    serve.add_argument("--host", help="address to bind (VORTEX_RUNTIME_HOST)")
    serve.add_argument("--port", type=int, help="port to bind (VORTEX_RUNTIME_PORT)")
    serve.add_argument("--pool-size", type=int, help="isolates per function (VORTEX_POOL_SIZE)")
    serve.add_argument("--timeout-ms", type=int, help="default timeout (VORTEX_TIMEOUT_MS)")
    serve.add_argument("--memory-mb", type=int, help="default heap limit (VORTEX_MEMORY_MB)")
    serve.add_argument("--name", help="function name in single-function mode")
    serve.add_argument("--log-format", choices=["json", "text"], default=None)
    return parser


def settings_from(args: argparse.Namespace) -> RuntimeSettings:
    overrides = {
        "code_file": args.code_file,
        "store_dir": args.store,
        "runtime_host": args.host,
        "runtime_port": args.port,
        "pool_size": args.pool_size,
        "timeout_ms": args.timeout_ms,
        "memory_mb": args.memory_mb,
        "function_name": args.name,
        "log_format": args.log_format,
    }
    base = get_settings()
    return base.model_copy(update={k: v for k, v in overrides.items() if v is not None})


def listeners(config: uvicorn.Config, unix_path: Path | None) -> list[socket.socket] | None:
    """The sockets to serve on when there is a Unix socket besides the TCP port (uvicorn binds
    the port alone itself): the port, bound as uvicorn binds it, then the Unix socket, which
    replaces a stale one. uvicorn listens on both with its backlog."""
    if unix_path is None:
        return None
    tcp = config.bind_socket()
    with contextlib.suppress(FileNotFoundError):
        unix_path.unlink()
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(unix_path))
    return [tcp, unix]


def shutdown_grace_s(settings: RuntimeSettings) -> int:
    """How long SIGTERM waits for the invocations in flight (uvicorn's graceful shutdown): the
    longest of the function's timeout and the drain time, plus a second for the answer. A pod
    scaled down or replaced has left the endpoints by then (preStop), and its grace period
    covers this, so no invocation is cut short; the server exits as soon as they are done."""
    return math.ceil(max(settings.timeout_ms, settings.drain_timeout_ms) / 1000) + 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = settings_from(args)
    # This thread runs the event loop, which serves every function's HTTP: the shortest slice,
    # so that it preempts any other thread of the process when it wakes up.
    sched.set_thread(0, slice_ns=sched.LOOP_SLICE_NS)
    cpu = sched.choose_cpu(settings.serve_cpu, settings.worker_index)
    if cpu is not None:
        sched.pin_serving(cpu)
    logs.setup(as_json=settings.log_format == "json")
    watchdog.configure(settings.watchdog_grace_ms, settings.drain_timeout_ms)

    import uvicorn

    from vortex_runtime.onewrite import OneWriteProtocol
    from vortex_runtime.server import create_app
    from vortex_runtime.service import build_service

    writer = records.RecordWriter(settings.records_file, settings.records_max_bytes)
    app = create_app(build_service(settings), writer)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=OneWriteProtocol,
            host=settings.runtime_host,
            port=settings.runtime_port,
            log_config=None,
            access_log=False,
            proxy_headers=False,  # the client's address is never used: no middleware per request
            lifespan="on",
            timeout_graceful_shutdown=shutdown_grace_s(settings),
            timeout_keep_alive=KEEP_ALIVE_S,
        )
    )

    def drain(_what: str) -> None:
        # uvicorn's graceful shutdown: the listener closes at once, idle connections close,
        # and requests in flight get their answers, for up to the drain time.
        server.config.timeout_graceful_shutdown = math.ceil(watchdog.drain_seconds())
        server.should_exit = True

    watchdog.on_stuck(drain)
    server.run(sockets=listeners(server.config, settings.runtime_uds))
    writer.close()
    if watchdog.stuck is not None:
        watchdog.exit_now(f"drained after {watchdog.stuck} could not be terminated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
