"""Runs one execution of an `isolation: pod` function in its own one-shot Pod.

Create the Pod (`k8s_objects.one_shot_pod`), wait a bounded time for its IP and for the runtime's
`/readyz`, post the invocation to it over the runtime protocol, then delete the Pod in the
background whatever happened. The Kubernetes backend calls `PodRunner.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from vortex_api.errors import NotReady, RuntimeUnavailable, from_kube
from vortex_api.functions import Function
from vortex_api.invoker import Invocation, InvocationResult, to_result
from vortex_api.k8s_objects import one_shot_pod
from vortex_api.settings import Settings
from vortex_api.transport import RuntimeTransport
from vortex_kube.client import KubeApi
from vortex_kube.contract import child_name
from vortex_kube.errors import KubeError

log = logging.getLogger("vortex_api.kubernetes")

_POD_POLL_S = (0.05, 0.1, 0.2, 0.5)
_READY_POLL_S = 0.02


def pod_name(function_id: str, invocation_id: str) -> str:
    return f"{child_name(function_id[:40].rstrip('-'))}-{invocation_id[:12]}"


class PodRunner:
    """One-shot Pods for executions that must not share a process."""

    def __init__(self, kube: KubeApi, transport: RuntimeTransport, settings: Settings) -> None:
        self.kube = kube
        self.transport = transport
        self.settings = settings
        self.namespace = settings.namespace
        self._cleanup: set[asyncio.Task[None]] = set()

    async def run(self, function: Function, invocation: Invocation) -> InvocationResult:
        if not function.code_object:
            raise NotReady(
                f"the code of {function.function_id!r} is not stored yet",
                retry_after_s=self.settings.retry_after_s,
            )
        name = pod_name(function.function_id, invocation.invocation_id)
        body = one_shot_pod(function, name, invocation.invocation_id, self.settings)
        try:
            await self.kube.create(body)
        except KubeError as exc:
            log.warning("could not create execution pod %s: %s", name, exc)
            raise from_kube(exc) from exc
        try:
            url = await self._wait_ready(name)
            reply = await self.transport.post(
                url + "/invoke",
                invocation.runtime_headers(function),
                invocation.body,
                function.deadline_s(self.settings.timeout_grace_ms),
            )
            result = to_result(reply)
            result.cold_kind = "pod"
            return result
        finally:
            task = asyncio.create_task(self._delete(name))
            self._cleanup.add(task)
            task.add_done_callback(self._cleanup.discard)

    async def _wait_ready(self, name: str) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.readiness_wait_s
        url: str | None = None
        attempt = 0
        while loop.time() < deadline:
            if url is None:
                pod = await self._get(name)
                status = pod.get("status") or {}
                phase = status.get("phase")
                if phase in ("Failed", "Succeeded"):
                    reason = status.get("reason") or phase
                    raise RuntimeUnavailable(f"the execution pod ended: {reason}", reached=False)
                if status.get("podIP"):
                    ip = str(status["podIP"])
                    host = f"[{ip}]" if ":" in ip else ip
                    url = f"http://{host}:{self.settings.runtime_port}"
                else:
                    await asyncio.sleep(_POD_POLL_S[min(attempt, len(_POD_POLL_S) - 1)])
                    attempt += 1
                    continue
            with contextlib.suppress(RuntimeUnavailable):
                if (await self.transport.get(url + "/readyz", 1.0)).status == 200:
                    return url
            await asyncio.sleep(_READY_POLL_S)
        raise NotReady(
            "the execution pod did not become ready in time",
            retry_after_s=self.settings.retry_after_s,
        )

    async def _get(self, name: str) -> dict[str, Any]:
        try:
            pod = await self.kube.get("Pod", self.namespace, name)
        except KubeError as exc:
            raise from_kube(exc) from exc
        if pod is None:
            raise RuntimeUnavailable("the execution pod disappeared", reached=False)
        return pod

    async def _delete(self, name: str) -> None:
        try:
            await self.kube.delete("Pod", self.namespace, name, grace_period_s=0)
        except KubeError as exc:
            log.warning("could not delete execution pod %s: %s", name, exc)

    async def drain(self) -> None:
        """Wait for pending pod deletions (shutdown)."""
        if self._cleanup:
            await asyncio.gather(*self._cleanup, return_exceptions=True)


__all__ = ["PodRunner", "pod_name"]
