"""The operator in the cluster from the control-plane image, with the RBAC of operator/deploy/:
two replicas and one leader, least privilege, a function made Ready and executed, fail-over."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.fixtures import REPO_ROOT, Cluster
from tests.fixtures.minio import MinioServer
from tests.integration.operator.conftest import MINIO_SECRET, Images, Stack, new_stack

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(300)]

DEPLOY = REPO_ROOT / "operator" / "deploy"
SA = "vortex-operator"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def rbac_for(namespace: str) -> list[dict[str, Any]]:
    """operator/deploy/rbac.yaml moved to `namespace`, cluster-wide names made unique."""
    docs = _docs(DEPLOY / "rbac.yaml")
    for doc in docs:
        meta = doc["metadata"]
        if "namespace" in meta:
            meta["namespace"] = namespace
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            meta["name"] = f"{meta['name']}-{namespace}"
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = f"{doc['roleRef']['name']}-{namespace}"
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    return docs


def operator_for(
    namespace: str, images: Images, minio: MinioServer, stack: Stack
) -> dict[str, Any]:
    [dep] = _docs(DEPLOY / "operator.yaml")
    dep["metadata"]["namespace"] = namespace
    [container] = dep["spec"]["template"]["spec"]["containers"]
    container["image"] = images.operator
    env = {e["name"]: e for e in container["env"]}
    env["VORTEX_OPERATOR_RUNTIME_IMAGE"]["value"] = images.runtime
    env["MINIO_ENDPOINT"]["value"] = minio.endpoint
    env["MINIO_BUCKET"]["value"] = stack.bucket
    # Serve only this test's functions: other operators may share the cluster.
    env["VORTEX_OPERATOR_NAMESPACES"] = {
        "name": "VORTEX_OPERATOR_NAMESPACES",
        "value": stack.namespace,
    }
    container["env"] = list(env.values())
    return dict(dep)


class InCluster:
    def __init__(self, cluster: Cluster, stack: Stack, namespace: str) -> None:
        self.cluster = cluster
        self.stack = stack
        self.namespace = namespace

    def pods(self) -> list[dict[str, Any]]:
        return list(
            self.cluster.get_json(
                "pods", "-l", "app.kubernetes.io/name=vortex-operator", namespace=self.namespace
            )["items"]
        )

    def ready_pods(self) -> list[str]:
        return [
            p["metadata"]["name"]
            for p in self.pods()
            if not p["metadata"].get("deletionTimestamp")
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions") or []
            )
        ]

    def lease_holder(self) -> str | None:
        lease = self.cluster.get_json("lease", "vortex-operator", namespace=self.namespace)
        return lease["spec"].get("holderIdentity")

    def logs(self, pod: str) -> str:
        return self.cluster.kubectl("logs", pod, namespace=self.namespace, check=False).stdout

    def can(self, verb: str, resource: str, namespace: str) -> bool:
        proc = self.cluster.kubectl(
            "auth",
            "can-i",
            verb,
            resource,
            "-n",
            namespace,
            f"--as=system:serviceaccount:{self.namespace}:{SA}",
            check=False,
        )
        return proc.stdout.strip() == "yes"


@pytest.fixture(scope="module")
def in_cluster(
    cluster: Cluster,
    vortex_crd: None,
    vortex_images: Images,
    node_minio: MinioServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[InCluster]:
    stack = new_stack(cluster, node_minio, vortex_images, tmp_path_factory, "vx-ic")
    op_ns = cluster.create_namespace("vx-ic-op")
    rbac = rbac_for(op_ns)
    try:
        cluster.apply(rbac)
        cluster.kubectl(
            "create",
            "secret",
            "generic",
            MINIO_SECRET,
            f"--from-literal=MINIO_ACCESS_KEY={node_minio.access_key}",
            f"--from-literal=MINIO_SECRET_KEY={node_minio.secret_key}",
            namespace=op_ns,
        )
        cluster.apply(operator_for(op_ns, vortex_images, node_minio, stack))
        env = InCluster(cluster, stack, op_ns)
        cluster.wait_for("an operator pod Ready", env.ready_pods, timeout=180)
        stack.start_pool(replicas=1)
        stack.start_api()
        yield env
    finally:
        stack.close()  # functions first, while the operator still runs
        cluster.kubectl(
            "delete", "namespace", op_ns, "--wait=true", "--timeout=120s", check=False, timeout=150
        )
        for doc in rbac:
            if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                cluster.kubectl("delete", doc["kind"].lower(), doc["metadata"]["name"], check=False)


def test_two_replicas_one_leader(in_cluster: InCluster) -> None:
    in_cluster.cluster.wait_for(
        "both operator pods Running",
        lambda: len([p for p in in_cluster.pods() if p["status"].get("phase") == "Running"]) == 2,
        timeout=120,
    )
    [leader] = in_cluster.ready_pods()  # the standby is alive but not ready
    assert in_cluster.lease_holder() == leader
    standby = next(
        p["metadata"]["name"] for p in in_cluster.pods() if p["metadata"]["name"] != leader
    )
    assert "waiting for the lease" in in_cluster.logs(standby)
    assert "became the leader" not in in_cluster.logs(standby)
    [pod] = [p for p in in_cluster.pods() if p["metadata"]["name"] == standby]
    assert all(cs["restartCount"] == 0 for cs in pod["status"]["containerStatuses"])


def test_example_reaches_ready_and_executes_through_the_api(in_cluster: InCluster) -> None:
    stack = in_cluster.stack
    name = stack.apply_example("hello")
    fn = stack.wait_ready(name, timeout=60)
    assert fn["status"]["codeObject"] in stack.code_objects()
    assert stack.running_ready_pods(name) == []  # shared: the pool serves it
    out = stack.execute_until_ok(name).json()
    assert out["output"] == 42
    assert [e["message"] for e in out["logs"]] == ["Hello Vortex!"]
    [ready] = [e for e in stack.events(name) if e["reason"] == "Ready"]
    assert ready["source"]["component"] == "vortex-operator"


def test_rbac_is_enough_and_no_more(in_cluster: InCluster) -> None:
    ns = in_cluster.stack.namespace
    for verb, resource in [
        ("patch", "vortexfunctions.vortex.dev"),
        ("patch", "vortexfunctions.vortex.dev/status"),
        ("create", "deployments.apps"),
        ("patch", "services"),
        ("create", "secrets"),
        ("delete", "secrets"),  # a function moving to the shared pool
        ("delete", "networkpolicies.networking.k8s.io"),
        ("get", "configmaps"),
        ("create", "events"),
    ]:
        assert in_cluster.can(verb, resource, ns), f"cannot {verb} {resource}"
    for verb, resource in [
        ("get", "secrets"),
        ("list", "secrets"),
        ("create", "pods"),
        ("delete", "pods"),
        ("delete", "vortexfunctions.vortex.dev"),
        ("create", "vortexfunctions.vortex.dev"),
        ("update", "deployments.apps"),
        ("create", "clusterroles.rbac.authorization.k8s.io"),
    ]:
        assert not in_cluster.can(verb, resource, ns), f"may {verb} {resource}"
    for pod in in_cluster.ready_pods():
        logs = in_cluster.logs(pod)
        assert "Forbidden" not in logs
        assert '"severity": "error"' not in logs


def test_leader_failover(in_cluster: InCluster) -> None:
    [leader] = in_cluster.ready_pods()
    in_cluster.cluster.kubectl(
        "delete", "pod", leader, "--wait=false", namespace=in_cluster.namespace
    )

    def new_leader() -> str | None:
        holder = in_cluster.lease_holder()
        return holder if holder and holder != leader else None

    successor = in_cluster.cluster.wait_for("a new leader", new_leader, timeout=60, interval=0.5)
    in_cluster.cluster.wait_for(
        "the new leader Ready", lambda: successor in in_cluster.ready_pods(), timeout=60
    )
    stack = in_cluster.stack
    stack.apply_function("after-failover", {"code": "return 'still served';"})
    stack.wait_ready("after-failover", timeout=60)
    assert stack.execute_until_ok("after-failover").json()["output"] == "still served"
    lease = in_cluster.cluster.get_json("lease", "vortex-operator", namespace=in_cluster.namespace)
    assert lease["spec"]["leaseTransitions"] >= 1
    assert json.dumps(lease).count(successor) >= 1
