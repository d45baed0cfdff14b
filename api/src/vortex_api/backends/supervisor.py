"""Starts and supervises the local runtime worker processes on loopback ports.

Each worker is `python -m vortex_runtime serve --store <data dir>/code --port N --host 127.0.0.1`,
which also serves on a Unix socket of its own: the API's invocations go through that (no TCP
stack on either side of the hop), its probes and anything else through the port.
A worker joins the endpoint table (group "local") once its `/readyz` answers 200 and leaves it
when it exits; a worker that exits unexpectedly is restarted (with back-off if it keeps dying),
and one that stops answering `/healthz` after an invocation timed out is killed and restarted.
`stop` terminates them all. Workers run in their own session, so a Ctrl-C in the terminal reaches
only the API, which then stops them; on Linux they also get SIGTERM if the API dies abruptly.
Their output comes through a pipe and out in the API's log format (worker_output.py).
`LocalBackend` owns the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

from vortex_api.backends import worker_output
from vortex_api.errors import RuntimeUnavailable
from vortex_api.routing import Endpoint, EndpointTable
from vortex_api.transport import RuntimeTransport

log = logging.getLogger("vortex_api.local")

GROUP = "local"
_PROBE_INTERVAL_S = 0.02
_STOP_WAIT_S = 5.0
_HEALTH_TIMEOUT_S = 1.0
_MAX_BACKOFF_S = 5.0
# How long a stopped worker's last lines may take to come out of its pipe.
_RELAY_DRAIN_S = 2.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def worker_env(
    pool_size: int,
    index: int = 0,
    serve_cpu: str | None = None,
    records_dir: Path | None = None,
    records_max_bytes: int | None = None,
    kv_dir: Path | None = None,
    unix_socket: Path | None = None,
) -> dict[str, str]:
    """The environment of a worker: ours without VORTEX_* and MINIO_* settings, plus its own
    (its index spreads the workers over the CPUs when `serve_cpu` is "auto", and names its
    file of invocation records under `records_dir`), and JSON logs, which the supervisor
    relays in the API's format."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VORTEX_", "MINIO_"))}
    env["VORTEX_LOG_FORMAT"] = "json"
    env["VORTEX_POOL_SIZE"] = str(pool_size)
    env["VORTEX_WORKER_INDEX"] = str(index)
    if serve_cpu is not None:
        env["VORTEX_SERVE_CPU"] = serve_cpu
    if records_dir is not None:
        env["VORTEX_RECORDS_FILE"] = str(records_dir / f"records-{index}.jsonl")
    if records_max_bytes is not None:
        env["VORTEX_RECORDS_MAX_BYTES"] = str(records_max_bytes)
    if kv_dir is not None:  # context.kv: files every worker shares
        env["VORTEX_KV_DIR"] = str(kv_dir)
    if unix_socket is not None:  # the API's hop, besides the port (probes, humans)
        env["VORTEX_RUNTIME_UDS"] = str(unix_socket)
    return env


class Worker:
    """One runtime worker process slot (the process changes on restart, the slot stays)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: asyncio.subprocess.Process | None = None
        self.url: str | None = None
        self.restarts = 0
        self.task: asyncio.Task[None] | None = None
        self.relay: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


class WorkerSupervisor:
    """Keeps `count` runtime workers running and registered in the endpoint table."""

    def __init__(
        self,
        *,
        count: int,
        store_dir: Path,
        table: EndpointTable,
        transport: RuntimeTransport,
        max_inflight: int,
        start_timeout_s: float,
        python: str | None = None,
        runtime_path: str | None = None,
        serve_cpu: str | None = None,
        records_dir: Path | None = None,
        kv_dir: Path | None = None,
        records_max_bytes: int | None = None,
    ) -> None:
        self.count = count
        self.serve_cpu = serve_cpu
        self.records_dir = records_dir
        self.kv_dir = kv_dir
        self.records_max_bytes = records_max_bytes
        self.store_dir = store_dir
        self.table = table
        self.transport = transport
        self.start_timeout_s = start_timeout_s
        # `<runtime_path> serve ...` when a runtime executable is given (the seed's
        # VORTEX_RUNTIME_PATH), else `<python> -m vortex_runtime serve ...`
        self.command = (
            [runtime_path] if runtime_path else [python or sys.executable, "-m", "vortex_runtime"]
        )
        self.pool_size = math.ceil(max_inflight / count) + 1
        self.workers = [Worker(i) for i in range(count)]
        self._stopping = False
        self._checking: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # The workers' Unix sockets, in a directory of the API's own (mode 0700), short enough
        # for a socket's path wherever the data dir is.
        self._sockets: Path | None = None

    async def start(self) -> None:
        """Start every worker and wait until all are ready (or raise)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._sockets = Path(tempfile.mkdtemp(prefix="vortex-workers-"))
        await asyncio.gather(*(self._spawn(w) for w in self.workers))
        for worker in self.workers:
            worker.task = asyncio.create_task(self._supervise(worker))

    async def stop(self) -> None:
        """Stop supervising and terminate every worker."""
        self._stopping = True
        for task in [*(w.task for w in self.workers if w.task), *self._tasks]:
            task.cancel()
        for worker in self.workers:
            if worker.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.task
        await asyncio.gather(*(self._terminate(w) for w in self.workers))
        if self._sockets is not None:
            shutil.rmtree(self._sockets, ignore_errors=True)

    def check_after_timeout(self, endpoint: Endpoint) -> None:
        """After an invocation timed out on `endpoint`, restart its worker if it hangs."""
        if self._stopping or endpoint.url in self._checking:
            return
        self._checking.add(endpoint.url)
        task = asyncio.create_task(self._health_check(endpoint.url))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _health_check(self, url: str) -> None:
        try:
            try:
                reply = await self.transport.get(url + "/healthz", _HEALTH_TIMEOUT_S)
                healthy = reply.status == 200
            except RuntimeUnavailable:
                healthy = False
            if healthy:
                return
            for worker in self.workers:
                if worker.url == url and worker.process is not None:
                    log.warning("worker %d on %s does not answer; killing it", worker.index, url)
                    self.table.remove(GROUP, url)
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.kill()
        finally:
            self._checking.discard(url)

    async def _spawn(self, worker: Worker) -> None:
        """Start a worker process and wait for its readiness; register it in the table."""
        last_error: Exception | None = None
        for _attempt in range(3):
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            unix = self._sockets / f"worker-{worker.index}.sock" if self._sockets else None
            worker.process = await asyncio.create_subprocess_exec(
                *self.command,
                "serve",
                "--store",
                str(self.store_dir),
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
                env=worker_env(
                    self.pool_size,
                    worker.index,
                    self.serve_cpu,
                    self.records_dir,
                    self.records_max_bytes,
                    self.kv_dir,
                    unix,
                ),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                limit=worker_output.LINE_LIMIT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            assert worker.process.stdout is not None
            worker.relay = asyncio.create_task(
                worker_output.relay(worker.process.stdout, worker.index)
            )
            try:
                await self._wait_ready(worker.process, url)
            except RuntimeError as exc:
                last_error = exc
                await self._terminate(worker)
                continue
            if unix is not None and unix.is_socket():  # a runtime of ours (not every
                self.transport.dial_unix(url, str(unix))  # VORTEX_RUNTIME_PATH makes one)
            worker.url = url
            self.table.add(GROUP, url)
            # Not for the user: the banner names the API's URL, the one to call.
            log.debug("worker %d ready on %s (pid %d)", worker.index, url, worker.process.pid)
            return
        raise RuntimeError(f"worker {worker.index} did not start: {last_error}")

    async def _wait_ready(self, process: asyncio.subprocess.Process, url: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout_s
        while loop.time() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"exited with status {process.returncode}")
            with contextlib.suppress(RuntimeUnavailable):
                reply = await self.transport.get(url + "/readyz", _HEALTH_TIMEOUT_S)
                if reply.status == 200:
                    return
            await asyncio.sleep(_PROBE_INTERVAL_S)
        raise RuntimeError(f"not ready after {self.start_timeout_s:g}s")

    async def _supervise(self, worker: Worker) -> None:
        """Restart the worker whenever it exits, backing off while it keeps failing."""
        backoff = 0.0
        while not self._stopping:
            process = worker.process
            assert process is not None
            returncode = await process.wait()
            if self._stopping:
                return
            await self._drain(worker)
            if worker.url is not None:
                self.table.remove(GROUP, worker.url)
            log.warning(
                "worker %d (pid %d) exited with status %s; restarting",
                worker.index,
                process.pid,
                returncode,
            )
            worker.restarts += 1
            worker.url = None
            if backoff:
                await asyncio.sleep(backoff)
            try:
                await self._spawn(worker)
                log.info("worker %d restarted (pid %s)", worker.index, worker.pid)
                backoff = 0.0
            except RuntimeError as exc:
                log.error("worker %d failed to restart: %s", worker.index, exc)
                backoff = min(_MAX_BACKOFF_S, max(0.1, backoff * 2))

    async def _terminate(self, worker: Worker) -> None:
        process = worker.process
        if worker.url is not None:
            self.table.remove(GROUP, worker.url)
            worker.url = None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                async with asyncio.timeout(_STOP_WAIT_S):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await self._drain(worker)

    async def _drain(self, worker: Worker) -> None:
        """Let the relay hand on the last lines of an exited worker (its crash, if it crashed)."""
        relay, worker.relay = worker.relay, None
        if relay is None:
            return
        try:
            async with asyncio.timeout(_RELAY_DRAIN_S):
                await relay
        except TimeoutError:  # something the worker started still holds its pipe open
            pass
