"""The backend interface the routes talk to, with two implementations: `local` and `kubernetes`.

`app.create_app` builds one backend from the settings (`make_backend`) and starts and stops it in
the lifespan; routes call the methods of `Backend` and nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from vortex_api.functions import Function
from vortex_api.invocation_logs import LogQuery, Record, Records
from vortex_api.invoker import Invocation, InvocationResult
from vortex_api.models import DeployRequest
from vortex_api.rollouts import Tally
from vortex_api.settings import Settings
from vortex_api.transport import RuntimeReply
from vortex_kube.versions import Traffic


class Backend(Protocol):
    """Where functions are stored and run."""

    # (executions, failures) per function version that this process ran, counted by
    # `execution.run`: what rollouts judge a new version by.
    tally: Tally

    async def start(self) -> None:
        """Start workers or watches; return when the backend can serve."""

    async def stop(self) -> None:
        """Stop everything `start` started."""

    def ready(self) -> bool:
        """Whether executions can be served right now."""

    async def deploy(self, request: DeployRequest) -> Function:
        """Store a function (code already compile-checked) and return its record."""

    async def resolve(self, function_id: str) -> Function:
        """The function with this id, or `FunctionNotFound`."""

    async def list(self) -> list[Function]:
        """Every function, sorted by id."""

    async def delete(self, function_id: str) -> None:
        """Remove a function, or raise `FunctionNotFound`."""

    async def rollback(self, function_id: str, number: int) -> Function:
        """Make a new version with version `number`'s code and execution spec, taking all the
        traffic; `VersionNotFound` if it is not kept."""

    async def set_traffic(self, function_id: str, traffic: Traffic) -> Function:
        """Split the function's executions between its versions (`BadRequest` if the split
        names a version that is not kept)."""

    async def invoke(self, function: Function, invocation: Invocation) -> InvocationResult:
        """Run one invocation of `function`."""

    async def kv(self, function: Function, request: dict[str, Any]) -> RuntimeReply:
        """One operation on `function`'s keyspace (`vortex_runtime.kv.admin`), by a runtime."""

    async def invocation_records(self, function: Function, query: LogQuery) -> Records:
        """The newest records of `function`'s invocations that match (at most `query.limit`),
        newest first, whichever runtime wrote them."""

    def follow_records(self, function: Function, query: LogQuery) -> AsyncIterator[Record]:
        """The matching records written from now on, as they are written."""


def make_backend(settings: Settings) -> Backend:
    """The backend the settings choose."""
    if settings.backend == "kubernetes":
        from vortex_api.backends.kubernetes import KubernetesBackend

        return KubernetesBackend(settings)
    from vortex_api.backends.local import LocalBackend

    return LocalBackend(settings)
