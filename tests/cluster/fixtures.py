"""pytest plugin: a real single-node Kubernetes cluster for tests.

The session fixture ``cluster`` runs ``tests/cluster/up`` (idempotent: it reuses
a running cluster and starts what is missing) and yields a :class:`Cluster`
with the kubeconfig path and helpers that call the real ``kubectl``. Tests never
build the cluster's binaries: ``make test`` builds them first (``tests/deps.sh``),
and a missing one fails ``up`` at once.

Markers:
  ``cluster``       the test needs the local cluster (root only).
  ``cluster_down``  the test stops the cluster (and brings it back); such tests
                    are moved to the end of the run.

Environment:
  ``VORTEX_CLUSTER_DIR``       state dir (default /var/lib/vortex-cluster).
  ``VORTEX_CLUSTER_TEARDOWN``  ``1``: run ``tests/cluster/down`` at session end.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CLUSTER_SRC = Path(__file__).resolve().parent
REPO_ROOT = CLUSTER_SRC.parents[1]
UP = CLUSTER_SRC / "up"
DOWN = CLUSTER_SRC / "down"
STATUS = CLUSTER_SRC / "status"
IMAGES = CLUSTER_SRC / "images"


def state_dir() -> Path:
    return Path(os.environ.get("VORTEX_CLUSTER_DIR", "/var/lib/vortex-cluster")).absolute()


class ClusterError(RuntimeError):
    pass


def _run_script(
    args: list[str], timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(a) for a in args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise ClusterError(
            f"{' '.join(map(str, args))} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-8000:]}"
        )
    return proc


def _last_value(output: str, key: str) -> str:
    for line in reversed(output.strip().splitlines()):
        if line.startswith(key + "="):
            return line.split("=", 1)[1].strip()
    raise ClusterError(f"no {key}= line in output:\n{output[-2000:]}")


def cluster_up(timeout: float = 600) -> Path:
    """Run tests/cluster/up and return the kubeconfig path it printed last.

    Tests only start what `tests/deps.sh` built: a binary that is missing fails at once
    (VORTEX_CLUSTER_NO_BUILD=1) instead of building under a test's timeout."""
    proc = _run_script([UP], timeout, env={"VORTEX_CLUSTER_NO_BUILD": "1"})
    last = proc.stdout.strip().splitlines()[-1]
    if not last.startswith("KUBECONFIG="):
        raise ClusterError(f"up did not end with KUBECONFIG=: {last!r}")
    return Path(last.split("=", 1)[1])


def cluster_down(purge: bool = False, timeout: float = 600) -> str:
    proc = _run_script([DOWN, *(["--purge"] if purge else [])], timeout)
    return proc.stderr


@dataclass
class Cluster:
    """A running local cluster, driven through the real kubectl binary."""

    kubeconfig: Path
    state_dir: Path = field(default_factory=state_dir)

    @property
    def bin_dir(self) -> Path:
        return self.state_dir / "bin"

    @property
    def kubectl_path(self) -> Path:
        return self.bin_dir / "kubectl"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.bin_dir}:{env.get('PATH', '/usr/bin:/bin')}"
        return env

    # -- kubectl -----------------------------------------------------------
    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
        namespace: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.kubectl_path), "--kubeconfig", str(self.kubeconfig)]
        if namespace:
            cmd += ["-n", namespace]
        cmd += list(args)
        proc = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, env=self.env()
        )
        if check and proc.returncode != 0:
            raise ClusterError(
                f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def get_json(self, *args: str, namespace: str | None = None) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json", namespace=namespace).stdout)

    def apply(
        self,
        manifest: str | dict | Iterable[dict],
        namespace: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """kubectl apply -f - of YAML text, one object, or a list of objects."""
        if isinstance(manifest, str):
            text = manifest
        elif isinstance(manifest, dict):
            text = json.dumps(manifest)
        else:
            text = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(manifest)})
        return self.kubectl("apply", "-f", "-", input=text, namespace=namespace, check=check)

    def wait_for(
        self,
        what: str,
        predicate,
        timeout: float = 120,
        interval: float = 0.5,
    ) -> Any:
        """Call predicate() until it returns a truthy value; return that value."""
        deadline = time.monotonic() + timeout
        last_exc: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = predicate()
                if value:
                    return value
            except (ClusterError, KeyError, IndexError, ValueError) as exc:
                last_exc = exc
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last error: {last_exc}")

    def pod(self, name: str, namespace: str) -> dict:
        return self.get_json("pod", name, namespace=namespace)

    def wait_pod_phase(
        self, name: str, namespace: str, phases: Iterable[str], timeout: float = 120
    ) -> dict:
        wanted = set(phases)

        def check() -> dict | None:
            pod = self.pod(name, namespace)
            return pod if pod.get("status", {}).get("phase") in wanted else None

        try:
            return self.wait_for(f"pod {namespace}/{name} in {sorted(wanted)}", check, timeout)
        except TimeoutError:
            described = self.kubectl("describe", "pod", name, namespace=namespace, check=False)
            raise TimeoutError(
                f"pod {namespace}/{name} never reached {sorted(wanted)}:\n{described.stdout}"
            ) from None

    def wait_pod_ready(self, name: str, namespace: str, timeout: float = 120) -> dict:
        def check() -> dict | None:
            pod = self.pod(name, namespace)
            for cond in pod.get("status", {}).get("conditions", []):
                if cond["type"] == "Ready" and cond["status"] == "True":
                    return pod
            return None

        try:
            return self.wait_for(f"pod {namespace}/{name} Ready", check, timeout)
        except TimeoutError:
            described = self.kubectl("describe", "pod", name, namespace=namespace, check=False)
            raise TimeoutError(f"pod {namespace}/{name} never Ready:\n{described.stdout}") from None

    def create_namespace(self, prefix: str = "vx-test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.kubectl("create", "namespace", name)
        # the namespace's default ServiceAccount appears asynchronously
        self.wait_for(
            f"default ServiceAccount in {name}",
            lambda: (
                self.kubectl(
                    "get", "serviceaccount", "default", namespace=name, check=False
                ).returncode
                == 0
            ),
            timeout=60,
        )
        return name

    def delete_namespace(self, name: str, wait: bool = False) -> None:
        self.kubectl(
            "delete",
            "namespace",
            name,
            f"--wait={str(wait).lower()}",
            "--ignore-not-found",
            check=False,
        )

    # -- images ------------------------------------------------------------
    def base_image(self) -> str:
        """Build (cached) the Debian base image; return its ref."""
        return _last_value(_run_script([IMAGES, "--base"], 1800).stdout, "BASE_IMAGE")

    def build_image(
        self, name: str, dockerfile: Path | str, context: Path | str | None = None
    ) -> str:
        """Build localhost/NAME from DOCKERFILE on the base image, import it, return its ref."""
        args: list[str | Path] = [IMAGES, "--build", name, dockerfile]
        if context is not None:
            args.append(context)
        return _last_value(_run_script(args, 1800).stdout, "IMAGE")

    # -- lifecycle ---------------------------------------------------------
    def up(self) -> Path:
        self.kubeconfig = cluster_up()
        return self.kubeconfig

    def down(self, purge: bool = False) -> str:
        return cluster_down(purge=purge)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: needs the real local Kubernetes cluster (tests/cluster/up)"
    )
    config.addinivalue_line(
        "markers", "cluster_down: stops the local cluster and brings it back; runs last"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tests that take the cluster down run after everything else
    last = [i for i in items if i.get_closest_marker("cluster_down")]
    if last:
        keep = [i for i in items if not i.get_closest_marker("cluster_down")]
        items[:] = keep + last


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The local cluster, up and Ready (started by this fixture if needed)."""
    if os.geteuid() != 0:
        # a missing cluster is a failure, never a silent skip: these tests are the product's proof
        pytest.fail("the local Kubernetes cluster needs root: run `make test` as root", False)
    c = Cluster(kubeconfig=cluster_up())
    yield c
    if os.environ.get("VORTEX_CLUSTER_TEARDOWN") == "1":
        cluster_down()


@pytest.fixture(scope="session")
def kubeconfig(cluster: Cluster) -> Path:
    return cluster.kubeconfig


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = cluster.create_namespace()
    yield name
    cluster.delete_namespace(name)
