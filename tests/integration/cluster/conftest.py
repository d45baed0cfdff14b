from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.fixtures import Cluster

HERE = Path(__file__).resolve().parent
HTTPD_MARKER = "vortex-cluster-httpd-ok"


@pytest.fixture(scope="session")
def base_image(cluster: Cluster) -> str:
    """The Debian base image (built once, cached), imported into containerd."""
    return cluster.base_image()


@pytest.fixture(scope="session")
def httpd_image(cluster: Cluster, base_image: str) -> str:
    """A tiny image built from the base image: python3 -m http.server on :8080."""
    return cluster.build_image("vortex-test-httpd", HERE / "images" / "httpd" / "Dockerfile")
