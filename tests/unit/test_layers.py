"""The import contracts of the five packages (.importlinter at the repository root): layers inside
each package, API and operator independent of each other and sharing only `vortex_kube`, the
runtime importing neither, the CLI speaking HTTP only, and one module per third-party client
(kubernetes_asyncio, minio, py_mini_racer; httpx, rich and watchfiles in the CLI)."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    contracts = [s for s in config.sections() if s.startswith("importlinter:contract:")]
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run(
        [str(lint), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(contracts)} kept, 0 broken" in proc.stdout
    assert len(contracts) >= 9
