"""kopf handlers: thin wiring from watch events to the `Controller`.

Run by `python -m vortex_operator` (leader election, health endpoint) or, in development, by
`kopf run -m vortex_operator.handlers --standalone --all-namespaces`.

- VortexFunctions: an index (name -> spec without code, status), create/update/resume reconcile,
  delete runs the finalizer, a timer re-reads `codeRef` sources.
- startup also starts the autoscaler loop (`scaler.py`) and the cron ticker (`cron.py`) when the
  settings name the API Service.
- Deployments, Services, NetworkPolicies labelled `managed-by=vortex-operator`: every watch event
  goes to `Controller.child_event` (self-healing and readiness, with no polling).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import kopf

from vortex_kube.client import KubeApi
from vortex_kube.contract import FUNCTION_LABEL, GROUP, MANAGED_BY_LABEL, OPERATOR, PLURAL, VERSION
from vortex_operator import cron, kopfconfig, loadsource, scaler
from vortex_operator.controller import Controller
from vortex_operator.errors import Retry
from vortex_operator.events import ApiEvents, KopfEvents
from vortex_operator.reconcile import referenced_objects
from vortex_operator.settings import Settings, get_settings
from vortex_operator.storage import CodeStore

VF = (GROUP, VERSION, PLURAL)
OWNED = {MANAGED_BY_LABEL: OPERATOR}
_CODE_FIELDS = (("spec", "code"), ("spec", "codeRef"))


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # `python -m vortex_operator` passes its settings in the memo; `kopf run` reads the environment.
    config: Settings = getattr(memo, "settings", None) or get_settings()
    kopfconfig.configure(settings, namespaced=bool(config.namespaces))
    memo.kube = await KubeApi.connect(OPERATOR)
    memo.controller = controller = Controller(config, memo.kube, CodeStore(config), KopfEvents())
    # kopf runs on the leader only, so the autoscaler does too. Its loop runs outside kopf's
    # handlers, where kopf's event poster is not reachable: it creates Events through the API.
    made = scaler.from_settings(
        config,
        memo.kube,
        ApiEvents(memo.kube),
        functions=controller.autoscaled,
        shared=controller.shared,
        rollouts=controller,
    )
    memo.tasks = []
    source = None
    if made is not None:
        autoscaler, source = made
        memo.tasks.append(asyncio.create_task(autoscaler.run(), name="autoscaler"))
    source = source or loadsource.api_source(config, memo.kube)
    memo.load_source = source
    if source is not None:  # cron ticks go through the API, which owns the async queue
        ticker = cron.Ticker(
            memo.kube,
            source,
            namespace=source.namespace,
            functions=controller.scheduled,
            interval_s=config.cron_interval_s,
        )
        memo.tasks.append(asyncio.create_task(ticker.run(), name="cron"))


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    tasks: list[asyncio.Task[None]] = getattr(memo, "tasks", [])
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    source = getattr(memo, "load_source", None)
    if source is not None:
        await source.close()
    kube = getattr(memo, "kube", None)
    if kube is not None:
        await kube.close()


@kopf.on.probe(id="functions")
def probe_functions(memo: kopf.Memo, **_: Any) -> int:
    controller: Controller | None = getattr(memo, "controller", None)
    return len(controller.states) if controller else 0


@kopf.index(*VF)
def functions(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[Any, Any]:
    """(namespace, name) -> the function without its code (children events look it up)."""
    spec = {k: v for k, v in dict(body.get("spec") or {}).items() if k != "code"}
    meta = body.metadata
    snapshot = {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "uid": meta.uid,
            "generation": meta.get("generation"),
            "deletionTimestamp": meta.deletion_timestamp,
        },
        "spec": spec,
        "status": dict(body.get("status") or {}),
    }
    return {(namespace, name): snapshot}


def _index(kwargs: dict[str, Any]) -> kopf.Index[Any, Any]:
    """The `functions` index, which kopf passes by the indexing handler's name."""
    index: kopf.Index[Any, Any] = kwargs["functions"]
    return index


def _referenced(index: kopf.Index[Any, Any], exclude: tuple[str, str]) -> set[str]:
    statuses = [
        snapshot.get("status") or {}
        for key, store in index.items()
        if key != exclude
        for snapshot in store
    ]
    return referenced_objects(statuses)


def _owner(index: kopf.Index[Any, Any], namespace: str | None, labels: Any) -> Any:
    name = (labels or {}).get(FUNCTION_LABEL)
    if not namespace or not name or (namespace, name) not in index:
        return None
    return next(iter(index[(namespace, name)]), None)


async def _reconcile(
    memo: kopf.Memo, body: kopf.Body, index: kopf.Index[Any, Any], retry: int, verify: bool
) -> None:
    key = (body.metadata.namespace or "", body.metadata.name or "")
    try:
        await memo.controller.reconcile(
            dict(body), retry=retry, verify=verify, referenced=lambda: _referenced(index, key)
        )
    except Retry as exc:
        raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc


@kopf.on.create(*VF)
async def created(body: kopf.Body, retry: int, memo: kopf.Memo, **kwargs: Any) -> None:
    await _reconcile(memo, body, _index(kwargs), retry, verify=True)


@kopf.on.update(*VF)
async def updated(
    body: kopf.Body,
    diff: kopf.Diff,
    retry: int,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    code_changed = any(tuple(d[1][:2]) in _CODE_FIELDS for d in diff)
    await _reconcile(memo, body, _index(kwargs), retry, verify=code_changed)


@kopf.on.resume(*VF)
async def resumed(body: kopf.Body, retry: int, memo: kopf.Memo, **kwargs: Any) -> None:
    await _reconcile(memo, body, _index(kwargs), retry, verify=True)


@kopf.on.delete(*VF)
async def deleted(
    body: kopf.Body,
    runtime: Any,
    memo: kopf.Memo,
    namespace: str | None,
    name: str,
    **kwargs: Any,
) -> None:
    try:
        await memo.controller.finalize(
            dict(body),
            runtime_s=runtime.total_seconds(),
            referenced=_referenced(_index(kwargs), (namespace or "", name)),
        )
    except Retry as exc:
        raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc


def _has_code_ref(spec: kopf.Spec, **_: Any) -> bool:
    return bool(spec.get("codeRef"))


@kopf.timer(*VF, interval=30.0, initial_delay=30.0, when=_has_code_ref)
async def code_ref_refresh(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    await _reconcile(memo, body, _index(kwargs), retry=0, verify=False)


async def _child(
    kind: str,
    type: str | None,
    body: kopf.Body,
    namespace: str | None,
    labels: Any,
    memo: kopf.Memo,
    index: kopf.Index[Any, Any],
) -> None:
    controller: Controller | None = getattr(memo, "controller", None)
    if controller is not None:
        await controller.child_event(kind, type, dict(body), _owner(index, namespace, labels))


@kopf.on.event("apps", "v1", "deployments", labels=OWNED)
async def deployment_event(
    type: str | None,
    body: kopf.Body,
    namespace: str | None,
    labels: Any,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    await _child("Deployment", type, body, namespace, labels, memo, _index(kwargs))


@kopf.on.event("", "v1", "services", labels=OWNED)
async def service_event(
    type: str | None,
    body: kopf.Body,
    namespace: str | None,
    labels: Any,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    await _child("Service", type, body, namespace, labels, memo, _index(kwargs))


@kopf.on.event("networking.k8s.io", "v1", "networkpolicies", labels=OWNED)
async def network_policy_event(
    type: str | None,
    body: kopf.Body,
    namespace: str | None,
    labels: Any,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    await _child("NetworkPolicy", type, body, namespace, labels, memo, _index(kwargs))
