"""The operator heals: a SIGKILL in mid-reconcile, a MinIO outage, a deletion with MinIO gone."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.operator.conftest import Stack
from vortex_runtime import sha256_hex

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(420)]


def function(stack: Stack, name: str, code: str) -> dict[str, object]:
    return {
        "apiVersion": "vortex.dev/v1alpha1",
        "kind": "VortexFunction",
        "metadata": {"name": name, "namespace": stack.namespace},
        "spec": {
            "code": code,
            "isolation": "warm",
            "resources": {"requests": {"cpu": "10m", "memory": "96Mi"}},
        },
    }


def assert_converged(stack: Stack, name: str, code: str) -> None:
    fn = stack.wait_ready(name, timeout=120)
    sha = sha256_hex(code.encode())
    assert fn["status"]["codeSha256"] == sha
    assert fn["status"]["observedGeneration"] == fn["metadata"]["generation"]
    assert "vortex.dev/code-objects" in fn["metadata"]["finalizers"]
    dep = stack.get("deployment", f"vf-{name}")
    assert dep is not None
    assert dep["spec"]["template"]["metadata"]["annotations"]["vortex.dev/code-sha256"] == sha
    pods = stack.running_ready_pods(name)
    assert [p["metadata"]["annotations"]["vortex.dev/code-sha256"] for p in pods] == [sha]
    assert f"functions/{sha}.js" in stack.code_objects()
    for kind in ("service", "networkpolicy", "secret"):
        assert stack.get(kind, f"vf-{name}") is not None, kind


def test_killed_in_mid_reconcile_converges_after_restart(stack: Stack) -> None:
    assert stack.operator is not None
    names = [f"crash-{i}" for i in range(6)]
    items = [function(stack, n, f"return '{n} v1';") for n in names]
    stack.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )
    # Kill as soon as the first Deployment appears: the others are somewhere in between.
    stack.cluster.wait_for(
        "a first Deployment",
        lambda: stack.kubectl("get", "deploy", "-o", "name").stdout.strip(),
        timeout=30,
        interval=0.05,
    )
    stack.operator.kill()
    unfinished = [n for n in names if (stack.condition(n, "Ready") or {}).get("status") != "True"]
    assert unfinished, "every function was finished before the kill"

    # A code change the dead operator never sees.
    stack.patch_spec("crash-0", {"code": "return 'crash-0 v2';"})
    stack.start_local_operator()

    assert_converged(stack, "crash-0", "return 'crash-0 v2';")
    for name in names[1:]:
        assert_converged(stack, name, f"return '{name} v1';")
    assert stack.execute_until_ok("crash-0").json()["output"] == "crash-0 v2"

    # Killed while rolling a new code version.
    stack.patch_spec("crash-1", {"code": "return 'crash-1 v2';"})
    stack.cluster.wait_for(
        "the roll to start",
        lambda: (stack.function("crash-1").get("status") or {}).get("observedGeneration") == 2,
        timeout=30,
        interval=0.05,
    )
    stack.operator.kill()
    stack.start_local_operator()
    assert_converged(stack, "crash-1", "return 'crash-1 v2';")


def test_minio_outage_is_storage_unavailable_and_heals_by_itself(stack: Stack) -> None:
    stack.apply_function("steady", {"code": "return 'v1';", "isolation": "warm"})
    stack.wait_ready("steady")

    stack.minio.stop()
    try:
        stack.apply_function("newcomer", {"code": "return 'stored after the outage';"})
        fn = stack.wait_condition(
            "newcomer", "CodeStored", "False", reason="StorageUnavailable", timeout=30
        )
        assert fn["status"]["phase"] == "Pending"
        assert stack.get("deployment", "vf-newcomer") is None

        stack.patch_spec("steady", {"code": "return 'v2';"})
        stack.wait_condition(
            "steady", "CodeStored", "False", reason="StorageUnavailable", generation=2
        )
        # The running pods keep serving the code they loaded.
        assert stack.execute("steady").json()["output"] == "v1"
        assert any(
            e["reason"] == "StorageUnavailable" and e["type"] == "Warning"
            for e in stack.events("newcomer")
        )
        time.sleep(3)  # a few retries with back-off while MinIO is down
    finally:
        stack.minio.start()

    stack.wait_ready("newcomer", timeout=60)
    assert stack.execute_until_ok("newcomer").json()["output"] == "stored after the outage"
    fn = stack.wait_condition("steady", "Ready", "True", generation=2, timeout=90)
    assert fn["status"]["codeSha256"] == sha256_hex(b"return 'v2';")
    assert stack.execute_until_ok("steady").json()["output"] == "v2"


def test_deletion_with_minio_gone_is_bounded_and_says_so(stack: Stack) -> None:
    stack.apply_function("orphan", {"code": "return 'left behind';"})
    fn = stack.wait_ready("orphan")
    key = fn["status"]["codeObject"]

    stack.minio.stop()
    try:
        started = time.monotonic()
        stack.kubectl("delete", "vf", "orphan", "--wait=true", "--timeout=60s", timeout=90)
        elapsed = time.monotonic() - started
    finally:
        stack.minio.start()

    # VORTEX_OPERATOR_DELETE_TIMEOUT_S is 8 for these tests.
    assert 8 <= elapsed < 30
    [event] = [e for e in stack.events("orphan") if e["reason"] == "CodeObjectsLeft"]
    assert event["type"] == "Warning"
    assert key in event["message"]
    assert "limit 8s" in event["message"]
    assert stack.get("deployment", "vf-orphan") is None or stack.cluster.wait_for(
        "children collected", lambda: stack.get("deployment", "vf-orphan") is None, timeout=60
    )
