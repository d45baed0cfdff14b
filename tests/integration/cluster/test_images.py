"""Images built without a registry: base image, rebuild after a code change, import."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.cluster.fixtures import Cluster

from .conftest import HERE

pytestmark = pytest.mark.cluster


def containerd_refs(cluster: Cluster) -> set[str]:
    out = subprocess.run(
        [
            str(cluster.bin_dir / "ctr"),
            "--address",
            str(cluster.state_dir / "run" / "containerd" / "containerd.sock"),
            "-n",
            "k8s.io",
            "images",
            "ls",
            "-q",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_base_image_has_fixed_tag_and_is_imported(cluster: Cluster, base_image: str):
    assert base_image.startswith("localhost/vortex-base:bookworm-")
    assert not base_image.endswith(":latest")
    assert base_image in containerd_refs(cluster)


def test_rebuild_after_code_change_is_quick_and_runs(
    cluster: Cluster, base_image: str, namespace: str, tmp_path: Path
):
    ctx = tmp_path / "ctx"
    shutil.copytree(HERE / "images" / "httpd", ctx)
    first = cluster.build_image("vortex-test-rebuild", ctx / "Dockerfile")

    marker = f"changed-{uuid.uuid4().hex}"
    (ctx / "index.html").write_text(marker + "\n")
    t0 = time.monotonic()
    second = cluster.build_image("vortex-test-rebuild", ctx / "Dockerfile")
    elapsed = time.monotonic() - t0

    assert elapsed < 60, f"rebuild + import took {elapsed:.1f}s"
    assert first != second
    for ref in (first, second):
        assert ref.startswith("localhost/vortex-test-rebuild:dev-")
    refs = containerd_refs(cluster)
    assert {first, second, "localhost/vortex-test-rebuild:dev"} <= refs

    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "rebuilt"},
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": second,
                        "imagePullPolicy": "Never",
                        "readinessProbe": {
                            "httpGet": {"path": "/", "port": 8080},
                            "periodSeconds": 1,
                        },
                    }
                ],
                "terminationGracePeriodSeconds": 1,
            },
        },
        namespace=namespace,
    )
    pod = cluster.wait_pod_ready("rebuilt", namespace)
    with urllib.request.urlopen(f"http://{pod['status']['podIP']}:8080/", timeout=10) as resp:
        assert marker in resp.read().decode()
