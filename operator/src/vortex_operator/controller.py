"""The operator's domain object: reconciles VortexFunctions and keeps their status true.

`Controller.reconcile` (create/update/resume and the codeRef timer) validates the code with
`vortex_runtime.check`, stores it content-addressed in MinIO, applies the children and publishes
the status. `Controller.child_event` (watch events of the Deployments, Services and NetworkPolicies
we own) puts back deleted or edited children and turns rollout progress into conditions, so
readiness is reported as soon as the pods are ready, not on a timer. `Controller.finalize` removes
the function's code objects, waiting for MinIO no longer than `delete_timeout_s`.

Per function, one lock serialises these and one in-memory `FunctionState` remembers the last
status written, so the status has a single writer and conditions keep their transition times.
`handlers.py` calls this; unit tests drive it with fake clients.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from vortex_kube.contract import (
    MAX_CODE_BYTES,
    ROLLBACK_ANNOTATION,
    FunctionSpec,
    code_key,
    parse_rollback,
    sha_of_key,
)
from vortex_kube.rollout import Rollout
from vortex_kube.versions import History, VersionError
from vortex_operator import manifests, metrics
from vortex_operator.conditions import timestamp, utc_now
from vortex_operator.errors import (
    CodeSourceError,
    KubeError,
    ObjectMissing,
    Retry,
    StorageError,
    StorageUnavailable,
)
from vortex_operator.events import EventSink
from vortex_operator.model import FunctionRef
from vortex_operator.reconcile import (
    CodeOutcome,
    DeploymentView,
    code_history,
    deletable,
    function_status,
    had_children,
    needs_reapply,
    next_rollout,
    next_versions,
    recorded_version,
    retry_delay,
    spec_manager,
    status_patch,
)
from vortex_operator.scaler import Scaled
from vortex_operator.settings import Settings
from vortex_runtime import CompileError, check, sha256_hex

log = logging.getLogger("vortex_operator")


class Kube(Protocol):
    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]: ...

    async def merge_spec(self, obj: dict[str, Any]) -> dict[str, Any]: ...

    async def delete(self, kind: str, namespace: str, name: str) -> bool: ...

    async def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None: ...


class Store(Protocol):
    async def ensure(self, key: str, data: bytes, sha256: str) -> bool: ...

    async def read(self, bucket: str | None, key: str, limit: int) -> bytes: ...

    async def delete(self, keys: list[str]) -> None: ...


@dataclass
class FunctionState:
    """What the operator knows about one function between events."""

    ref: FunctionRef
    spec: FunctionSpec
    status: dict[str, Any]
    generation: int = 0
    outcome: CodeOutcome | None = None
    serving: str | None = None
    code_objects: list[str] = field(default_factory=list)
    history: History = field(default_factory=History)
    rollout: Rollout | None = None
    deployment: DeploymentView | None = None
    recorded: dict[str, str | int] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> FunctionState:
        status = dict(body.get("status") or {})
        serving = status.get("codeSha256") or None
        return cls(
            ref=FunctionRef.of(body),
            spec=FunctionSpec.parse(body.get("spec")),
            status=status,
            generation=int(status.get("observedGeneration") or 0),
            outcome=CodeOutcome.from_status(status),
            serving=serving,
            code_objects=[str(k) for k in status.get("codeObjects") or []],
            history=History.from_json(status.get("versions")),
            rollout=Rollout.read(status.get("rollout")),
        )


class Controller:
    def __init__(
        self,
        settings: Settings,
        kube: Kube,
        store: Store,
        events: EventSink,
        checker: Callable[[str], None] = check,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.store = store
        self.events = events
        self.checker = checker
        self.clock = clock
        self.states: dict[tuple[str, str], FunctionState] = {}

    # state

    def state(self, body: dict[str, Any]) -> FunctionState:
        ref = FunctionRef.of(body)
        state = self.states.get(ref.key)
        if state is None or state.ref.uid != ref.uid:
            state = FunctionState.from_body(body)
            self.states[ref.key] = state
        return state

    def autoscaled(self) -> list[Scaled]:
        """The warm functions with `spec.scale` whose code serves, for the autoscaler."""
        return [
            Scaled(
                ref=state.ref,
                scale=scale,
                replicas=state.spec.replicas,
                ready=state.deployment.ready if state.deployment else 0,
            )
            for state in self.states.values()
            if (scale := state.spec.scale) is not None
            and state.spec.isolation == "warm"
            and state.serving is not None
        ]

    def shared(self) -> set[tuple[str, str]]:
        """The functions the shared pool serves, for the autoscaler's pool load."""
        return {key for key, state in self.states.items() if state.spec.isolation == "shared"}

    def scheduled(self) -> list[tuple[FunctionRef, FunctionSpec]]:
        """The functions with a `spec.schedule`, for the leader's cron ticker."""
        return [(state.ref, state.spec) for state in self.states.values() if state.spec.schedule]

    def forget(self, namespace: str, name: str) -> None:
        self.states.pop((namespace, name), None)
        metrics.forget(namespace, name)

    # reconcile

    async def reconcile(
        self,
        body: dict[str, Any],
        *,
        retry: int = 0,
        verify: bool = True,
        referenced: Callable[[], set[str]] = set,
    ) -> None:
        """Bring the code object, the children and the status in line with the spec.

        `verify=False` (updates that keep the code) trusts a code object stored before. Raises
        `Retry` for what can heal by itself (MinIO down, API errors, missing codeRef). Counted in
        the operator's metrics, failures included.
        """
        metrics.RECONCILES.inc()
        try:
            await self._reconcile(body, retry=retry, verify=verify, referenced=referenced)
        except Exception:
            metrics.RECONCILE_ERRORS.inc()
            raise

    async def _reconcile(
        self,
        body: dict[str, Any],
        *,
        retry: int,
        verify: bool,
        referenced: Callable[[], set[str]],
    ) -> None:
        state = self.state(body)
        ref = FunctionRef.of(body)
        spec = FunctionSpec.parse(body.get("spec"))
        async with state.lock:
            state.ref, state.spec = ref, spec
            try:
                code = await self._code(ref, spec)
            except (CodeSourceError, ObjectMissing) as exc:
                await self._failed(state, ref, CodeOutcome("source_error", str(exc)))
                raise Retry(str(exc), delay=self.settings.code_ref_interval_s) from exc
            except StorageUnavailable as exc:
                await self._failed(state, ref, CodeOutcome("storage_unavailable", str(exc)))
                raise Retry(str(exc), delay=retry_delay(retry)) from exc
            except StorageError as exc:
                await self._failed(state, ref, CodeOutcome("storage_error", str(exc)))
                raise Retry(str(exc), delay=self.settings.code_ref_interval_s) from exc

            data = code.encode()
            sha = sha256_hex(data)
            trusted = sha == state.serving and state.outcome is not None and state.outcome.stored
            if not trusted:
                try:
                    await asyncio.to_thread(self.checker, code)
                except CompileError as exc:
                    reason = str(getattr(exc, "reason", None) or exc.message)
                    outcome = CodeOutcome.compile_error(exc.line, exc.column, reason)
                    await self._failed(state, ref, outcome)
                    return
            if verify or not trusted:
                try:
                    uploaded = await self.store.ensure(code_key(sha), data, sha)
                except StorageUnavailable as exc:
                    await self._failed(state, ref, CodeOutcome("storage_unavailable", str(exc)))
                    raise Retry(str(exc), delay=retry_delay(retry)) from exc
                except StorageError as exc:
                    await self._failed(state, ref, CodeOutcome("storage_error", str(exc)))
                    raise Retry(str(exc), delay=retry_delay(retry, cap=60)) from exc
                if uploaded:
                    self.events.normal(ref, "CodeStored", f"stored {code_key(sha)}")

            previous = state.serving
            metadata = body.get("metadata") or {}
            before = state.history
            state.history = next_versions(
                state.history,
                sha,
                spec,
                body.get("spec") or {},
                now=timestamp(self.clock()),
                manager=spec_manager(metadata),
                rollback=parse_rollback(
                    (metadata.get("annotations") or {}).get(ROLLBACK_ANNOTATION)
                ),
            )
            state.rollout = next_rollout(
                before, state.history, spec, state.rollout, self.clock().timestamp()
            )
            if state.rollout is not None and state.rollout != Rollout.read(
                state.status.get("rollout")
            ):
                self.events.normal(ref, "RolloutStarted", state.rollout.reason)
            self._check_traffic(state)
            state.code_objects, dropped = code_history(
                state.code_objects,
                code_key(sha),
                self.settings.code_history,
                [code_key(s) for s in state.history.code_in_use()],
            )
            state.serving = sha
            state.outcome = CodeOutcome.stored_as(sha)
            try:
                await self._apply_all(state)
            except KubeError as exc:
                raise Retry(f"applying children failed: {exc}", delay=retry_delay(retry)) from exc
            state.generation = ref.generation
            await self._publish(state)
            if previous != sha:
                was = f" (was {previous[:12]})" if previous else ""
                self.events.normal(ref, "CodeDeployed", f"deploying code {sha[:12]}{was}")
        await self._collect(ref, dropped, referenced)

    def rollouts(self) -> list[tuple[FunctionRef, Rollout]]:
        """The rollouts in progress, for the autoscaler's loop to move along."""
        return [
            (state.ref, state.rollout)
            for state in self.states.values()
            if state.rollout is not None
            and state.rollout.phase == "Progressing"
            and state.spec.rollout is not None
        ]

    async def move_rollout(
        self, ref: FunctionRef, now: float, calls: int, errors: int
    ) -> tuple[bool, str, str] | None:
        """Judge one rollout in progress on its new version's counts (summed over the API
        replicas) and write where it stands. The Event to post, as (warning, reason, message),
        when it moved: the caller posts it (the autoscaler's loop, outside kopf's handlers)."""
        state = self.states.get(ref.key)
        if state is None or state.rollout is None or state.spec.rollout is None:
            return None
        async with state.lock:
            before = state.rollout
            after = before.advance(state.spec.rollout, now, calls, errors)
            if after == before:
                return None
            state.rollout = after
            await self._publish(state)
        if after.phase == "RolledBack":
            return True, "RolledBack", after.reason
        if after.phase != before.phase or after.percent != before.percent:
            return False, "RolloutStep", after.reason
        return None

    def _check_traffic(self, state: FunctionState) -> None:
        """Say once per spec generation why its traffic split cannot be followed (the API then
        sends every execution to the latest version)."""
        spec = state.spec
        problem = spec.traffic_error
        if problem is None:
            try:
                spec.traffic.check(state.history.numbers())
            except VersionError as exc:
                problem = str(exc)
        if problem is not None and state.generation != state.ref.generation:
            self.events.warning(state.ref, "TrafficInvalid", f"{problem}: all to the latest")

    async def _code(self, ref: FunctionRef, spec: FunctionSpec) -> str:
        if spec.code is not None:
            return spec.code
        source = spec.code_ref
        if source is None:
            raise CodeSourceError("neither code nor codeRef is set")
        if source.config_map:
            key = source.config_map_key or ""
            cm = await self._get_config_map(ref.namespace, source.config_map)
            if cm is None:
                raise CodeSourceError(f"ConfigMap {source.config_map} not found")
            data = cm.get("data") or {}
            if key not in data:
                raise CodeSourceError(f"ConfigMap {source.config_map} has no key {key}")
            text = str(data[key])
            if len(text.encode()) > MAX_CODE_BYTES:
                raise CodeSourceError(f"ConfigMap {source.config_map} key {key} is over 1 MiB")
            return text
        raw = await self.store.read(source.s3_bucket, source.s3_key or "", MAX_CODE_BYTES)
        if len(raw) > MAX_CODE_BYTES:
            raise CodeSourceError(f"object {source.s3_key} is over 1 MiB")
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise CodeSourceError(f"object {source.s3_key} is not UTF-8 text") from exc

    async def _get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.kube.get("ConfigMap", namespace, name)
        except KubeError as exc:
            raise CodeSourceError(f"reading ConfigMap {name} failed: {exc}") from exc

    async def _failed(self, state: FunctionState, ref: FunctionRef, outcome: CodeOutcome) -> None:
        """Record a code outcome that is not `stored`; the children stay as they are."""
        changed = _news(state.outcome, outcome)
        state.outcome = outcome
        state.generation = ref.generation
        try:
            await self._publish(state)
        except KubeError as exc:
            log.warning("status of %s/%s not written: %s", ref.namespace, ref.name, exc)
        if changed:
            reason = {
                "compile_error": "CompileError",
                "source_error": "CodeRefInvalid",
                "storage_unavailable": "StorageUnavailable",
                "storage_error": "StorageError",
            }[outcome.kind]
            self.events.warning(ref, reason, outcome.message)

    async def _apply_all(self, state: FunctionState) -> None:
        assert state.serving is not None
        for obj in manifests.children(state.ref, state.spec, state.serving, self.settings):
            await self._apply(state, obj)
        unwanted = manifests.unwanted(state.spec)
        if not had_children(state.status):
            # A function the last status shows without children (a new shared one): nothing to
            # delete, so no request for it.
            unwanted = [(kind, why) for kind, why in unwanted if kind in state.recorded]
        for kind, why in unwanted:
            if await self.kube.delete(kind, state.ref.namespace, state.ref.child):
                self.events.normal(state.ref, "Removed", f"{kind} {state.ref.child}: {why}")
            state.recorded.pop(kind, None)
            if kind == "Deployment":
                state.deployment = None

    async def _apply(self, state: FunctionState, obj: dict[str, Any]) -> None:
        kind = obj["kind"]
        try:
            applied = await self.kube.apply(obj)
        except KubeError as exc:
            if exc.status != 422:
                raise
            # A hand edit server-side apply cannot merge with ours: overwrite, then own it again.
            log.info("%s %s: apply refused (%s); overwriting the spec", kind, state.ref.child, exc)
            await self.kube.merge_spec(obj)
            applied = await self.kube.apply(obj)
        version = recorded_version(kind, applied)
        if version is not None:
            state.recorded[kind] = version
        if kind == "Deployment":
            state.deployment = DeploymentView.of(applied)

    async def _publish(self, state: FunctionState) -> None:
        """Write the status if it changed; the only place that writes a function's status."""
        warm = state.spec.isolation == "warm"
        metrics.set_replicas(
            state.ref.namespace,
            state.ref.name,
            desired=state.spec.replicas if warm else 0,
            ready=state.deployment.ready if warm and state.deployment else 0,
        )
        desired = function_status(
            state.ref,
            state.spec,
            generation=state.generation,
            outcome=state.outcome,
            serving=state.serving,
            code_objects=state.code_objects,
            history=state.history,
            rollout=state.rollout,
            deployment=state.deployment,
            previous=state.status,
            now=self.clock(),
            cluster_domain=self.settings.cluster_domain,
        )
        patch = status_patch(state.status, desired)
        if patch is None:
            return
        was_ready = _ready(state.status)
        if await self.kube.patch_status(state.ref.namespace, state.ref.name, patch) is None:
            return
        state.status = {k: v for k, v in desired.items() if v is not None}
        if _ready(state.status) and not was_ready:
            message = next(
                (c["message"] for c in state.status["conditions"] if c["type"] == "Ready"), ""
            )
            self.events.normal(state.ref, "Ready", message)

    async def _collect(
        self, ref: FunctionRef, dropped: list[str], referenced: Callable[[], set[str]]
    ) -> None:
        """Delete code objects that fell out of the history, unless someone references them."""
        if not dropped:
            return
        keys = deletable(dropped, referenced())
        if not keys:
            return
        try:
            await self.store.delete(keys)
        except (StorageError, ObjectMissing) as exc:
            log.warning("old code objects of %s/%s kept: %s", ref.namespace, ref.name, exc)

    # children

    async def child_event(
        self, kind: str, event_type: str | None, obj: dict[str, Any], owner: dict[str, Any] | None
    ) -> None:
        """A watch event of a child: restore it if deleted or edited, refresh the status."""
        meta = owner.get("metadata") if owner else None
        if not meta or meta.get("deletionTimestamp"):
            return
        owners = {r.get("uid") for r in (obj.get("metadata") or {}).get("ownerReferences") or []}
        if meta.get("uid") not in owners:
            return  # not this function's (a leftover of an earlier function of that name)
        assert owner is not None
        state = self.state(owner)
        async with state.lock:
            if kind == "Deployment":
                state.deployment = None if event_type == "DELETED" else DeploymentView.of(obj)
            isolation = state.spec.isolation
            wanted = state.serving is not None and (
                isolation == "warm"
                or (isolation == "pod" and kind not in ("Deployment", "Service"))
            )
            if wanted and needs_reapply(kind, event_type, obj, state.recorded.get(kind)):
                await self._restore(state, kind, event_type)
            if kind == "Deployment":
                await self._publish(state)

    async def _restore(self, state: FunctionState, kind: str, event_type: str | None) -> None:
        assert state.serving is not None
        objs = manifests.children(state.ref, state.spec, state.serving, self.settings)
        # A deleted Deployment may have gone with its Secret: restore both.
        kinds = {kind, "Secret"} if kind == "Deployment" else {kind}
        try:
            for obj in objs:
                if obj["kind"] in kinds:
                    await self._apply(state, obj)
        except KubeError as exc:
            log.warning("restoring %s %s failed: %s", kind, state.ref.child, exc)
            return
        what = "deleted" if event_type == "DELETED" else "changed"
        self.events.normal(state.ref, "Restored", f"{kind} {state.ref.child} was {what}; restored")

    # deletion

    async def finalize(
        self, body: dict[str, Any], *, runtime_s: float, referenced: Iterable[str]
    ) -> None:
        """Remove the function's code objects; give up (with a Warning) after delete_timeout_s."""
        ref = FunctionRef.of(body)
        status = body.get("status") or {}
        state = self.states.get(ref.key)
        objects = list(state.code_objects) if state else []
        objects += [str(k) for k in status.get("codeObjects") or []]
        if status.get("codeObject"):
            objects.append(str(status["codeObject"]))
        keys = [k for k in deletable(objects, referenced) if sha_of_key(k)]
        if keys:
            try:
                await self.store.delete(keys)
            except (StorageError, ObjectMissing) as exc:
                if runtime_s < self.settings.delete_timeout_s:
                    raise Retry(str(exc), delay=2.0) from exc
                self.events.warning(
                    ref,
                    "CodeObjectsLeft",
                    f"MinIO unreachable for {runtime_s:.0f}s (limit "
                    f"{self.settings.delete_timeout_s:.0f}s); deleted without removing "
                    f"{', '.join(keys)}",
                )
                log.warning("finalizer of %s/%s released; left %s", ref.namespace, ref.name, keys)
            else:
                self.events.normal(ref, "CodeObjectsDeleted", ", ".join(keys))
        self.forget(ref.namespace, ref.name)


def _news(before: CodeOutcome | None, after: CodeOutcome) -> bool:
    """Whether a failed outcome is worth an Event (retries of the same outage are not)."""
    if before is None or before.kind != after.kind:
        return True
    return after.kind == "compile_error" and before.message != after.message


def _ready(status: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
