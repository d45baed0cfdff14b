"""Desired state, decided without I/O: the function's status, which children to re-apply, which
code objects to delete, and how long to wait before a retry.

- `CodeOutcome`: what became of the latest code (stored, or why not).
- `DeploymentView`: the parts of a Deployment that say how far a rollout got.
- `function_status`: the whole `status` stanza from the outcome, the Deployment and the previous
  status (conditions keep their transition times).
- `status_patch`: the JSON merge patch from one status to the next (None when nothing changed).
- `had_children`: whether a published status is that of a function with children of its own.
- `needs_reapply`: whether a child's watch event means it was deleted or edited by someone else.
- `code_history` / `deletable`: the objects a function keeps and the ones nobody references.

The controller calls these; unit tests check them directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from vortex_kube.contract import (
    CODE_ANNOTATION,
    ENV_NOT_POOLED,
    POOLED,
    FunctionSpec,
    child_name,
    code_key,
    env_not_pooled,
)
from vortex_kube.rollout import CONDITION_STATUS, Rollout
from vortex_kube.versions import History, execution_spec
from vortex_operator import conditions as cond
from vortex_operator.model import FunctionRef

OutcomeKind = Literal[
    "stored", "compile_error", "source_error", "storage_unavailable", "storage_error"
]
_REASONS: dict[str, str] = {
    "stored": "Stored",
    "compile_error": "CompileError",
    "source_error": "CodeRefInvalid",
    "storage_unavailable": "StorageUnavailable",
    "storage_error": "StorageError",
}
_KINDS = {reason: kind for kind, reason in _REASONS.items()}
# Failures the user must fix (the others heal when MinIO comes back).
_FAILED = ("compile_error", "source_error", "storage_error")


@dataclass(frozen=True)
class CodeOutcome:
    kind: OutcomeKind
    message: str = ""
    sha256: str | None = None
    line: int | None = None
    column: int | None = None

    @property
    def stored(self) -> bool:
        return self.kind == "stored"

    @classmethod
    def stored_as(cls, sha256: str) -> CodeOutcome:
        return cls("stored", f"stored as {code_key(sha256)}", sha256=sha256)

    @classmethod
    def compile_error(cls, line: int | None, column: int | None, message: str) -> CodeOutcome:
        where = f"line {line}, column {column}: " if line is not None else ""
        return cls("compile_error", f"{where}{message}", line=line, column=column)

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> CodeOutcome | None:
        """The outcome a previous status records (after an operator restart), if any."""
        found = cond.find(status.get("conditions"), cond.CODE_STORED)
        if found is None:
            return None
        kind = _KINDS.get(str(found.get("reason")))
        if kind is None:
            return None
        if kind == "stored":
            sha = status.get("codeSha256")
            return cls.stored_as(str(sha)) if sha else None
        error = status.get("compileError") or {}
        return cls(
            kind,  # type: ignore[arg-type]
            str(found.get("message") or ""),
            line=error.get("line"),
            column=error.get("column"),
        )


@dataclass(frozen=True)
class DeploymentView:
    generation: int
    observed_generation: int
    desired: int
    replicas: int
    ready: int
    updated: int
    available: int
    code_sha256: str | None
    deadline_exceeded: bool

    @classmethod
    def of(cls, obj: dict[str, Any]) -> DeploymentView:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        template = (spec.get("template") or {}).get("metadata") or {}
        exceeded = any(
            c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
            for c in status.get("conditions") or []
        )
        return cls(
            generation=int(meta.get("generation") or 0),
            observed_generation=int(status.get("observedGeneration") or 0),
            desired=int(spec["replicas"]) if spec.get("replicas") is not None else 1,
            replicas=int(status.get("replicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
            updated=int(status.get("updatedReplicas") or 0),
            available=int(status.get("availableReplicas") or 0),
            code_sha256=(template.get("annotations") or {}).get(CODE_ANNOTATION),
            deadline_exceeded=exceeded,
        )

    def scaling(self, sha256: str) -> bool:
        """Only the number of pods is changing: every pod runs `sha256` and one is ready."""
        return (
            self.observed_generation >= self.generation
            and self.code_sha256 == sha256
            and self.updated >= self.replicas
            and self.ready > 0
        )

    def rolled_out(self, sha256: str, replicas: int) -> bool:
        """Every desired pod runs `sha256`, is ready, and no old pod is left."""
        return (
            self.observed_generation >= self.generation
            and self.code_sha256 == sha256
            and self.desired == replicas
            and self.updated >= replicas
            and self.ready >= replicas
            and self.replicas == replicas
        )


def _code_condition(outcome: CodeOutcome | None) -> cond.Condition:
    if outcome is None:
        return cond.Condition(cond.CODE_STORED, cond.UNKNOWN, "Pending", "not processed yet")
    status = cond.TRUE if outcome.stored else cond.FALSE
    return cond.Condition(cond.CODE_STORED, status, _REASONS[outcome.kind], outcome.message)


def _warm_conditions(
    spec: FunctionSpec,
    outcome: CodeOutcome | None,
    serving: str | None,
    deployment: DeploymentView | None,
) -> tuple[cond.Condition, cond.Condition]:
    if deployment is None:
        waiting = "waiting for the code to be stored" if serving is None else "no Deployment yet"
        available = cond.Condition(cond.AVAILABLE, cond.FALSE, "NoDeployment", waiting)
        if outcome is not None and not outcome.stored:
            # The real cause (e.g. CompileError with its line), not the missing Deployment.
            reason = _REASONS[outcome.kind]
            return available, cond.Condition(cond.READY, cond.FALSE, reason, outcome.message)
        return available, cond.Condition(cond.READY, cond.FALSE, "NoDeployment", waiting)
    counts = f"{deployment.ready} of {spec.replicas} warm pods ready"
    if spec.replicas == 0:
        available = cond.Condition(cond.AVAILABLE, cond.FALSE, "ScaledToZero", "replicas is 0")
    elif deployment.ready > 0:
        available = cond.Condition(cond.AVAILABLE, cond.TRUE, "PodsReady", counts)
    else:
        available = cond.Condition(cond.AVAILABLE, cond.FALSE, "NoReadyPods", counts)

    if outcome is not None and not outcome.stored:
        kept = f"; still serving {serving[:12]}" if serving and deployment.ready else ""
        ready = cond.Condition(
            cond.READY, cond.FALSE, _REASONS[outcome.kind], f"{outcome.message}{kept}"
        )
    elif spec.replicas == 0:
        ready = cond.Condition(cond.READY, cond.FALSE, "ScaledToZero", "replicas is 0")
    elif serving is not None and deployment.rolled_out(serving, spec.replicas):
        ready = cond.Condition(
            cond.READY, cond.TRUE, "RolledOut", f"{counts}, serving {serving[:12]}"
        )
    elif spec.scale is not None and serving is not None and deployment.scaling(serving):
        # The autoscaler changes the count often: the function stays Ready while it does.
        ready = cond.Condition(
            cond.READY,
            cond.TRUE,
            "Scaling",
            f"{counts}, serving {serving[:12]}; scaling to {spec.replicas}",
        )
    elif deployment.deadline_exceeded:
        ready = cond.Condition(
            cond.READY, cond.FALSE, "ProgressDeadlineExceeded", f"rollout stuck: {counts}"
        )
    else:
        updated = min(deployment.updated, spec.replicas)
        ready = cond.Condition(
            cond.READY,
            cond.FALSE,
            "RollingOut",
            f"{updated} of {spec.replicas} pods updated, {deployment.ready} ready",
        )
    return available, ready


def _shared_conditions(
    spec: FunctionSpec, outcome: CodeOutcome | None, serving: str | None, code: cond.Condition
) -> tuple[cond.Condition, cond.Condition]:
    """A shared function is Ready (reason Pooled) once its code is stored: the pool loads it on
    first use, and no pod of its own is made."""
    message = env_not_pooled(spec.env)
    if message is not None:
        available = cond.Condition(cond.AVAILABLE, cond.FALSE, ENV_NOT_POOLED, message)
        return available, cond.Condition(cond.READY, cond.FALSE, ENV_NOT_POOLED, message)
    if serving is None:
        available = cond.Condition(cond.AVAILABLE, cond.FALSE, "CodeNotStored", code.message)
    else:
        available = cond.Condition(
            cond.AVAILABLE, cond.TRUE, POOLED, "served by the shared pool of runtime pods"
        )
    if outcome is not None and not outcome.stored:
        kept = f"; still serving {serving[:12]}" if serving else ""
        reason = _REASONS[outcome.kind]
        return available, cond.Condition(cond.READY, cond.FALSE, reason, f"{outcome.message}{kept}")
    if serving is None or outcome is None:
        return available, cond.Condition(cond.READY, cond.FALSE, code.reason, code.message)
    return available, cond.Condition(
        cond.READY, cond.TRUE, POOLED, f"served by the shared pool, code {serving[:12]}"
    )


def _phase(outcome: CodeOutcome | None, ready: cond.Condition, serving: str | None) -> str:
    if outcome is not None and outcome.kind in _FAILED:
        return "Failed"
    if ready.is_true:
        return "Ready"
    if serving is not None:
        return "Deploying"
    return "Pending"


def function_status(
    ref: FunctionRef,
    spec: FunctionSpec,
    *,
    generation: int,
    outcome: CodeOutcome | None,
    serving: str | None,
    code_objects: list[str],
    deployment: DeploymentView | None,
    previous: dict[str, Any],
    now: datetime,
    cluster_domain: str = "cluster.local",
    history: History | None = None,
    rollout: Rollout | None = None,
) -> dict[str, Any]:
    """The full status stanza.

    `serving` is the hash the children were last applied with; `generation` the spec generation
    the outcome belongs to.
    """
    code = _code_condition(outcome)
    if spec.isolation == "shared":
        available, ready = _shared_conditions(spec, outcome, serving, code)
    elif spec.isolation == "pod":
        stored = serving is not None and outcome is not None and outcome.stored
        if serving is None:
            available = cond.Condition(cond.AVAILABLE, cond.FALSE, "CodeNotStored", code.message)
        else:
            available = cond.Condition(
                cond.AVAILABLE, cond.TRUE, "OneShotPods", "each invocation runs in its own pod"
            )
        if stored:
            ready = cond.Condition(cond.READY, cond.TRUE, "CodeStored", code.message)
        else:
            ready = cond.Condition(cond.READY, cond.FALSE, code.reason, code.message)
    else:
        available, ready = _warm_conditions(spec, outcome, serving, deployment)

    desired_conditions = [code, available, ready]
    kept = [c for c in previous.get("conditions") or [] if isinstance(c, dict)]
    if rollout is not None:
        desired_conditions.append(rollout_condition(rollout))
    else:  # no rollout (any more): no condition about one
        kept = [c for c in kept if c.get("type") != ROLLOUT]
    merged = cond.merge(kept, desired_conditions, generation, now)
    status: dict[str, Any] = {
        "phase": _phase(outcome, ready, serving),
        "observedGeneration": generation,
        "conditions": merged,
        "codeSha256": serving,
        "codeShortSha256": serving[:12] if serving else None,
        "codeObject": code_key(serving) if serving else None,
        "codeObjects": list(code_objects),
        "compileError": None,
    }
    if history is not None and history.latest is not None:
        status["versions"] = history.to_json()
        status["latestVersion"] = history.latest.number
    status["rollout"] = rollout.to_json() if rollout is not None else None
    if outcome is not None and outcome.kind == "compile_error":
        status["compileError"] = {
            "line": outcome.line,
            "column": outcome.column,
            "message": outcome.message,
        }
    if spec.isolation == "shared":
        status.update(
            replicas=0,
            readyReplicas=0,
            replicasSummary=None,
            selector=None,
            endpoint=None,
        )
    elif spec.isolation == "pod":
        status.update(
            replicas=0,
            readyReplicas=0,
            replicasSummary="one-shot",
            selector=None,
            endpoint=None,
        )
    else:
        ready_pods = deployment.ready if deployment else 0
        status.update(
            replicas=deployment.replicas if deployment else 0,
            readyReplicas=ready_pods,
            replicasSummary=f"{ready_pods}/{spec.replicas}",
            selector=f"vortex.dev/function={ref.name},vortex.dev/isolation=warm",
            endpoint=f"http://{child_name(ref.name)}.{ref.namespace}.svc.{cluster_domain}",
        )
    return status


def had_children(status: dict[str, Any]) -> bool:
    """Whether a published status is that of a warm or pod function, which have children (a
    shared function's status has no `replicasSummary`)."""
    return status.get("replicasSummary") is not None


def status_patch(previous: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any] | None:
    """A merge patch turning `previous` into `desired` at the top level; None if equal."""
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        if value is None:
            if previous.get(key) is not None:
                patch[key] = None
        elif previous.get(key) != value:
            patch[key] = value
    return patch or None


def needs_reapply(
    kind: str, event_type: str | None, obj: dict[str, Any], recorded: str | int | None
) -> bool:
    """Whether a child's event shows a deletion or an edit that was not ours.

    `recorded` is what our last apply returned: the generation of a Deployment (its status
    changes all the time, its generation only on spec edits), the resourceVersion of others.
    Nothing recorded (just restarted) means the resume handler re-applies anyway.
    """
    if event_type == "DELETED":
        return True
    if recorded is None:
        return False
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return False
    if kind == "Deployment":
        return int(meta.get("generation") or 0) != recorded
    return str(meta.get("resourceVersion") or "") != str(recorded)


def recorded_version(kind: str, obj: dict[str, Any]) -> str | int | None:
    """What to remember of a child we just applied (see `needs_reapply`)."""
    meta = obj.get("metadata") or {}
    if kind == "Deployment":
        return int(meta.get("generation") or 0)
    version = meta.get("resourceVersion")
    return str(version) if version else None


def code_history(
    previous: Iterable[str], current: str, keep: int, versions: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """(objects to remember, objects dropped): the current one first, then `keep` older ones,
    then those of kept versions (`versions`), which are never dropped."""
    older = [k for k in previous if k != current]
    kept = [current, *older[:keep]]
    pinned = set(versions)
    kept += [k for k in sorted(pinned) if k not in kept]
    return kept, [k for k in older[keep:] if k not in pinned]


ROLLOUT = "Rollout"


def rollout_condition(rollout: Rollout) -> cond.Condition:
    """`Rollout`: Unknown while it progresses, True once Complete, False when rolled back."""
    return cond.Condition(ROLLOUT, CONDITION_STATUS[rollout.phase], rollout.phase, rollout.reason)


def next_rollout(
    before: History,
    after: History,
    spec: FunctionSpec,
    standing: Rollout | None,
    now: float,
) -> Rollout | None:
    """The rollout after a reconcile: a new one from the stable version when a version was made
    and the spec asks for rollouts (the stable one: what had all the traffic, the standing
    rollout's stable version unless that one completed); none after a rollback; otherwise the
    standing one."""
    latest, previous = after.latest, before.latest
    if spec.rollout is None or latest is None or previous is None or latest == previous:
        return standing
    if latest.rollback_of is not None:
        return None  # a rollback takes all the traffic at once, and ends any rollout
    stable = Rollout.stable_version(standing, previous.number)
    if after.get(stable) is None:
        return standing  # pruned (a history limit of 1): nothing to roll out from
    return Rollout.start(spec.rollout, latest.number, stable, now)


def spec_manager(metadata: dict[str, Any]) -> str | None:
    """Who changed the spec last: the field manager of the newest managedFields entry that owns
    spec fields (kubectl-client-side-apply, vortex-api, ...; kopf's own entries hold only
    metadata, and the status subresource's only status)."""
    entries = [
        e
        for e in metadata.get("managedFields") or []
        if isinstance(e, dict)
        and e.get("manager")
        and e.get("subresource") != "status"
        and "f:spec" in (e.get("fieldsV1") or {})
    ]
    if not entries:
        return None
    return str(max(entries, key=lambda e: str(e.get("time") or ""))["manager"])


def next_versions(
    history: History,
    sha256: str,
    spec: FunctionSpec,
    raw_spec: dict[str, Any],
    *,
    now: str,
    manager: str | None,
    rollback: tuple[int, str] | None,
) -> History:
    """The versions after a reconcile that stored `sha256` for this spec: a new one when the
    code or an execution field changed, pruned to the spec's limit. `rollback` is the
    ROLLBACK_ANNOTATION's (version, code hash): while the code is still that hash, the change
    is a rollback to that version, made a new version once even if nothing else changed."""
    fields = execution_spec(raw_spec)
    rollback_of = None
    latest = history.latest
    if rollback is not None and rollback[1] == sha256:
        done = (
            latest is not None
            and latest.same_as(sha256, fields)
            and (latest.rollback_of == rollback[0] or latest.number == rollback[0])
        )
        rollback_of = None if done else rollback[0]
    return history.record(
        sha256,
        fields,
        now,
        spec.traffic,
        created_by=manager,
        rollback_of=rollback_of,
        limit=spec.revision_history_limit,
    )


def deletable(objects: Iterable[str], referenced: Iterable[str]) -> list[str]:
    """The objects nobody else references (content-addressed objects may be shared)."""
    others = set(referenced)
    seen: set[str] = set()
    result = []
    for key in objects:
        if key not in others and key not in seen:
            seen.add(key)
            result.append(key)
    return result


def referenced_objects(statuses: Iterable[dict[str, Any]]) -> set[str]:
    """Every code object the given function statuses remember."""
    keys: set[str] = set()
    for status in statuses:
        if status.get("codeObject"):
            keys.add(str(status["codeObject"]))
        keys.update(str(k) for k in status.get("codeObjects") or [])
    return keys


def retry_delay(retry: int, cap: float = 10.0) -> float:
    """Exponential back-off for a retryable failure: 1, 2, 4, 8, then `cap` seconds."""
    return float(min(cap, 2 ** max(0, retry)))
