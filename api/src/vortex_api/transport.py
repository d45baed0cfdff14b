"""The one HTTP hop to runtimes (local workers and pods), behind a one-method-per-verb Protocol.

`invoker` posts invocations through a `RuntimeTransport`; the local supervisor and the Kubernetes
pod runner probe `/readyz` and `/healthz` through it. The implementation is
`vortex_api.fasthttp.FastTransport`, which the backends build. Transport failures become
`RuntimeUnavailable` (with `reached` telling whether the request may have got to a runtime) or
`ExecutionTimeout`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class RuntimeReply:
    """A runtime's answer: status, the headers the API cares about, and the raw body."""

    status: int
    body: bytes
    # how the runtime started an isolate for this call (X-Vortex-Cold-Start-Kind: "prewarmed",
    # "isolate"), or None when a warm one served it
    cold_kind: str | None = None
    retry_after: str | None = None
    # CPU time the function used (X-Vortex-Cpu-Time-Ms), in seconds, where the runtime says
    cpu_s: float | None = None
    # The function's fetch requests by outcome (X-Vortex-Fetches: "ok=2,denied=1"), if any
    fetches: str | None = None


class RuntimeTransport(Protocol):
    """How the API talks HTTP to a runtime."""

    async def post(
        self, url: str, headers: Sequence[tuple[str, str]], body: bytes, timeout_s: float
    ) -> RuntimeReply: ...

    async def get(self, url: str, timeout_s: float) -> RuntimeReply: ...

    def forget(self, base_url: str) -> None:
        """Drop the connections kept to a runtime that is gone."""

    def dial_unix(self, base_url: str, path: str) -> None:
        """Reach the runtime at `base_url` through its Unix socket `path` from now on."""

    async def aclose(self) -> None: ...
