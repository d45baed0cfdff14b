"""Runtime pods on the real cluster under Pod Security `restricted`, and a function that cannot run
saying why at once: one-shot and warm pods both come from the one hardened pod-spec builder."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.cluster.fixtures import Cluster
from tests.fixtures.minio import MinioServer
from tests.integration.operator.conftest import Images, Stack, running_stack

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(300)]

UNHARDENED_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "unhardened"},
    "spec": {"containers": [{"name": "c", "image": "localhost/vortex-runtime:dev"}]},
}


@pytest.fixture(scope="module")
def restricted(
    cluster: Cluster,
    vortex_crd: None,
    vortex_images: Images,
    node_minio: MinioServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A stack whose namespace enforces the `restricted` Pod Security Standard; one-shot pods
    read MinIO keys from each function's own Secret."""
    labels = tuple(f"pod-security.kubernetes.io/{m}=restricted" for m in ("enforce", "warn"))
    with running_stack(
        cluster, node_minio, vortex_images, tmp_path_factory, "vx-restricted", labels, None
    ) as s:
        yield s


def test_the_namespace_really_refuses_an_unhardened_pod(restricted: Stack) -> None:
    proc = restricted.kubectl(
        "create", "--dry-run=server", "-f", "-", input=json.dumps(UNHARDENED_POD), check=False
    )
    assert proc.returncode != 0
    assert "violates PodSecurity" in proc.stderr


def test_an_isolation_pod_function_returns_200_under_restricted(restricted: Stack) -> None:
    restricted.apply_function(
        "oneshot",
        {
            "code": "return { sum: event.a + event.b, secret: context.env.GREETING };",
            "isolation": "pod",
            "env": [{"name": "GREETING", "value": "hi"}],
        },
    )
    restricted.wait_ready("oneshot")

    response = restricted.execute_until_ok("oneshot", {"a": 2, "b": 3}, timeout=120)

    assert response.status_code == 200, response.text
    assert response.json()["output"] == {"sum": 5, "secret": "hi"}


def test_a_warm_function_rolls_out_under_restricted(restricted: Stack) -> None:
    restricted.apply_function("warm", {"code": "return 'warm ok';", "isolation": "warm"})
    restricted.wait_ready("warm", timeout=120)

    assert restricted.execute_until_ok("warm").json()["output"] == "warm ok"
    [pod] = restricted.running_ready_pods("warm")
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def test_a_shared_function_is_served_by_the_restricted_pool(restricted: Stack) -> None:
    restricted.apply_function("pooled", {"code": "return 'pooled ok';"})
    restricted.wait_ready("pooled", timeout=120)

    assert restricted.execute_until_ok("pooled").json()["output"] == "pooled ok"
    pods = restricted.pool_pods()
    assert pods
    assert all(p["status"]["phase"] == "Running" for p in pods)


def test_a_new_function_that_does_not_compile_says_so_at_once(restricted: Stack) -> None:
    restricted.apply_function("broken", {"code": "const a = 1;\nreturn a +;\n"})
    restricted.wait_condition("broken", "Ready", "False", reason="CompileError", generation=1)
    header, row = restricted.kubectl("get", "vf", "broken").stdout.strip().split("\n")[:2]
    assert header.split()[:7] == [
        "NAME",
        "READY",
        "ISOLATION",
        "REPLICAS",
        "CODE",
        "REASON",
        "VERSION",
    ]
    assert "CompileError" in row.split()  # and no version: nothing was ever stored

    # Before, this waited for a runtime that could never start, then answered 503 NotReady.
    response = restricted.execute("broken")

    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["type"] == "CompileError"
    assert (error["line"], error["column"]) == (2, 11)
    assert "line 2, column 11" in error["message"]
