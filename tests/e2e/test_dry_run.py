"""`helm template` output passes the API server's own validation (server-side dry-run), in a
namespace that enforces the `restricted` Pod Security Standard, with warnings as errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.fixtures import Cluster

from . import kit

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]


@pytest.fixture
def restricted_namespaces(cluster: Cluster) -> Iterator[list[str]]:
    names = [cluster.create_namespace("vx-dry"), cluster.create_namespace("vx-dry-extra")]
    for name in names:
        cluster.kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    yield names
    for name in names:
        cluster.delete_namespace(name)


CONFIGS = {
    "defaults": {},
    "bundled-everything": {
        "operator": {
            "replicas": 2,
            "clusterWide": True,
            "pdb": {"minAvailable": 1, "maxUnavailable": None},
        },
        "api": {
            "replicas": 3,
            "service": {"type": "NodePort", "nodePort": None},
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "hosts": [
                    {"host": "vortex.example", "paths": [{"path": "/", "pathType": "Prefix"}]}
                ],
            },
            "maxInflightPerFunction": 5,
            "auth": {"adminKey": "k" * 32, "invokeKeys": ["i" * 32]},
        },
        "global": {"imagePullSecrets": ["regcred"], "commonLabels": {"team": "faas"}},
        "minio": {"persistence": {"enabled": True, "size": "1Gi"}},
        "runtime": {"minioCredentialsSecret": "runtime-readonly"},
    },
    "external-s3": kit.deep_merge(
        kit.EXTERNAL_S3, {"api": {"auth": {"enabled": False}}, "dashboards": {"enabled": False}}
    ),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_template_passes_server_side_dry_run(
    cluster: Cluster, base_values, restricted_namespaces, name
):
    namespace, extra_ns = restricted_namespaces
    values = kit.deep_merge(base_values, CONFIGS[name])
    if name == "external-s3":
        values = kit.deep_merge(values, {"operator": {"watchNamespaces": [extra_ns]}})
    release = "vx-dry"
    manifest = kit.template(
        values, release=release, namespace=namespace, extra=["--include-crds"]
    ).stdout
    # Every namespaced object names its namespace (some live in a watched namespace, not the
    # release's). Server-side apply validates without kubectl's last-applied bookkeeping, so an
    # existing CRD created by other means is compared, not warned about.
    proc = cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=vortex-dry-run",
        "--dry-run=server",
        "--warnings-as-errors",
        "-f",
        "-",
        input=manifest,
        check=False,
    )
    assert proc.returncode == 0, f"server-side dry-run rejected the chart ({name}):\n{proc.stderr}"
    applied = [line for line in proc.stdout.splitlines() if "(server dry run)" in line]
    kinds = {line.split("/", 1)[0] for line in applied}
    assert {
        "deployment.apps",
        "service",
        "networkpolicy.networking.k8s.io",
        "clusterrole.rbac.authorization.k8s.io",
    } <= kinds
    assert len(applied) == manifest.count("\nkind: ") + manifest.startswith("kind: "), proc.stdout
