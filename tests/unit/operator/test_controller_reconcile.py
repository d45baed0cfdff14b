"""Controller.reconcile: validate, store content-addressed, apply children, publish the status."""

from __future__ import annotations

import pytest

from tests.unit.fake_kube import FakeKube
from tests.unit.operator.conftest import Clock, function
from tests.unit.operator.fakes import FakeStore
from vortex_operator.controller import Controller
from vortex_operator.errors import Retry
from vortex_operator.events import RecordedEvents
from vortex_runtime import sha256_hex

SHA = sha256_hex(b"return 42;")


def condition(status: dict, kind: str) -> dict:
    return next(c for c in status["conditions"] if c["type"] == kind)


async def test_create_stores_code_and_applies_children(
    controller: Controller, kube: FakeKube, store: FakeStore, events: RecordedEvents
) -> None:
    await controller.reconcile(function())

    assert store.objects == {f"functions/{SHA}.js": b"return 42;"}
    assert kube.applied("Secret") == ["vf-hello"]
    assert kube.applied("NetworkPolicy") == ["vf-hello"]
    assert kube.applied("Service") == ["vf-hello"]
    assert kube.applied("Deployment") == ["vf-hello"]
    template = kube.obj("Deployment", "fns", "vf-hello")["spec"]["template"]
    assert template["metadata"]["annotations"]["vortex.dev/code-sha256"] == SHA

    status = kube.statuses[("fns", "hello")]
    assert status["codeSha256"] == SHA
    assert status["codeObject"] == f"functions/{SHA}.js"
    assert status["codeShortSha256"] == SHA[:12]
    assert status["observedGeneration"] == 1
    assert condition(status, "CodeStored")["status"] == "True"
    assert condition(status, "Ready")["status"] == "False"
    assert condition(status, "Ready")["reason"] == "RollingOut"
    assert status["phase"] == "Deploying"
    assert status["endpoint"] == "http://vf-hello.fns.svc.cluster.local"
    assert "CodeStored" in events.reasons()
    assert "CodeDeployed" in events.reasons()


async def test_reconcile_twice_changes_nothing(
    controller: Controller, kube: FakeKube, store: FakeStore
) -> None:
    await controller.reconcile(function())
    generation = kube.obj("Deployment", "fns", "vf-hello")["metadata"]["generation"]
    patches = [c for c in kube.calls if c[0] == "patch_status"]

    await controller.reconcile(function())

    assert store.puts == 1
    assert kube.obj("Deployment", "fns", "vf-hello")["metadata"]["generation"] == generation
    assert [c for c in kube.calls if c[0] == "patch_status"] == patches


async def test_compile_error_sets_false_condition_with_position_and_rolls_nothing(
    controller: Controller, kube: FakeKube, store: FakeStore, events: RecordedEvents
) -> None:
    await controller.reconcile(function())
    deployment_before = kube.obj("Deployment", "fns", "vf-hello")
    applies_before = len([c for c in kube.calls if c[0] == "apply"])

    await controller.reconcile(function(code="return 1 +;\n", generation=2))

    assert len([c for c in kube.calls if c[0] == "apply"]) == applies_before
    assert kube.obj("Deployment", "fns", "vf-hello") == deployment_before
    assert len(store.objects) == 1
    status = kube.statuses[("fns", "hello")]
    stored = condition(status, "CodeStored")
    assert stored["status"] == "False"
    assert stored["reason"] == "CompileError"
    assert stored["message"] == "line 1, column 11: SyntaxError: Unexpected token ';'"
    assert stored["observedGeneration"] == 2
    assert status["compileError"]["line"] == 1
    assert isinstance(status["compileError"]["column"], int)
    assert status["codeSha256"] == SHA  # still serving the old code
    assert status["phase"] == "Failed"
    assert condition(status, "Ready")["reason"] == "CompileError"
    assert ("Warning", "fns/hello", "CompileError", stored["message"]) in events.items


async def test_compile_error_on_a_new_function_creates_no_children(
    controller: Controller, kube: FakeKube, store: FakeStore
) -> None:
    await controller.reconcile(function(code="export default function ( {"))

    assert kube.children() == set()
    assert store.objects == {}
    status = kube.statuses[("fns", "hello")]
    assert status["phase"] == "Failed"
    assert "codeSha256" not in status
    assert condition(status, "Available")["reason"] == "NoDeployment"


async def test_storage_outage_is_reported_then_recovers(
    controller: Controller, kube: FakeKube, store: FakeStore, events: RecordedEvents
) -> None:
    store.down = True
    with pytest.raises(Retry) as raised:
        await controller.reconcile(function(), retry=0)
    assert raised.value.delay == 1.0
    status = kube.statuses[("fns", "hello")]
    assert condition(status, "CodeStored")["reason"] == "StorageUnavailable"
    assert condition(status, "CodeStored")["status"] == "False"
    assert status["phase"] == "Pending"
    assert kube.children() == set()

    with pytest.raises(Retry) as raised:
        await controller.reconcile(function(), retry=5)
    assert raised.value.delay == 10.0  # capped back-off
    assert events.reasons().count("StorageUnavailable") == 1  # one Event per outage

    store.down = False
    await controller.reconcile(function(), retry=6)
    status = kube.statuses[("fns", "hello")]
    assert condition(status, "CodeStored")["status"] == "True"
    assert kube.applied("Deployment") == ["vf-hello"]


async def test_code_change_rolls_by_hash_and_revert_is_a_hash_swap(
    controller: Controller, kube: FakeKube, store: FakeStore
) -> None:
    await controller.reconcile(function())
    await controller.reconcile(function(code="return 43;", generation=2))
    new = sha256_hex(b"return 43;")
    dep = kube.obj("Deployment", "fns", "vf-hello")
    assert dep["spec"]["template"]["metadata"]["annotations"]["vortex.dev/code-sha256"] == new
    env = {
        e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["VORTEX_CODE_KEY"] == f"functions/{new}.js"
    assert env["VORTEX_CODE_SHA256"] == new

    puts = store.puts
    await controller.reconcile(function(generation=3))
    dep = kube.obj("Deployment", "fns", "vf-hello")
    assert dep["spec"]["template"]["metadata"]["annotations"]["vortex.dev/code-sha256"] == SHA
    assert store.puts == puts  # the old object was still there
    assert kube.statuses[("fns", "hello")]["codeObjects"] == [
        f"functions/{SHA}.js",
        f"functions/{new}.js",
    ]


async def test_old_code_objects_beyond_the_history_are_collected_unless_shared(
    controller: Controller, store: FakeStore
) -> None:
    versions = [f"return {n};" for n in range(5)]
    keys = [f"functions/{sha256_hex(v.encode())}.js" for v in versions]
    shared = keys[0]
    for generation, code in enumerate(versions, start=1):
        body = function(code=code, generation=generation, revisionHistoryLimit=1)
        await controller.reconcile(body, referenced=lambda: {shared})
    # history 2 (and one version kept): the current object and two older ones are kept; key 1
    # is collected; key 0 is referenced by another function.
    assert store.deleted == [keys[1]]
    assert set(store.objects) == {keys[0], keys[2], keys[3], keys[4]}


async def test_the_code_of_every_kept_version_stays(
    controller: Controller, store: FakeStore, kube: FakeKube
) -> None:
    codes = [f"return {n};" for n in range(6)]
    keys = [f"functions/{sha256_hex(c.encode())}.js" for c in codes]
    for generation, code in enumerate(codes, start=1):
        body = function(code=code, generation=generation, revisionHistoryLimit=5)
        await controller.reconcile(body, referenced=set)
    status = kube.statuses[("fns", "hello")]
    assert status["latestVersion"] == 6
    assert [v["version"] for v in status["versions"]] == [2, 3, 4, 5, 6]
    # five versions outlast the code history of 2: only the first object went
    assert store.deleted == [keys[0]]
    assert set(store.objects) == set(keys[1:])
    assert set(status["codeObjects"]) == set(keys[1:])


async def test_each_change_of_code_or_execution_spec_is_a_version(
    controller: Controller, kube: FakeKube
) -> None:
    await controller.reconcile(function(code="return 1;", generation=1))
    await controller.reconcile(function(code="return 1;", generation=2, replicas=3))
    await controller.reconcile(function(code="return 1;", generation=3, memoryMb=256))
    body = function(code="return 2;", generation=4, memoryMb=256)
    spec_fields = {"f:spec": {"f:code": {}}}
    body["metadata"]["managedFields"] = [
        {
            "manager": "kubectl-client-side-apply",
            "time": "2026-01-01T00:00:02Z",
            "fieldsV1": spec_fields,
        },
        {
            "manager": "vortex-operator",
            "subresource": "status",
            "time": "2026-01-01T00:00:03Z",
            "fieldsV1": {"f:status": {}},
        },
        {"manager": "kopf", "time": "2026-01-01T00:00:04Z", "fieldsV1": {"f:metadata": {}}},
        {"manager": "vortex-api", "time": "2026-01-01T00:00:01Z", "fieldsV1": spec_fields},
    ]
    await controller.reconcile(body)
    versions = kube.statuses[("fns", "hello")]["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[1]["spec"] == {"memoryMb": 256, "isolation": "warm"}
    assert versions[2]["codeSha256"] == sha256_hex(b"return 2;")
    assert versions[2]["createdBy"] == "kubectl-client-side-apply"
    assert all(v["createdAt"].endswith("Z") for v in versions)


async def test_a_rollback_annotation_makes_one_new_version(
    controller: Controller, kube: FakeKube
) -> None:
    one = sha256_hex(b"return 1;")
    await controller.reconcile(function(code="return 1;", generation=1))
    await controller.reconcile(function(code="return 2;", generation=2))
    rolled = function(code="return 1;", generation=3)
    rolled["metadata"]["annotations"] = {"vortex.dev/rollback": f"1 {one}"}
    await controller.reconcile(rolled)
    await controller.reconcile(rolled)  # a resync: no second rollback
    later = function(code="return 3;", generation=4)
    later["metadata"]["annotations"] = {"vortex.dev/rollback": f"1 {one}"}  # left behind
    await controller.reconcile(later)
    versions = kube.statuses[("fns", "hello")]["versions"]
    assert [(v["version"], v.get("rollbackOf")) for v in versions] == [
        (1, None),
        (2, None),
        (3, 1),
        (4, None),
    ]
    assert versions[2]["codeSha256"] == one


async def test_api_errors_while_applying_are_retried(
    controller: Controller, kube: FakeKube
) -> None:
    kube.fail_applies = 1
    with pytest.raises(Retry):
        await controller.reconcile(function(), retry=1)
    await controller.reconcile(function(), retry=2)
    assert kube.applied("Deployment") == ["vf-hello"]


async def test_isolation_pod_stores_code_and_is_ready_without_warm_pods(
    controller: Controller, kube: FakeKube, store: FakeStore
) -> None:
    await controller.reconcile(function(isolation="pod"))

    assert kube.applied("Deployment") == []
    assert kube.applied("Service") == []
    assert kube.applied("NetworkPolicy") == ["vf-hello"]
    assert kube.applied("Secret") == ["vf-hello"]
    assert len(store.objects) == 1
    status = kube.statuses[("fns", "hello")]
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "Available")["reason"] == "OneShotPods"
    assert status["phase"] == "Ready"
    assert status["replicasSummary"] == "one-shot"
    assert "endpoint" not in status


async def test_switching_to_isolation_pod_removes_warm_pods(
    controller: Controller, kube: FakeKube, events: RecordedEvents
) -> None:
    await controller.reconcile(function())
    await controller.reconcile(function(isolation="pod", generation=2))

    assert ("Deployment", "fns", "vf-hello") not in kube.children()
    assert ("Service", "fns", "vf-hello") not in kube.children()
    assert events.reasons().count("Removed") == 2


async def test_a_shared_function_is_pooled_with_no_children_of_its_own(
    controller: Controller, kube: FakeKube, store: FakeStore, events: RecordedEvents
) -> None:
    await controller.reconcile(function(isolation="shared"))

    assert store.objects == {f"functions/{SHA}.js": b"return 42;"}
    assert kube.children() == set()
    assert [c for c in kube.calls if c[0] in ("apply", "delete")] == []  # not even a delete
    status = kube.statuses[("fns", "hello")]
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "Ready")["reason"] == "Pooled"
    assert condition(status, "Available")["reason"] == "Pooled"
    assert status["phase"] == "Ready"
    assert status["codeObject"] == f"functions/{SHA}.js"
    assert "replicasSummary" not in status
    assert "endpoint" not in status
    assert "Ready" in events.reasons()


async def test_moving_a_function_between_warm_and_shared_adds_and_removes_its_children(
    controller: Controller, kube: FakeKube, events: RecordedEvents
) -> None:
    await controller.reconcile(function())
    assert len(kube.children()) == 4
    await controller.reconcile(function(isolation="shared", generation=2))
    assert kube.children() == set()
    assert events.reasons().count("Removed") == 4
    assert condition(kube.statuses[("fns", "hello")], "Ready")["reason"] == "Pooled"
    await controller.reconcile(function(isolation="warm", generation=3))
    assert kube.applied("Deployment") == ["vf-hello", "vf-hello"]
    assert condition(kube.statuses[("fns", "hello")], "Ready")["reason"] == "RollingOut"


async def test_a_shared_function_reading_env_from_a_secret_says_it_needs_pods(
    controller: Controller, kube: FakeKube
) -> None:
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    await controller.reconcile(function(isolation="shared", env=env))
    ready = condition(kube.statuses[("fns", "hello")], "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "EnvNotPooled"
    assert "TOKEN" in ready["message"]
    assert "isolation warm or pod" in ready["message"]


async def test_update_without_code_change_trusts_the_stored_object(
    controller: Controller, kube: FakeKube, store: FakeStore
) -> None:
    await controller.reconcile(function())
    store.down = True  # scaling must not depend on MinIO
    await controller.reconcile(function(replicas=3, generation=2), verify=False)
    assert kube.obj("Deployment", "fns", "vf-hello")["spec"]["replicas"] == 3


async def test_config_map_code_ref(
    controller: Controller, kube: FakeKube, store: FakeStore
) -> None:
    ref = {"configMapKeyRef": {"name": "src", "key": "index.js"}}
    with pytest.raises(Retry):
        await controller.reconcile(function(code=None, codeRef=ref))
    stored = condition(kube.statuses[("fns", "hello")], "CodeStored")
    assert stored["reason"] == "CodeRefInvalid"
    assert "ConfigMap src not found" in stored["message"]

    kube.config_map("fns", "src", {"index.js": "return 'from a ConfigMap';"})
    await controller.reconcile(function(code=None, codeRef=ref))
    assert list(store.objects.values()) == [b"return 'from a ConfigMap';"]


async def test_s3_code_ref(controller: Controller, kube: FakeKube, store: FakeStore) -> None:
    store.objects["uploads/handler.js"] = b"export default () => 'from S3';"
    await controller.reconcile(function(code=None, codeRef={"s3": {"key": "uploads/handler.js"}}))
    sha = sha256_hex(b"export default () => 'from S3';")
    assert store.objects[f"functions/{sha}.js"] == b"export default () => 'from S3';"
    assert kube.statuses[("fns", "hello")]["codeSha256"] == sha


async def test_lost_status_write_for_a_deleted_function_is_ignored(
    controller: Controller, kube: FakeKube
) -> None:
    kube.missing_functions.add(("fns", "hello"))
    await controller.reconcile(function())
    assert ("fns", "hello") not in kube.statuses


async def test_conditions_keep_transition_time_until_status_flips(
    controller: Controller, kube: FakeKube, clock: Clock
) -> None:
    await controller.reconcile(function())
    first = condition(kube.statuses[("fns", "hello")], "CodeStored")["lastTransitionTime"]
    clock.advance(60)
    await controller.reconcile(function(code="return 7;", generation=2))
    second = condition(kube.statuses[("fns", "hello")], "CodeStored")
    assert second["lastTransitionTime"] == first
    assert second["observedGeneration"] == 2
    clock.advance(60)
    await controller.reconcile(function(code="return (;", generation=3))
    third = condition(kube.statuses[("fns", "hello")], "CodeStored")
    assert third["lastTransitionTime"] != first


ROLLOUT = {"steps": [10, 50, 100], "interval": "60s", "maxErrorRate": 0.05}


async def test_a_new_version_with_a_rollout_starts_from_the_stable_one_and_is_judged(
    controller: Controller, kube: FakeKube, events: RecordedEvents, clock: Clock
) -> None:
    await controller.reconcile(function(code="return 1;", generation=1, isolation="shared"))
    body = function(code="return 2;", generation=2, isolation="shared", rollout=ROLLOUT)
    await controller.reconcile(body)
    status = kube.statuses[("fns", "hello")]
    assert status["rollout"]["phase"] == "Progressing"
    assert (status["rollout"]["version"], status["rollout"]["stable"]) == (2, 1)
    assert status["rollout"]["percent"] == 10
    rollout_condition = next(c for c in status["conditions"] if c["type"] == "Rollout")
    assert rollout_condition["status"] == "Unknown"
    assert [r.version for _, r in controller.rollouts()] == [2]
    await controller.reconcile(body)  # a resync starts nothing new
    assert kube.statuses[("fns", "hello")]["rollout"]["since"] == status["rollout"]["since"]

    ref = controller.rollouts()[0][0]
    start = status["rollout"]["since"]
    assert await controller.move_rollout(ref, start + 30, 10, 5) is None  # not an interval yet
    moved = await controller.move_rollout(ref, start + 60, 10, 0)
    assert moved == (False, "RolloutStep", "version 2 at 50% (0.0% errors before)")
    back = await controller.move_rollout(ref, start + 120, 110, 31)
    assert back is not None
    assert back[:2] == (True, "RolledBack")
    status = kube.statuses[("fns", "hello")]
    assert status["rollout"]["phase"] == "RolledBack"
    assert "31 of 100 executions" in status["rollout"]["reason"]
    rollout_condition = next(c for c in status["conditions"] if c["type"] == "Rollout")
    assert (rollout_condition["status"], rollout_condition["reason"]) == ("False", "RolledBack")
    assert controller.rollouts() == []

    # the next version rolls out from the stable one again, not from the one rolled back
    await controller.reconcile(
        function(code="return 3;", generation=3, isolation="shared", rollout=ROLLOUT)
    )
    again = kube.statuses[("fns", "hello")]["rollout"]
    assert (again["version"], again["stable"], again["phase"]) == (3, 1, "Progressing")


async def test_a_rollback_ends_a_rollout_and_takes_all_traffic(
    controller: Controller, kube: FakeKube
) -> None:
    one = sha256_hex(b"return 1;")
    await controller.reconcile(function(code="return 1;", generation=1, isolation="shared"))
    await controller.reconcile(
        function(code="return 2;", generation=2, isolation="shared", rollout=ROLLOUT)
    )
    rolled = function(code="return 1;", generation=3, isolation="shared", rollout=ROLLOUT)
    rolled["metadata"]["annotations"] = {"vortex.dev/rollback": f"1 {one}"}
    await controller.reconcile(rolled)
    status = kube.statuses[("fns", "hello")]
    assert status["latestVersion"] == 3
    assert "rollout" not in status or status["rollout"] is None
    assert controller.rollouts() == []
