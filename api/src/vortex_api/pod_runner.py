"""Runs one execution of an `isolation: pod` function in its own one-shot Pod.

Create the Pod (`k8s_objects.one_shot_pod`), wait a bounded time for its IP and for the runtime's
`/readyz`, post the invocation to it over the runtime protocol, then delete the Pod in the
background whatever happened. The invocation's record would go with the Pod: before deleting it,
the runner reads the record from the Pod's log (within `_RECORD_POLL_S`) and writes the same
line on the API's own stdout, where pod_records.py finds it (when `VORTEX_API_PODS` names the
API's pods). The Kubernetes backend calls `PodRunner.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from vortex_api.errors import NotReady, RuntimeUnavailable, from_kube
from vortex_api.functions import Function
from vortex_api.invocation_logs import LogQuery, parse_line
from vortex_api.invoker import Invocation, InvocationResult, to_result
from vortex_api.k8s_objects import one_shot_pod
from vortex_api.settings import Settings
from vortex_api.transport import RuntimeTransport
from vortex_kube.client import KubeApi
from vortex_kube.contract import child_name
from vortex_kube.errors import KubeError
from vortex_kube.podspec import CONTAINER
from vortex_runtime.records import RecordWriter

log = logging.getLogger("vortex_api.kubernetes")

_POD_POLL_S = (0.05, 0.1, 0.2, 0.5)
_READY_POLL_S = 0.02
# The runtime writes a record within 0.2 s of its answer: look for it in the log after these.
_RECORD_POLL_S = (0.3, 0.3, 0.5, 1.0)


def pod_name(function_id: str, invocation_id: str) -> str:
    return f"{child_name(function_id[:40].rstrip('-'))}-{invocation_id[:12]}"


class PodRunner:
    """One-shot Pods for executions that must not share a process."""

    def __init__(self, kube: KubeApi, transport: RuntimeTransport, settings: Settings) -> None:
        self.kube = kube
        self.transport = transport
        self.settings = settings
        self.namespace = settings.namespace
        # One-shot pods' records, on this process's stdout (the API logs to stderr).
        self.records = RecordWriter(None, 0) if settings.api_pods else None
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
        posted = False
        try:
            url = await self._wait_ready(name)
            posted = True
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
            kept = invocation.invocation_id if posted else None
            task = asyncio.create_task(self._finish(function.function_id, name, kept))
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

    async def _finish(self, function_id: str, name: str, invocation_id: str | None) -> None:
        if invocation_id is not None and self.records is not None:
            await self._keep_record(function_id, name, invocation_id)
        await self._delete(name)

    async def _keep_record(self, function_id: str, name: str, invocation_id: str) -> None:
        """Copy the invocation's record from the pod's log to the API's stdout."""
        assert self.records is not None
        query = LogQuery(invocation=invocation_id)
        needle = query.needle(function_id)
        for delay in _RECORD_POLL_S:
            await asyncio.sleep(delay)
            try:
                async for block in self.kube.pod_log(self.namespace, name, CONTAINER):
                    for line in block.split(b"\n") if needle in block else ():
                        record = parse_line(line)
                        if record is not None and query.matches(record, function_id):
                            self.records.write(line + b"\n")
                            # Written now, not within the writer's FLUSH_S: the pod and its
                            # log are deleted next, and the record must be findable throughout.
                            self.records.flush()
                            return
            except KubeError as exc:
                log.warning("could not read the record of execution pod %s: %s", name, exc)
                return
        log.warning("execution pod %s wrote no record of invocation %s", name, invocation_id)

    async def _delete(self, name: str) -> None:
        try:
            await self.kube.delete("Pod", self.namespace, name, grace_period_s=0)
        except KubeError as exc:
            log.warning("could not delete execution pod %s: %s", name, exc)

    async def drain(self) -> None:
        """Wait for pending pod deletions (shutdown)."""
        if self._cleanup:
            await asyncio.gather(*self._cleanup, return_exceptions=True)
        if self.records is not None:
            self.records.flush()


__all__ = ["PodRunner", "pod_name"]
