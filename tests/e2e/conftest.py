"""Fixtures of the end-to-end tests: images built for the local cluster, the helm CLI bound to its
kubeconfig, and the values a test release runs with. Figures measured by the tests (install to
ready, apply to first execute) are printed at the end of the run.

`VORTEX_E2E_VALUES=<file>` merges extra values over the test release's (another registry, a
different storage class...).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.fixtures import Cluster

from . import kit

FIGURES: dict[str, str] = {}


def record_figure(name: str, text: str) -> None:
    FIGURES[name] = text


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("end-to-end figures")
        for name, text in FIGURES.items():
            terminalreporter.write_line(f"{name}: {text}")


@dataclass
class Helm:
    """The helm binary against the local cluster."""

    cluster: Cluster

    def __call__(
        self,
        *args: str,
        values: dict[str, Any] | None = None,
        timeout: float = 600,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        with kit.values_args(values) as extra:
            return kit.run(
                [str(kit.helm_path()), *args, *extra],
                env=self.cluster.env(),
                timeout=timeout,
                check=check,
            )

    def uninstall(self, release: str, namespace: str) -> None:
        """Uninstall `release` whatever state it is in, then clear the finalizers of functions
        left behind (no operator runs them any more, and they would keep the namespace)."""
        self(
            "uninstall",
            release,
            "--namespace",
            namespace,
            "--wait",
            "--timeout",
            "120s",
            check=False,
        )
        kit.drop_function_finalizers(self.cluster, namespace)


@pytest.fixture(scope="session")
def helm(cluster: Cluster) -> Helm:
    return Helm(cluster)


@pytest.fixture(scope="session")
def images(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Runtime and control-plane images of the current tree, MinIO and NATS, in containerd."""
    return kit.build_images(cluster, tmp_path_factory.mktemp("images"))


def release_values(images: dict[str, str]) -> dict[str, Any]:
    """The test release: images from containerd (never pulled), the operator's metrics on."""

    def image(ref: str) -> dict[str, str]:
        return {**kit.split_image(ref), "pullPolicy": "Never"}

    values: dict[str, Any] = {
        "operator": {"image": image(images["operator"]), "metrics": {"enabled": True}},
        "api": {"image": image(images["operator"])},
        "runtime": {"image": image(images["runtime"])},
        "minio": {"image": image(images["minio"])},
        "nats": {"image": image(images["nats"])},
    }
    extra = os.environ.get("VORTEX_E2E_VALUES")
    if extra:
        values = kit.deep_merge(values, yaml.safe_load(Path(extra).read_text()) or {})
    return values


@pytest.fixture(scope="session")
def base_values(images: dict[str, str]) -> dict[str, Any]:
    return release_values(images)
