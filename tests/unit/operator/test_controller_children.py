"""Controller.child_event: readiness from Deployment events, and self-healing of children."""

from __future__ import annotations

import copy
from typing import Any

from tests.unit.fake_kube import FakeKube
from tests.unit.operator.conftest import function
from vortex_kube.client import KubeApi
from vortex_operator.controller import Controller
from vortex_operator.events import RecordedEvents
from vortex_runtime import sha256_hex

SHA = sha256_hex(b"return 42;")


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def snapshot(kube: FakeKube) -> dict[str, Any]:
    """The function as the operator's index holds it (no code)."""
    body = function()
    body["spec"].pop("code")
    body["status"] = copy.deepcopy(kube.statuses[("fns", "hello")])
    return body


async def test_ready_when_every_pod_of_the_new_code_is_ready(
    controller: Controller, kube: FakeKube, events: RecordedEvents
) -> None:
    await controller.reconcile(function(replicas=2))
    dep = kube.set_deployment_status(
        "fns", "vf-hello", replicas=2, updatedReplicas=2, readyReplicas=1
    )
    await controller.child_event("Deployment", "MODIFIED", dep, snapshot(kube))
    status = kube.statuses[("fns", "hello")]
    assert condition(status, "Available")["status"] == "True"
    assert condition(status, "Ready")["status"] == "False"
    assert condition(status, "Ready")["message"] == "2 of 2 pods updated, 1 ready"
    assert status["replicasSummary"] == "1/2"

    dep = kube.set_deployment_status(
        "fns", "vf-hello", replicas=2, updatedReplicas=2, readyReplicas=2, availableReplicas=2
    )
    await controller.child_event("Deployment", "MODIFIED", dep, snapshot(kube))
    status = kube.statuses[("fns", "hello")]
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "Ready")["reason"] == "RolledOut"
    assert status["phase"] == "Ready"
    assert status["readyReplicas"] == 2
    assert status["replicas"] == 2
    assert status["selector"] == "vortex.dev/function=hello,vortex.dev/isolation=warm"
    assert events.reasons().count("Ready") == 1


async def test_old_pods_still_running_mean_not_ready(
    controller: Controller, kube: FakeKube
) -> None:
    await controller.reconcile(function())
    dep = kube.set_deployment_status(
        "fns", "vf-hello", replicas=2, updatedReplicas=1, readyReplicas=2
    )
    await controller.child_event("Deployment", "MODIFIED", dep, snapshot(kube))
    assert condition(kube.statuses[("fns", "hello")], "Ready")["status"] == "False"


async def test_deleted_deployment_is_restored(
    controller: Controller, kube: FakeKube, events: RecordedEvents
) -> None:
    await controller.reconcile(function())
    gone = kube.obj("Deployment", "fns", "vf-hello")
    await kube.delete("Deployment", "fns", "vf-hello")

    await controller.child_event("Deployment", "DELETED", gone, snapshot(kube))

    restored = kube.obj("Deployment", "fns", "vf-hello")
    annotations = restored["spec"]["template"]["metadata"]["annotations"]
    assert annotations["vortex.dev/code-sha256"] == SHA
    assert (
        "Normal",
        "fns/hello",
        "Restored",
        "Deployment vf-hello was deleted; restored",
    ) in events.items


async def test_hand_edited_deployment_is_put_back(controller: Controller, kube: FakeKube) -> None:
    await controller.reconcile(function())
    dep = kube.obj("Deployment", "fns", "vf-hello")
    dep["spec"]["replicas"] = 5  # someone ran kubectl scale deploy/vf-hello
    dep["metadata"]["generation"] += 1

    await controller.child_event("Deployment", "MODIFIED", copy.deepcopy(dep), snapshot(kube))

    assert kube.obj("Deployment", "fns", "vf-hello")["spec"]["replicas"] == 1


async def test_status_only_changes_are_not_reapplied(
    controller: Controller, kube: FakeKube
) -> None:
    await controller.reconcile(function())
    applies = len(kube.applied("Deployment"))
    dep = kube.set_deployment_status("fns", "vf-hello", replicas=1, readyReplicas=0)
    await controller.child_event("Deployment", "MODIFIED", dep, snapshot(kube))
    assert len(kube.applied("Deployment")) == applies


async def test_edited_service_is_put_back(controller: Controller, kube: FakeKube) -> None:
    await controller.reconcile(function())
    svc = kube.obj("Service", "fns", "vf-hello")
    svc["spec"]["ports"][0]["port"] = 8080
    svc["metadata"]["resourceVersion"] = "999"

    await controller.child_event("Service", "MODIFIED", copy.deepcopy(svc), snapshot(kube))

    assert kube.obj("Service", "fns", "vf-hello")["spec"]["ports"][0]["port"] == 80


async def test_deleted_network_policy_is_restored(controller: Controller, kube: FakeKube) -> None:
    await controller.reconcile(function())
    gone = kube.obj("NetworkPolicy", "fns", "vf-hello")
    await kube.delete("NetworkPolicy", "fns", "vf-hello")
    await controller.child_event("NetworkPolicy", "DELETED", gone, snapshot(kube))
    assert ("NetworkPolicy", "fns", "vf-hello") in kube.children()


async def test_children_of_deleting_or_unknown_functions_are_left_alone(
    controller: Controller, kube: FakeKube
) -> None:
    await controller.reconcile(function())
    gone = kube.obj("Deployment", "fns", "vf-hello")
    await kube.delete("Deployment", "fns", "vf-hello")
    deleting = snapshot(kube)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"

    await controller.child_event("Deployment", "DELETED", gone, deleting)
    await controller.child_event("Deployment", "DELETED", gone, None)

    assert ("Deployment", "fns", "vf-hello") not in kube.children()


async def test_children_of_an_earlier_function_with_that_name_are_ignored(
    controller: Controller, kube: FakeKube
) -> None:
    await controller.reconcile(function())
    dep = kube.obj("Deployment", "fns", "vf-hello")
    stranger = copy.deepcopy(dep)
    stranger["metadata"]["ownerReferences"][0]["uid"] = "uid-of-another"
    stranger["metadata"]["generation"] += 7
    applies = len(kube.applied("Deployment"))
    await controller.child_event("Deployment", "MODIFIED", stranger, snapshot(kube))
    assert len(kube.applied("Deployment")) == applies


async def test_restart_resumes_with_conditions_from_the_status(
    settings, kube: FakeKube, kube_api: KubeApi, store, events: RecordedEvents, clock
) -> None:
    first = Controller(settings, kube_api, store, events, clock=clock)
    await first.reconcile(function())
    dep = kube.set_deployment_status(
        "fns", "vf-hello", replicas=1, updatedReplicas=1, readyReplicas=1, availableReplicas=1
    )
    await first.child_event("Deployment", "MODIFIED", dep, snapshot(kube))
    ready_since = condition(kube.statuses[("fns", "hello")], "Ready")["lastTransitionTime"]

    clock.advance(300)
    second = Controller(settings, kube_api, store, events, clock=clock)  # a new operator process
    await second.child_event("Deployment", None, dep, snapshot(kube))
    await second.reconcile({**function(), "status": kube.statuses[("fns", "hello")]})

    status = kube.statuses[("fns", "hello")]
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "Ready")["lastTransitionTime"] == ready_since


async def test_edit_that_apply_cannot_merge_is_overwritten(
    controller: Controller, kube: FakeKube
) -> None:
    await controller.reconcile(function())
    svc = kube.obj("Service", "fns", "vf-hello")
    svc["spec"]["ports"][0]["port"] = 8081  # a list-map key: apply would add a second port
    svc["metadata"]["resourceVersion"] = "999"
    kube.refuse.add(("Service", "fns", "vf-hello"))

    await controller.child_event("Service", "MODIFIED", copy.deepcopy(svc), snapshot(kube))

    assert ("merge_spec", "Service", "vf-hello") in kube.calls
    assert kube.obj("Service", "fns", "vf-hello")["spec"]["ports"][0]["port"] == 80
