"""`vortex`, the command line of the Vortex HTTP API (deploy, invoke, list, get, delete, versions,
rollback, traffic, init, dev).

The console script `vortex` (api/pyproject.toml) and `python -m vortex_cli` call `main.main`. The
CLI speaks HTTP only: it imports nothing of `vortex_api`, and of `vortex_kube` only the pure
VortexFunction contract (`.importlinter`).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vortex-api")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
