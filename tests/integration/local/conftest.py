"""Real local mode: `python -m vortex_api` as a process, with real runtime worker processes.

`ApiProcess` starts the API on a free loopback port with its own data dir, waits for /health, and
stops it with SIGINT (what Ctrl-C sends), killing anything left only as a last resort so a failed
test never leaves processes behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bench.procs import alive, children

START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ApiProcess:
    """One local-mode API process."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VORTEX_")},
            "VORTEX_PORT": str(self.port),
            "VORTEX_DATA_DIR": str(data_dir),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.seen_workers: set[int] = set()
        # Where its stderr (the banner and the logs) goes; None: this process's own.
        self.stderr_path: Path | None = None

    def start(self) -> ApiProcess:
        with (
            open(self.stderr_path, "ab") if self.stderr_path else contextlib.nullcontext()
        ) as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vortex_api"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    self.seen_workers.update(self.workers())
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the API did not become healthy")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def workers(self) -> list[int]:
        return children(self.pid)

    def stop(self) -> int:
        """Ctrl-C the API and wait for it; returns its exit status."""
        assert self.process is not None
        self.seen_workers.update(self.workers())
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill_leftovers(self) -> None:
        for pid in self.seen_workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """A shared local-mode API with the default settings."""
    process = ApiProcess(tmp_path_factory.mktemp("vortex-data")).start()
    try:
        yield process
    finally:
        process.stop()
        process.kill_leftovers()


@pytest.fixture
def api_factory(tmp_path: Path) -> Iterator[Callable[..., ApiProcess]]:
    """Start extra API processes with their own settings; all are stopped afterwards."""
    started: list[ApiProcess] = []

    def start(data_dir: Path | None = None, **env: str) -> ApiProcess:
        process = ApiProcess(data_dir or tmp_path / f"data-{len(started)}", **env)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
        process.kill_leftovers()


@pytest.fixture
async def client(api: ApiProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
        yield c
