"""Fixtures for the operator on the real local cluster, with a real MinIO and the real API.

- `vortex_images` (session): `tests/cluster/images` builds and imports the runtime and
  control-plane images (cached; only changed layers are rebuilt).
- `vortex_crd` (session): the CRD from crds/, removed at the end if this session installed it.
- `node_minio` (session): MinIO on the node's address, so the host (operator, API) and the pods
  reach the same server; tests stop and start it for outages.
- `Stack`: one namespace with its own bucket, an operator (a local `kopf run` process, or the
  control-plane image in the cluster) and the API (`python -m vortex_api`, kubernetes backend).
  Its teardown deletes every VortexFunction while the operator still runs (so finalizers finish),
  then the namespace, then stops the processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from tests.cluster.fixtures import IMAGES, REPO_ROOT, Cluster, ClusterError
from tests.fixtures.minio import MinioServer, free_port
from vortex_kube.podspec import Platform, pool_pod_spec

VENV_BIN = Path(sys.executable).parent
CRD_FILE = REPO_ROOT / "crds" / "vortexfunction.yaml"
EXAMPLES = REPO_ROOT / "crds" / "examples"
MINIO_SECRET = "vortex-minio"
POOL_SERVICE = "vortex-pool"
POOL_LABELS = {
    "app.kubernetes.io/name": "vortex-function",
    "app.kubernetes.io/component": "pool",
    "vortex.dev/isolation": "shared",
}


@dataclass(frozen=True)
class Images:
    runtime: str
    operator: str


def _value(output: str, key: str) -> str:
    for line in reversed(output.splitlines()):
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1].strip()
    raise ClusterError(f"no {key}= in tests/cluster/images output:\n{output[-2000:]}")


@pytest.fixture(scope="session")
def vortex_images(cluster: Cluster) -> Images:
    proc = subprocess.run(
        [str(IMAGES)], capture_output=True, text=True, timeout=1800, cwd=REPO_ROOT, check=False
    )
    if proc.returncode != 0:
        raise ClusterError(f"tests/cluster/images failed:\n{proc.stderr[-6000:]}")
    return Images(_value(proc.stdout, "RUNTIME_IMAGE"), _value(proc.stdout, "OPERATOR_IMAGE"))


@pytest.fixture(scope="session")
def vortex_crd(cluster: Cluster) -> Iterator[None]:
    name = "vortexfunctions.vortex.dev"
    existed = cluster.kubectl("get", "crd", name, check=False).returncode == 0
    # Server-side apply: the CRD is larger than kubectl's last-applied annotation allows.
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    yield
    if not existed:
        cluster.kubectl("delete", "crd", name, "--wait=false", check=False)


def node_address(cluster: Cluster) -> str:
    node = cluster.get_json("nodes")["items"][0]
    return next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")


@pytest.fixture(scope="session")
def node_minio(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    server = MinioServer(tmp_path_factory.mktemp("node-minio"), host=node_address(cluster))
    server.start()
    yield server
    server.stop()


class Process:
    """A child process with its output in a file; stopped by its own pid only."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT
        )
        log.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as a crash or an OOM kill would do."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.pid}/status").read_text()
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        return kb / 1024

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def wait_http(url: str, timeout: float, process: Process | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} not answering after {timeout}s")


@dataclass
class Stack:
    cluster: Cluster
    namespace: str
    minio: MinioServer
    images: Images
    bucket: str
    log_dir: Path
    operator: Process | None = None
    api: Process | None = None
    api_url: str = ""
    liveness_port: int = 0
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    # environment

    def minio_env(self) -> dict[str, str]:
        return self.minio.env(self.bucket)

    def operator_env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            **self.minio_env(),
            "VORTEX_OPERATOR_RUNTIME_IMAGE": self.images.runtime,
            "VORTEX_OPERATOR_DELETE_TIMEOUT_S": "8",
            **extra,
        }

    # processes

    def start_local_operator(self, **extra_env: str) -> Process:
        """The operator as kopf's development flow runs it: `kopf run` against the cluster."""
        if self.liveness_port == 0:
            self.liveness_port = free_port()
        argv = [
            str(VENV_BIN / "kopf"),
            "run",
            "--standalone",
            "--namespace",
            self.namespace,
            "--log-format=json",
            f"--liveness=http://127.0.0.1:{self.liveness_port}/healthz",
            "-m",
            "vortex_operator.handlers",
        ]
        self.operator = Process("operator", argv, self.operator_env(**extra_env), self.log_dir)
        self.operator.start()
        wait_http(f"http://127.0.0.1:{self.liveness_port}/healthz", 60, self.operator)
        return self.operator

    def start_pool(self, replicas: int = 2) -> None:
        """The shared pool as the chart runs it (`<fullname>-pool`): a Deployment of pool pods
        from the one pod-spec builder, and its Service; waits until every pod is Ready."""
        platform = Platform(
            image=self.images.runtime,
            minio_endpoint=self.minio.endpoint,
            minio_bucket=self.bucket,
            pull_policy="IfNotPresent",
        )
        spec = pool_pod_spec(
            platform,
            memory_budget_mb=256,
            isolates_per_function=8,
            prewarm_isolates=2,
            resources={
                "requests": {"cpu": "50m", "memory": "128Mi"},
                "limits": {"memory": "768Mi"},
            },
            drain_s=1,
            grace_s=10,
            secret=MINIO_SECRET,
        )
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": POOL_SERVICE, "labels": POOL_LABELS},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": POOL_LABELS},
                "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "template": {"metadata": {"labels": POOL_LABELS}, "spec": spec},
            },
        }
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": POOL_SERVICE, "labels": POOL_LABELS},
            "spec": {
                "selector": POOL_LABELS,
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            },
        }
        self.cluster.apply([deployment, service], namespace=self.namespace)
        self.kubectl("rollout", "status", f"deployment/{POOL_SERVICE}", "--timeout=120s")

    def pool_pods(self) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in POOL_LABELS.items())
        return list(
            self.cluster.get_json("pods", "-l", selector, namespace=self.namespace)["items"]
        )

    def start_api(self, minio_secret: str | None = MINIO_SECRET) -> Process:
        """The API; one-shot pods read MinIO keys from `minio_secret`, or without one from the
        function's own Secret `vf-<name>`."""
        port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            **self.minio_env(),
            "VORTEX_BACKEND": "kubernetes",
            "VORTEX_NAMESPACE": self.namespace,
            "VORTEX_PORT": str(port),
            "VORTEX_RUNTIME_IMAGE": self.images.runtime,
            "VORTEX_POOL_SERVICE": POOL_SERVICE,
        }
        if minio_secret:
            env["VORTEX_MINIO_SECRET_NAME"] = minio_secret
        self.api = Process("api", [sys.executable, "-m", "vortex_api"], env, self.log_dir)
        self.api.start()
        self.api_url = f"http://127.0.0.1:{port}"
        wait_http(f"{self.api_url}/health", 60, self.api)
        return self.api

    # functions

    def kubectl(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, namespace=self.namespace, **kwargs)

    def apply_function(self, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": "vortex.dev/v1alpha1",
            "kind": "VortexFunction",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }
        self.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(body))

    def apply_example(self, stem: str) -> str:
        path = EXAMPLES / f"{stem}.yaml"
        self.kubectl("apply", "-f", str(path))
        import yaml

        return str(yaml.safe_load(path.read_text())["metadata"]["name"])

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.kubectl("patch", "vf", name, "--type=merge", "-p", json.dumps({"spec": spec}))

    def function(self, name: str) -> dict[str, Any]:
        return dict(self.cluster.get_json("vf", name, namespace=self.namespace))

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        status = self.function(name).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == kind), None)

    def wait_condition(
        self,
        name: str,
        kind: str,
        status: str = "True",
        reason: str | None = None,
        timeout: float = 90,
        generation: int | Literal["current"] | None = None,
    ) -> dict[str, Any]:
        """Wait until condition KIND has STATUS (and REASON); with `generation`, only as observed
        for that spec generation, or for the function's current one (`"current"`)."""

        def check() -> dict[str, Any] | None:
            fn = self.function(name)
            want = fn["metadata"].get("generation") if generation == "current" else generation
            for cond in (fn.get("status") or {}).get("conditions") or []:
                if cond["type"] != kind or cond["status"] != status:
                    continue
                if reason is not None and cond.get("reason") != reason:
                    continue
                if want is not None and cond.get("observedGeneration") != want:
                    continue
                return fn
            return None

        try:
            return dict(
                self.cluster.wait_for(f"{name} {kind}={status}", check, timeout, interval=0.2)
            )
        except TimeoutError:
            raise TimeoutError(self.diagnose(name)) from None

    def wait_ready(self, name: str, timeout: float = 90) -> dict[str, Any]:
        """Ready for the spec as it is now: a Ready condition left from an earlier generation (the
        operator has not yet seen the latest change) does not count."""
        return self.wait_condition(name, "Ready", "True", timeout=timeout, generation="current")

    def pods(self, name: str, isolation: str | None = "warm") -> list[dict[str, Any]]:
        """The function's pods: warm ones, one-shot ones (isolation="pod"), or all (None)."""
        selector = f"vortex.dev/function={name}"
        if isolation:
            selector += f",vortex.dev/isolation={isolation}"
        items = self.cluster.get_json("pods", "-l", selector, namespace=self.namespace)["items"]
        return list(items)

    def running_ready_pods(self, name: str) -> list[dict[str, Any]]:
        def ready(pod: dict[str, Any]) -> bool:
            conds = (pod.get("status") or {}).get("conditions") or []
            return pod["status"].get("phase") == "Running" and any(
                c["type"] == "Ready" and c["status"] == "True" for c in conds
            )

        return [
            p for p in self.pods(name) if ready(p) and not p["metadata"].get("deletionTimestamp")
        ]

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        proc = self.kubectl("get", kind, name, "-o", "json", check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr:
                return None
            raise ClusterError(proc.stderr)
        return dict(json.loads(proc.stdout))

    def code_objects(self) -> list[str]:
        client = self.minio.client()
        if not client.bucket_exists(self.bucket):
            return []
        return sorted(o.object_name for o in client.list_objects(self.bucket, recursive=True))

    def execute(self, name: str, event: Any = None, timeout: float = 30) -> httpx.Response:
        kwargs: dict[str, Any] = {"timeout": timeout}
        if event is not None:
            kwargs["json"] = event
        return self.http.post(f"{self.api_url}/execute/{name}", **kwargs)

    def execute_until_ok(self, name: str, event: Any = None, timeout: float = 60) -> httpx.Response:
        deadline = time.monotonic() + timeout
        last: httpx.Response | None = None
        while time.monotonic() < deadline:
            last = self.execute(name, event)
            if last.status_code == 200:
                return last
            time.sleep(0.1)
        raise AssertionError(
            f"{name} never executed: {last and last.status_code} {last and last.text}"
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        items = self.cluster.get_json(
            "events",
            "--field-selector",
            f"involvedObject.kind=VortexFunction,involvedObject.name={name}",
            namespace=self.namespace,
        )["items"]
        return list(items)

    def diagnose(self, name: str) -> str:
        parts = [f"--- vf {name} ---"]
        with contextlib.suppress(Exception):
            parts.append(json.dumps(self.function(name).get("status"), indent=1))
        with contextlib.suppress(Exception):
            parts.append(self.kubectl("get", "all", "-o", "wide", check=False).stdout)
        if self.operator is not None:
            parts.append(f"--- operator log ---\n{self.operator.log_tail()}")
        return "\n".join(parts)

    # teardown

    def delete_all_functions(self, timeout: float = 120) -> None:
        self.kubectl(
            "delete",
            "vf",
            "--all",
            "--wait=true",
            f"--timeout={int(timeout)}s",
            check=False,
            timeout=timeout + 30,
        )

    def close(self) -> None:
        try:
            self.delete_all_functions()
            self.cluster.kubectl(
                "delete",
                "namespace",
                self.namespace,
                "--wait=true",
                "--timeout=120s",
                check=False,
                timeout=150,
            )
        finally:
            for proc in (self.api, self.operator):
                if proc is not None:
                    proc.stop()
            self.http.close()


def new_stack(
    cluster: Cluster,
    node_minio: MinioServer,
    vortex_images: Images,
    tmp_path_factory: pytest.TempPathFactory,
    prefix: str,
) -> Stack:
    namespace = cluster.create_namespace(prefix)
    bucket = f"vx-{uuid.uuid4().hex[:12]}"
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        MINIO_SECRET,
        f"--from-literal=MINIO_ACCESS_KEY={node_minio.access_key}",
        f"--from-literal=MINIO_SECRET_KEY={node_minio.secret_key}",
        namespace=namespace,
    )
    return Stack(
        cluster=cluster,
        namespace=namespace,
        minio=node_minio,
        images=vortex_images,
        bucket=bucket,
        log_dir=tmp_path_factory.mktemp(prefix),
    )


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster,
    vortex_crd: None,
    vortex_images: Images,
    node_minio: MinioServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A namespace with a local `kopf run` operator and a local API."""
    with running_stack(cluster, node_minio, vortex_images, tmp_path_factory, "vx-op") as s:
        yield s


@contextlib.contextmanager
def running_stack(
    cluster: Cluster,
    node_minio: MinioServer,
    vortex_images: Images,
    tmp_path_factory: pytest.TempPathFactory,
    prefix: str,
    namespace_labels: tuple[str, ...] = (),
    minio_secret: str | None = MINIO_SECRET,
) -> Iterator[Stack]:
    """`new_stack` with its namespace labelled, a local operator and the API running."""
    s = new_stack(cluster, node_minio, vortex_images, tmp_path_factory, prefix)
    try:
        for label in namespace_labels:
            cluster.kubectl("label", "namespace", s.namespace, label)
        s.start_local_operator()
        s.start_pool()
        s.start_api(minio_secret=minio_secret)
        yield s
    finally:
        s.close()


Measure = Callable[[str, float, str], None]


@pytest.fixture(scope="session")
def measurements(request: pytest.FixtureRequest) -> Iterator[dict[str, tuple[float, str]]]:
    """Figures tests measure; printed at the end of the session."""
    figures: dict[str, tuple[float, str]] = {}
    yield figures
    if figures:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"{k}: {v:.3f} {unit}" for k, (v, unit) in figures.items()]
        if reporter is not None:
            reporter.write_sep("-", "operator measurements")
            for line in lines:
                reporter.write_line(line)
        out = os.environ.get("VORTEX_MEASUREMENTS_FILE")
        if out:
            Path(out).write_text(json.dumps({k: v for k, (v, _) in figures.items()}, indent=1))
