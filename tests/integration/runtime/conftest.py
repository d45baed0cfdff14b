"""Real runtime server processes (`python -m vortex_runtime serve`) for integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fixtures.minio import free_port


@dataclass
class RuntimeProcess:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"runtime exited {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"runtime not ready in {timeout}s:\n{self.log()}")

    def wait_listening(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/healthz", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError(f"runtime not listening:\n{self.log()}")


@pytest.fixture
def start_runtime(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    started: list[RuntimeProcess] = []

    def start(
        *args: str, env: dict[str, str] | None = None, python: list[str] | None = None
    ) -> RuntimeProcess:
        port = free_port()
        log_path = tmp_path / f"runtime-{port}.log"
        command = python or [sys.executable, "-m", "vortex_runtime"]
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [*command, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
                env={**os.environ, **(env or {})},
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        runtime = RuntimeProcess(process, f"http://127.0.0.1:{port}", log_path)
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        if runtime.process.poll() is None:
            runtime.process.terminate()
            try:
                runtime.process.wait(10)
            except subprocess.TimeoutExpired:
                runtime.process.kill()
