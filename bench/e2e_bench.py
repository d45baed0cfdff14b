"""End-to-end benchmark of local mode (`python -m vortex_api`), printed in one run:

- cold start: from `POST /deploy` of a new trivial function to its first `/execute` result
  (the execute after deploy, and deploy + execute), median over new functions;
- `/execute` throughput and p50/p99 under wrk at 16 connections, against workerd serving the
  same trivial function on the same machine in the same run;
- the API hop: serial p50 of `/invoke` on a runtime called directly against `/execute` through
  the API, and the difference; the local-mode workers (which serve many functions by key) are
  also called directly, to tell the API process's share from the runtime mode's.

The API runs as a subprocess on a free loopback port with its own temporary data dir; at the end
it is stopped with SIGINT (which stops its workers) and anything left of it or of the workers it
started is killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import anchors
from bench.procs import children

CONNECTIONS = 16
COLD_STARTS = 10
SERIAL_ROUNDS = 5
SERIAL_PER_ROUND = 200
SERIAL_WARMUP = 30
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0

GOAL_THROUGHPUT_RATIO = 0.6
GOAL_P99_RATIO = 2.0
GOAL_HOP_MS = 0.2
GOAL_COLD_MS = 10.0


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def _is_worker(pid: int) -> bool:
    return any("vortex_runtime" in arg for arg in _cmdline(pid))


@dataclass
class LocalApi:
    """A local-mode API process and the runtime workers it started."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    workers: set[int] = field(default_factory=set)

    def scan_workers(self) -> None:
        for pid in children(self.process.pid):
            if _is_worker(pid):
                self.workers.add(pid)

    def worker_urls(self) -> list[str]:
        """Base URLs of the live workers, from their `--port` arguments."""
        urls = []
        for pid in sorted(self.workers):
            args = _cmdline(pid)
            if "--port" in args:
                urls.append(f"http://127.0.0.1:{args[args.index('--port') + 1]}")
        return urls

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        """SIGINT (a graceful stop that stops the workers), then kill whatever is left."""
        self.scan_workers()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT_S)
        # The API leads its own process group, and each worker leads its own as well.
        for pgid in (self.process.pid, *self.workers):
            if pgid != self.process.pid and not _is_worker(pgid):
                continue  # exited already (the pid may have been reused since)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        self.process.wait()


@contextmanager
def local_api(**env: str) -> Iterator[LocalApi]:
    """Run `python -m vortex_api` (local mode) on a free port with a temporary data dir."""
    port = anchors.free_port()
    with tempfile.TemporaryDirectory(prefix="vortex-e2e-") as tmp:
        log_path = Path(tmp, "api.log")
        full_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("VORTEX_", "MINIO_"))},
            "VORTEX_BACKEND": "local",
            "VORTEX_PORT": str(port),
            "VORTEX_DATA_DIR": str(Path(tmp, "data")),
            **env,
        }
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "vortex_api"],
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        api = LocalApi(f"http://127.0.0.1:{port}", process, log_path)
        try:
            _wait_healthy(api)
            api.scan_workers()
            yield api
        finally:
            api.stop()


def _wait_healthy(api: LocalApi) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if api.process.poll() is not None:
            raise RuntimeError(f"the API exited with {api.process.returncode}:\n{api.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(api.url + "/health", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the API was not healthy within {START_TIMEOUT_S:g}s:\n{api.log_tail()}")


def deploy(client: httpx.Client, url: str, code: str) -> str:
    reply = client.post(url + "/deploy", json={"code": code})
    if reply.status_code != 201:
        raise RuntimeError(f"deploy answered {reply.status_code}: {reply.text}")
    return str(reply.json()["function_id"])


def _execute_ok(client: httpx.Client, url: str) -> None:
    reply = client.post(url)
    if reply.status_code != 200 or reply.json().get("output") != 42:
        raise RuntimeError(f"execute answered {reply.status_code}: {reply.text}")


def cold_starts(url: str, runs: int = COLD_STARTS) -> dict[str, float]:
    """Deploy `runs` new trivial functions (distinct code) and execute each once."""
    deploys, executes, totals = [], [], []
    token = uuid.uuid4().hex[:8]
    with httpx.Client(timeout=30) as client:
        client.get(url + "/health").raise_for_status()  # open the keep-alive connection
        for i in range(runs):
            code = f"const run = '{token}-{i}';\nreturn 42;"
            started = time.perf_counter()
            function_id = deploy(client, url, code)
            deployed = time.perf_counter()
            _execute_ok(client, f"{url}/execute/{function_id}")
            done = time.perf_counter()
            deploys.append((deployed - started) * 1000)
            executes.append((done - deployed) * 1000)
            totals.append((done - started) * 1000)
    return {
        "deploy_ms": statistics.median(deploys),
        "execute_ms": statistics.median(executes),
        "execute_max_ms": max(executes),
        "total_ms": statistics.median(totals),
    }


def serial_p50s(
    urls: dict[str, str], budget_s: float, rounds: int = SERIAL_ROUNDS
) -> tuple[dict[str, float], int]:
    """Serial (one at a time, keep-alive) p50 of each URL, interleaved in rounds so that load
    from elsewhere on the machine falls on all of them alike. Each URL gets at most `budget_s`
    in all; returns the p50s and the fewest samples any URL got."""
    samples: dict[str, list[float]] = {name: [] for name in urls}
    clients = {name: httpx.Client(timeout=10) for name in urls}
    per_round_s = budget_s / rounds
    try:
        for name, url in urls.items():
            for _ in range(SERIAL_WARMUP):
                clients[name].post(url).raise_for_status()
        for _ in range(rounds):
            for name, url in urls.items():
                client = clients[name]
                stop = time.perf_counter() + per_round_s
                for _ in range(SERIAL_PER_ROUND):
                    started = time.perf_counter()
                    client.post(url).raise_for_status()
                    samples[name].append((time.perf_counter() - started) * 1000)
                    if started > stop:
                        break
    finally:
        for client in clients.values():
            client.close()
    fewest = min(len(values) for values in samples.values())
    return {name: statistics.median(values) for name, values in samples.items()}, fewest


def isolates_alive(worker_url: str) -> int | None:
    """The `vortex_runtime_isolates` gauge of a runtime, from its /metrics."""
    with contextlib.suppress(httpx.HTTPError, ValueError):
        for line in httpx.get(worker_url + "/metrics", timeout=5).text.splitlines():
            if line.startswith("vortex_runtime_isolates "):
                return int(float(line.split()[1]))
    return None


def main(duration_s: int = 10) -> None:
    print("== end-to-end benchmark (local mode) ==")
    # The bulkhead defaults to 10 executions in flight; at 16 connections it would answer 503
    # to the rest, so it gets one slot per connection.
    api_env = {"VORTEX_MAX_WORKERS": str(CONNECTIONS)}
    # Each part starts from a fresh API: the functions deployed by one would weigh on the next.
    with local_api(**api_env) as api:
        print(
            f"local mode: {len(api.workers)} runtime workers,"
            f" VORTEX_MAX_WORKERS={api_env['VORTEX_MAX_WORKERS']}"
        )
        cold = cold_starts(api.url)
        print(f"cold start of a new trivial function, median of {COLD_STARTS}:")
        print(
            f"  execute after deploy: {cold['execute_ms']:.2f} ms"
            f" (max {cold['execute_max_ms']:.2f} ms)"
            f"   (goal <= {GOAL_COLD_MS:g} ms: {_verdict(cold['execute_ms'] <= GOAL_COLD_MS)})"
        )
        print(f"  deploy: {cold['deploy_ms']:.2f} ms")
        print(f"  deploy + execute: {cold['total_ms']:.2f} ms")

    with local_api(**api_env) as api:
        with httpx.Client(timeout=30) as client:
            function_id = deploy(client, api.url, anchors.TRIVIAL_BODY)
            trivial_key = hashlib.sha256(anchors.TRIVIAL_BODY.encode()).hexdigest() + ".js"
            execute_url = f"{api.url}/execute/{function_id}"
            _execute_ok(client, execute_url)
        ours = anchors.wrk(execute_url, connections=CONNECTIONS, duration_s=duration_s)
        with anchors.workerd() as workerd_url:
            theirs = anchors.wrk(workerd_url + "/", connections=CONNECTIONS, duration_s=duration_s)
        throughput_ratio = ours.requests_per_s / theirs.requests_per_s
        p99_ratio = ours.p99_ms / theirs.p99_ms
        print(f"/execute under wrk, {CONNECTIONS} connections, {duration_s}s:")
        print(f"  vortex API: {ours.line()}")
        print(f"  workerd:    {theirs.line()}")
        print(
            f"  throughput ratio (vortex/workerd): {throughput_ratio:.2f}x"
            f"   (goal >= {GOAL_THROUGHPUT_RATIO:g}x:"
            f" {_verdict(throughput_ratio >= GOAL_THROUGHPUT_RATIO)})"
        )
        print(
            f"  p99 ratio (vortex/workerd): {p99_ratio:.2f}x"
            f"   (goal <= {GOAL_P99_RATIO:g}x: {_verdict(p99_ratio <= GOAL_P99_RATIO)})"
        )

        with anchors.trivial_runtime() as runtime_url:
            targets = {"direct": runtime_url + "/invoke", "api": execute_url}
            for i, worker_url in enumerate(api.worker_urls()):
                targets[f"worker {i}"] = f"{worker_url}/invoke/{trivial_key}"
            p50, samples = serial_p50s(targets, budget_s=duration_s)
        hop = p50["api"] - p50["direct"]
        print(f"API hop, serial requests (at least {samples} each, p50):")
        print(f"  runtime /invoke directly (--code-file): {p50['direct']:.3f} ms")
        print(f"  API /execute:                           {p50['api']:.3f} ms")
        print(
            f"  difference (the API hop): {hop:.3f} ms"
            f"   (goal <= {GOAL_HOP_MS:g} ms: {_verdict(hop <= GOAL_HOP_MS)})"
        )
        workers = [name for name in p50 if name.startswith("worker ")]
        if workers:
            # The runtimes the API calls serve many functions (--store): their own p50 tells
            # how much of the difference is the API process and how much the runtime's mode.
            figures = ", ".join(f"{name} {p50[name]:.3f} ms" for name in workers)
            print(f"  local-mode workers /invoke/<key> directly (--store): {figures}")
            alive = ", ".join(str(isolates_alive(url)) for url in api.worker_urls())
            print(f"  isolates alive in the local-mode workers: {alive}")
