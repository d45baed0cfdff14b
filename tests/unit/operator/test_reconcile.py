"""The pure decisions: status from a Deployment, merge patches, drift, code object history."""

from __future__ import annotations

from datetime import UTC, datetime

from vortex_kube.contract import FunctionSpec
from vortex_operator.model import FunctionRef
from vortex_operator.reconcile import (
    CodeOutcome,
    DeploymentView,
    code_history,
    deletable,
    function_status,
    needs_reapply,
    referenced_objects,
    retry_delay,
    status_patch,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
REF = FunctionRef("fns", "hello", "uid-1", 4)
SHA = "a" * 64


def deployment(**status: int) -> DeploymentView:
    return DeploymentView.of(
        {
            "metadata": {"generation": 2},
            "spec": {
                "replicas": 2,
                "template": {"metadata": {"annotations": {"vortex.dev/code-sha256": SHA}}},
            },
            "status": {"observedGeneration": 2, **status},
        }
    )


def ready(status: dict) -> dict:
    return next(c for c in status["conditions"] if c["type"] == "Ready")


def status_for(spec: FunctionSpec, dep: DeploymentView | None, outcome=None) -> dict:
    return function_status(
        REF,
        spec,
        generation=4,
        outcome=outcome or CodeOutcome.stored_as(SHA),
        serving=SHA,
        code_objects=[f"functions/{SHA}.js"],
        deployment=dep,
        previous={},
        now=NOW,
    )


def test_rolled_out_needs_every_pod_updated_ready_and_no_old_pod() -> None:
    spec = FunctionSpec.parse({"code": "x", "isolation": "warm", "replicas": 2})
    assert (
        ready(status_for(spec, deployment(replicas=2, updatedReplicas=2, readyReplicas=2)))[
            "status"
        ]
        == "True"
    )
    assert (
        ready(status_for(spec, deployment(replicas=3, updatedReplicas=2, readyReplicas=3)))[
            "status"
        ]
        == "False"
    )
    assert (
        ready(status_for(spec, deployment(replicas=2, updatedReplicas=2, readyReplicas=1)))[
            "status"
        ]
        == "False"
    )


def test_deployment_not_yet_observed_is_not_ready() -> None:
    spec = FunctionSpec.parse({"code": "x", "isolation": "warm", "replicas": 2})
    view = DeploymentView.of(
        {
            "metadata": {"generation": 3},
            "spec": {"replicas": 2, "template": {"metadata": {"annotations": {}}}},
            "status": {
                "observedGeneration": 2,
                "replicas": 2,
                "readyReplicas": 2,
                "updatedReplicas": 2,
            },
        }
    )
    assert ready(status_for(spec, view))["reason"] == "RollingOut"


def test_progress_deadline_is_reported() -> None:
    spec = FunctionSpec.parse({"code": "x", "isolation": "warm", "replicas": 2})
    view = DeploymentView.of(
        {
            "metadata": {"generation": 2},
            "spec": {"replicas": 2},
            "status": {
                "observedGeneration": 2,
                "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}],
            },
        }
    )
    status = status_for(spec, view)
    assert ready(status)["reason"] == "ProgressDeadlineExceeded"
    assert status["phase"] == "Deploying"


def test_an_autoscaled_function_stays_ready_while_its_pods_are_added() -> None:
    spec = FunctionSpec.parse({"code": "x", "isolation": "warm", "replicas": 6, "scale": {}})
    status = status_for(spec, deployment(replicas=6, updatedReplicas=6, readyReplicas=2))
    assert ready(status)["status"] == "True"
    assert ready(status)["reason"] == "Scaling"
    assert ready(status)["message"].startswith("2 of 6 warm pods ready")
    # A code rollout is not a scale: the old pods are still there.
    rolling = status_for(spec, deployment(replicas=6, updatedReplicas=3, readyReplicas=6))
    assert ready(rolling)["reason"] == "RollingOut"
    plain = FunctionSpec.parse({"code": "x", "isolation": "warm", "replicas": 6})
    adding = deployment(replicas=6, updatedReplicas=6, readyReplicas=2)
    assert ready(status_for(plain, adding))["reason"] == "RollingOut"


def test_scaled_to_zero() -> None:
    spec = FunctionSpec.parse({"code": "x", "isolation": "warm", "replicas": 0})
    status = status_for(spec, deployment())
    assert ready(status)["reason"] == "ScaledToZero"
    assert status["replicasSummary"] == "0/0"


def test_compile_error_keeps_serving_hash_and_says_so() -> None:
    spec = FunctionSpec.parse({"code": "x", "isolation": "warm", "replicas": 2})
    outcome = CodeOutcome.compile_error(3, 7, "Unexpected token")
    status = status_for(spec, deployment(replicas=2, updatedReplicas=2, readyReplicas=2), outcome)
    assert (
        ready(status)["message"] == f"line 3, column 7: Unexpected token; still serving {SHA[:12]}"
    )
    assert status["compileError"] == {
        "line": 3,
        "column": 7,
        "message": ready(status)["message"].split(";")[0],
    }
    assert status["codeSha256"] == SHA


def test_a_new_function_that_does_not_compile_says_so_in_ready() -> None:
    spec = FunctionSpec.parse({"code": "x", "isolation": "warm"})
    outcome = CodeOutcome.compile_error(1, 9, "Unexpected token")
    status = function_status(
        REF,
        spec,
        generation=1,
        outcome=outcome,
        serving=None,
        code_objects=[],
        deployment=None,
        previous={},
        now=NOW,
    )
    assert (ready(status)["reason"], ready(status)["status"]) == ("CompileError", "False")
    assert ready(status)["message"] == "line 1, column 9: Unexpected token"
    assert status["phase"] == "Failed"


def test_outcome_round_trips_through_the_status() -> None:
    spec = FunctionSpec.parse({"code": "x", "isolation": "warm"})
    for outcome in (
        CodeOutcome.stored_as(SHA),
        CodeOutcome.compile_error(1, 2, "bad"),
        CodeOutcome("storage_unavailable", "down"),
    ):
        status = status_for(spec, None, outcome)
        assert CodeOutcome.from_status(status) == outcome


def test_status_patch_sets_changes_and_removes_nulls() -> None:
    before = {"phase": "Deploying", "compileError": {"line": 1}, "readyReplicas": 0}
    after = {"phase": "Ready", "compileError": None, "readyReplicas": 0, "endpoint": None}
    assert status_patch(before, after) == {"phase": "Ready", "compileError": None}
    assert status_patch(after | {"compileError": None}, after) is None


def test_needs_reapply() -> None:
    dep = {"metadata": {"generation": 4, "resourceVersion": "10"}}
    assert needs_reapply("Deployment", "DELETED", dep, 4)
    assert not needs_reapply("Deployment", "MODIFIED", dep, 4)
    assert needs_reapply("Deployment", "MODIFIED", dep, 3)
    assert not needs_reapply("Deployment", None, dep, None)  # just restarted: resume re-applies
    assert needs_reapply("Service", "MODIFIED", dep, "9")
    assert not needs_reapply("Service", "MODIFIED", dep, "10")
    terminating = {"metadata": {"generation": 5, "deletionTimestamp": "now"}}
    assert not needs_reapply("Deployment", "MODIFIED", terminating, 4)


def test_code_history_and_deletable() -> None:
    kept, dropped = code_history(["b", "a", "c"], "a", keep=1)
    assert kept == ["a", "b"]
    assert dropped == ["c"]
    assert deletable(["a", "b", "a", "c"], referenced={"b"}) == ["a", "c"]
    assert referenced_objects([{"codeObject": "x", "codeObjects": ["x", "y"]}, {}]) == {"x", "y"}


def test_retry_delay_backs_off_and_caps() -> None:
    assert [retry_delay(n) for n in range(6)] == [1, 2, 4, 8, 10, 10]
