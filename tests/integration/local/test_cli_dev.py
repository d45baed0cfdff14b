"""`vortex dev FILE` against real local mode: a broken save shows the compiler's line and column,
a fixed save redeploys, and Ctrl-C exits 0."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from tests.integration.local.cli import cli_env, vortex
from tests.integration.local.conftest import ApiProcess

LINE_TIMEOUT_S = 30.0


class Lines:
    """The lines a process writes to `stream`, read on a thread so a test can wait with a
    deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))

    def next(self) -> str:
        return self._queue.get(timeout=LINE_TIMEOUT_S)


def save(path: Path, text: str) -> None:
    # As editors save: a new file renamed over the old one.
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.replace(path)


def test_dev_redeploys_each_save(api: ApiProcess, tmp_path: Path) -> None:
    path = tmp_path / "live.js"
    path.write_text("return 'first';\n")
    with subprocess.Popen(
        [sys.executable, "-m", "vortex_cli", "dev", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(api.url),
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        out = Lines(process.stdout)
        try:
            assert out.next() == "deployed live"
            assert json.loads(vortex(api.url, "invoke", "live").stdout) == "first"
            time.sleep(0.3)  # the watch starts right after the first deploy

            save(path, "const a = 1;\nconst b = a +;\n")
            broken = out.next()
            save(path, "return 'second';\n")
            fixed = out.next()

            assert broken.startswith(f"{path}:2:14: CompileError: SyntaxError: ")
            assert fixed == "deployed live"
            assert json.loads(vortex(api.url, "invoke", "live").stdout) == "second"
        finally:
            process.send_signal(signal.SIGINT)
            try:
                code = process.wait(timeout=LINE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
        errors = process.stderr.read()
    assert code == 0
    assert errors == f"watching {path}; Ctrl-C stops\n"
