"""The anchors every goal is measured against, and the load tools, shared by all benchmarks.

- `Workerd`: Cloudflare's workerd (npm package `workerd`, installed by tests/deps.sh) serving
  the same trivial function on loopback.
- `process_per_execution`: the seed's design, a new process for every execution (node, and
  python + mini-racer).
- `wrk`: Debian's wrk at a fixed connection count, parsed into throughput (2xx answers only),
  p50/p99 and the non-2xx count.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

NPM_DIR = Path(os.environ.get("VORTEX_NPM_DIR", "/var/cache/vortex/npm"))
WORKERD = NPM_DIR / "node_modules" / ".bin" / "workerd"

# The trivial function, in the seed's body form and as a Worker.
TRIVIAL_BODY = "return 42;"
# The context an invocation of it gets, for benchmarks that call an isolate directly.
CONTEXT = {
    "method": "POST",
    "path": "/invoke",
    "query": {},
    "headers": {},
    "invocationId": "bench",
    "functionName": "bench",
    "timeoutMs": 5000,
    "env": {},
}
TRIVIAL_WORKER = """
export default {
  async fetch(request) {
    const started = Date.now();
    const output = await (async function () { return 42; })();
    return Response.json({ output, logs: [], execution_time_ms: Date.now() - started });
  },
};
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30, method: str = "GET") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.request(method, url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


@contextmanager
def workerd(worker_js: str = TRIVIAL_WORKER, local_fetch: bool = False) -> Iterator[str]:
    """Serve `worker_js` with workerd on a free loopback port; yields the base URL.
    `local_fetch`: its fetch may reach loopback and private addresses (workerd's default
    network allows only public ones)."""
    if not WORKERD.exists():
        raise RuntimeError(f"workerd is not installed at {WORKERD}; run tests/deps.sh")
    port = free_port()
    allow = '["public", "private", "local"]' if local_fetch else '["public"]'
    with tempfile.TemporaryDirectory(prefix="vortex-workerd-") as tmp:
        Path(tmp, "worker.js").write_text(worker_js)
        Path(tmp, "config.capnp").write_text(
            textwrap.dedent(
                f"""
                using Workerd = import "/workerd/workerd.capnp";
                const config :Workerd.Config = (
                  services = [ (name = "main", worker = .worker),
                               (name = "internet", network = (allow = {allow})) ],
                  sockets = [ (name = "http", address = "127.0.0.1:{port}", http = (),
                               service = "main") ],
                );
                const worker :Workerd.Worker = (
                  modules = [ (name = "worker", esModule = embed "worker.js") ],
                  compatibilityDate = "2024-09-01",
                  globalOutbound = "internet",
                );
                """
            )
        )
        process = subprocess.Popen(
            [str(WORKERD), "serve", str(Path(tmp, "config.capnp"))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/", method="POST")
            yield url
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def trivial_runtime() -> Iterator[str]:
    """A ready `python -m vortex_runtime serve` of TRIVIAL_BODY; yields its base URL."""
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp, "trivial.js")
        code.write_text(TRIVIAL_BODY)
        port = free_port()
        server = runtime_server(port, "--code-file", str(code))
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/readyz")
            yield url
        finally:
            server.terminate()
            server.wait(10)


def runtime_server(
    port: int, *source: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `python -m vortex_runtime serve` with `source` (`--code-file F` or `--store D`),
    its environment ours plus `env`."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vortex_runtime",
            "serve",
            *source,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-format",
            "text",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


@dataclass
class WrkResult:
    """One wrk run. Throughput counts 2xx answers only: a 503 from a bulkhead is not work done."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: int

    def line(self) -> str:
        return (
            f"{self.requests_per_s:9.0f} req/s (2xx)  p50 {self.p50_ms:7.3f} ms  "
            f"p99 {self.p99_ms:7.3f} ms  ({self.requests} requests, {self.non2xx} non-2xx,"
            f" {self.socket_errors} socket errors)"
        )


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    url: str,
    body: str = "",
    connections: int = 16,
    duration_s: int = 10,
    threads: int = 2,
    headers: dict[str, str] | None = None,
) -> WrkResult:
    """POST `body` to `url` for `duration_s` with wrk; only 2xx answers count as throughput."""
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (Debian package wrk; run tests/deps.sh)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
        for name, value in (headers or {}).items():
            lines.append(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}")
        script.write("\n".join(lines) + "\n")
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{duration_s}s",
                "--latency",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx_line = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_line = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    non2xx = int(non2xx_line.group(1)) if non2xx_line else 0
    socket_errors = sum(int(x) for x in socket_line.groups()) if socket_line else 0
    # wrk's Requests/sec counts every answer; keep the 2xx share of it.
    ok_per_s = rps * (total - non2xx) / total if total else 0.0
    return WrkResult(
        ok_per_s,
        _ms(*p50.groups()) if p50 else float("nan"),
        _ms(*p99.groups()) if p99 else float("nan"),
        total,
        non2xx,
        socket_errors,
    )


NODE_RUNNER = """
const logs = [];
const log = (level) => (...a) => logs.push({timestamp: new Date().toISOString(), level, message: a.join(' ')});
globalThis.console = {log: log('log'), info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug')};
const started = Date.now();
const AsyncFunction = (async function () {}).constructor;
new AsyncFunction('event', 'context', CODE)(null, {}).then((output) =>
  process.stdout.write(JSON.stringify({output, logs, execution_time_ms: Date.now() - started})));
"""

PYTHON_RUNNER = """
import json, os, sys, time
from py_mini_racer import MiniRacer
started = time.perf_counter()
mr = MiniRacer()
mr.eval("var __logs = []; var console = {log: (...a) => __logs.push(a.join(' '))};")
mr.eval("var __f = async function (event, context) {" + CODE + "}; var __r; __f(null, {}).then(v => __r = v)")
time.sleep(0)
out = mr.eval("JSON.stringify(__r)")
sys.stdout.write(json.dumps({"output": json.loads(out), "execution_time_ms": (time.perf_counter() - started) * 1000}))
sys.stdout.flush()
mr.close()
os._exit(0)
"""


def process_per_execution(kind: str, code: str = TRIVIAL_BODY, runs: int = 20) -> float:
    """Median wall time (ms) to run `code` once in a new process, as the seed's design does."""
    if kind == "node":
        source = NODE_RUNNER.replace("CODE", json.dumps(code))
        command = ["node", "-e", source]
    else:
        source = PYTHON_RUNNER.replace("CODE", json.dumps(code))
        command = [sys.executable, "-c", source]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
        times.append((time.perf_counter() - started) * 1000)
        assert json.loads(out)["output"] == 42, out
    return statistics.median(times)


def serial_latency_ms(url: str, runs: int = 200, body: bytes = b"") -> float:
    """Median latency of one request at a time (keep-alive), after a short warm-up."""
    times = []
    with httpx.Client(timeout=10) as client:
        for _ in range(20):
            client.post(url, content=body).raise_for_status()
        for _ in range(runs):
            started = time.perf_counter()
            client.post(url, content=body).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
