"""Helpers of the end-to-end tests: the helm binary, chart rendering, the images of the working
tree, a release's pods and its API from the host, and a real Prometheus run on the host whose
scrape configuration is derived from the chart's own ServiceMonitors and PodMonitor (so the test
proves what they select, not a hand-written config).

Used by the tests under tests/e2e and by the cluster benchmark (bench/cluster_bench.py), which
installs the chart the way the tests do.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.cluster.fixtures import CLUSTER_SRC, IMAGES, REPO_ROOT, Cluster, state_dir

CHART = REPO_ROOT / "helm" / "vortex"
CRD = REPO_ROOT / "crds" / "vortexfunction.yaml"
DASHBOARD = CHART / "dashboards" / "vortex.json"
KUBE_VERSION = "1.33.0"
MONITOR_KINDS = ("ServiceMonitor", "PodMonitor")
INSTANCE = "app.kubernetes.io/instance"
IMAGES_SRC = Path(__file__).resolve().parent / "images"


class CommandError(RuntimeError):
    pass


def helm_path() -> Path:
    """The helm binary of the local cluster tooling, built on first use."""
    path = state_dir() / "bin" / "helm"
    if not path.exists():
        proc = subprocess.run(
            [str(CLUSTER_SRC / "build"), "helm"], capture_output=True, text=True, timeout=1800
        )
        if proc.returncode != 0 or not path.exists():
            raise CommandError(
                f"building helm failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
            )
    return path


def run(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO_ROOT
    )
    if check and proc.returncode != 0:
        raise CommandError(
            f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}"
            f"\n--- stderr ---\n{proc.stderr[-4000:]}"
        )
    return proc


@contextlib.contextmanager
def values_args(values: dict[str, Any] | None) -> Iterator[list[str]]:
    """`--values FILE` for these values (nothing when empty); the file is removed afterwards."""
    if not values:
        yield []
        return
    fd, path = tempfile.mkstemp(prefix="vortex-values-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(values, f)
        yield ["--values", path]
    finally:
        os.unlink(path)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def template(
    values: dict[str, Any] | None = None,
    *,
    release: str = "vortex",
    namespace: str = "vortex",
    extra: Iterable[str] = (),
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    with values_args(values) as args:
        return run(
            [
                str(helm_path()),
                "template",
                release,
                str(CHART),
                "--namespace",
                namespace,
                "--kube-version",
                KUBE_VERSION,
                *args,
                *extra,
            ],
            check=check,
        )


def render(values: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """The chart's objects for these values (`helm template`)."""
    text = template(values, **kwargs).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(
    objs: Iterable[dict[str, Any]], kind: str, name: str | None = None
) -> list[dict[str, Any]]:
    return [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def split_image(ref: str) -> dict[str, str]:
    repository, _, tag = ref.rpartition(":")
    assert repository, ref
    assert tag, ref
    assert "/" not in tag, ref
    return {"repository": repository, "tag": tag}


# values pointing the chart at an external S3 endpoint instead of the bundled MinIO
EXTERNAL_S3: dict[str, Any] = {
    "minio": {
        "enabled": False,
        "external": {
            "endpoint": "s3.example.com:443",
            "secure": True,
            "existingSecret": "s3-keys",
        },
    }
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- images --------------------------------------------------------------------------------------


def _refs(output: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Z_]+_IMAGE|IMAGE)=(\S+)$", output, re.M))


def _binary_image(cluster: Cluster, image: str, binary: str, context: Path) -> str:
    """The image `vortex-<image>` of `images/<image>/Dockerfile` around one binary of the
    cluster's bin dir, built in `context` and imported into containerd; its ref."""
    context.mkdir(parents=True, exist_ok=True)
    shutil.copy(IMAGES_SRC / image / "Dockerfile", context / "Dockerfile")
    source = cluster.bin_dir / binary
    try:
        os.link(source, context / binary)
    except OSError:
        shutil.copy(source, context / binary)
    return cluster.build_image(f"vortex-{image}", context / "Dockerfile", context)


def build_images(cluster: Cluster, workdir: Path) -> dict[str, str]:
    """Runtime and control-plane images of the current tree, MinIO and NATS (their build
    contexts under `workdir`), built and imported into containerd; their refs by component."""
    proc = subprocess.run([str(IMAGES)], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise CommandError(f"tests/cluster/images failed:\n{proc.stderr[-6000:]}")
    refs = _refs(proc.stdout)
    return {
        "runtime": refs["RUNTIME_IMAGE"],
        "operator": refs["OPERATOR_IMAGE"],
        "minio": _binary_image(cluster, "minio", "minio", workdir / "minio"),
        "nats": _binary_image(cluster, "nats", "nats-server", workdir / "nats"),
    }


# -- dashboard -----------------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_queries(board: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel, rows included."""
    board = board or dashboard()
    out: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append((panel["title"], target["expr"]))
            walk(panel.get("panels", []))

    walk(board["panels"])
    return out


def resolve_variables(expr: str, rate_interval: str = "1m") -> str:
    """A dashboard query as Grafana sends it with every variable at its default (All)."""
    expr = expr.replace("$__rate_interval", rate_interval).replace(
        "${__rate_interval}", rate_interval
    )
    expr = re.sub(r"\$\{?function\}?", ".*", expr)
    assert "$" not in expr, f"unresolved variable in {expr!r}"
    return expr


_SERIES = re.compile(r"\b(vortex_[a-z0-9_]+)\b")


def metric_names(expr: str) -> set[str]:
    return set(_SERIES.findall(expr))


# -- Prometheus ----------------------------------------------------------------------------------


def _sanitize(label: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def _relabelings(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{_snake(k): v for k, v in item.items()} for item in items or []]


def _namespaces(monitor: dict[str, Any]) -> dict[str, Any]:
    selector = monitor["spec"].get("namespaceSelector") or {}
    if selector.get("any"):
        return {}
    names = selector.get("matchNames") or [monitor["metadata"]["namespace"]]
    return {"namespaces": {"names": list(names)}}


def _keep_labels(prefix: str, match: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "source_labels": [
                f"{prefix}_label_{_sanitize(k)}",
                f"{prefix}_labelpresent_{_sanitize(k)}",
            ],
            "regex": f"({re.escape(v)});true",
            "action": "keep",
        }
        for k, v in sorted(match.items())
    ]


def scrape_configs(monitors: Iterable[dict[str, Any]], kubeconfig: Path) -> list[dict[str, Any]]:
    """Prometheus scrape jobs equivalent to these ServiceMonitors/PodMonitors, the way
    prometheus-operator generates them (kubernetes_sd, keep by labels and port name)."""
    jobs: list[dict[str, Any]] = []
    for mon in monitors:
        meta, spec = mon["metadata"], mon["spec"]
        match = spec["selector"]["matchLabels"]
        assert not spec["selector"].get("matchExpressions"), "matchExpressions are not translated"
        sd = {"kubeconfig_file": str(kubeconfig), **_namespaces(mon)}
        if mon["kind"] == "ServiceMonitor":
            endpoints, role, prefix = spec["endpoints"], "endpoints", "__meta_kubernetes_service"
        else:
            endpoints, role, prefix = spec["podMetricsEndpoints"], "pod", "__meta_kubernetes_pod"
        for index, ep in enumerate(endpoints):
            relabel = _keep_labels(prefix, match)
            if role == "endpoints":
                relabel += [
                    {
                        "source_labels": ["__meta_kubernetes_endpoint_port_name"],
                        "regex": ep["port"],
                        "action": "keep",
                    },
                    {
                        "source_labels": ["__meta_kubernetes_service_name"],
                        "target_label": "service",
                    },
                    {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job"},
                ]
            else:
                relabel += [
                    {
                        "source_labels": ["__meta_kubernetes_pod_phase"],
                        "regex": "(Failed|Succeeded)",
                        "action": "drop",
                    },
                    {
                        "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                        "regex": ep["port"],
                        "action": "keep",
                    },
                    {"target_label": "job", "replacement": f"{meta['namespace']}/{meta['name']}"},
                ]
            relabel += [
                {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                {
                    "source_labels": ["__meta_kubernetes_pod_container_name"],
                    "target_label": "container",
                },
                {"target_label": "endpoint", "replacement": ep["port"]},
                *_relabelings(ep.get("relabelings", [])),
            ]
            jobs.append(
                {
                    "job_name": f"{mon['kind'][0].lower()}{mon['kind'][1:]}/{meta['namespace']}/{meta['name']}/{index}",
                    "honor_labels": bool(ep.get("honorLabels", False)),
                    "metrics_path": ep.get("path", "/metrics"),
                    "scrape_interval": ep.get("interval", "30s"),
                    "scrape_timeout": ep.get("scrapeTimeout", "10s"),
                    "kubernetes_sd_configs": [{"role": role, **sd}],
                    "relabel_configs": relabel,
                }
            )
    return jobs


def _label_meta(prefix: str, kind: str, values: dict[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (values or {}).items():
        out[f"{prefix}_{kind}_{_sanitize(key)}"] = str(value)
        out[f"{prefix}_{kind}present_{_sanitize(key)}"] = "true"
    return out


def _object_meta(prefix: str, obj: dict[str, Any]) -> dict[str, str]:
    meta = obj["metadata"]
    return {
        **_label_meta(prefix, "label", meta.get("labels")),
        **_label_meta(prefix, "annotation", meta.get("annotations")),
    }


def _pod_meta(pod: dict[str, Any]) -> dict[str, str]:
    meta, status = pod["metadata"], pod.get("status", {})
    ready = any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
    )
    out = {
        **_object_meta("__meta_kubernetes_pod", pod),
        "__meta_kubernetes_namespace": meta["namespace"],
        "__meta_kubernetes_pod_name": meta["name"],
        "__meta_kubernetes_pod_ip": status.get("podIP", ""),
        "__meta_kubernetes_pod_ready": str(ready).lower(),
        "__meta_kubernetes_pod_phase": status.get("phase", ""),
        "__meta_kubernetes_pod_node_name": pod.get("spec", {}).get("nodeName", ""),
        "__meta_kubernetes_pod_host_ip": status.get("hostIP", ""),
        "__meta_kubernetes_pod_uid": meta.get("uid", ""),
    }
    for owner in meta.get("ownerReferences") or []:
        if owner.get("controller"):
            out["__meta_kubernetes_pod_controller_kind"] = owner["kind"]
            out["__meta_kubernetes_pod_controller_name"] = owner["name"]
    return out


def _container_meta(container: dict[str, Any], port: dict[str, Any] | None, init: bool) -> dict:
    out = {
        "__meta_kubernetes_pod_container_name": container["name"],
        "__meta_kubernetes_pod_container_image": container.get("image", ""),
        "__meta_kubernetes_pod_container_init": str(init).lower(),
    }
    if port is not None:
        out["__meta_kubernetes_pod_container_port_name"] = port.get("name", "")
        out["__meta_kubernetes_pod_container_port_number"] = str(port["containerPort"])
        out["__meta_kubernetes_pod_container_port_protocol"] = port.get("protocol", "TCP")
    return out


def pod_targets(pods: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """What kubernetes_sd role `pod` finds: a target per container port (per container without
    ports), with Prometheus's meta labels."""
    groups: list[dict[str, Any]] = []
    for pod in pods:
        ip = pod.get("status", {}).get("podIP")
        if not ip:
            continue
        base = _pod_meta(pod)
        spec = pod.get("spec", {})
        containers = [(c, False) for c in spec.get("containers", [])]
        containers += [(c, True) for c in spec.get("initContainers", [])]
        for container, init in containers:
            ports = container.get("ports") or [None]
            for port in ports:
                address = ip if port is None else f"{ip}:{port['containerPort']}"
                labels = {**base, **_container_meta(container, port, init)}
                groups.append({"targets": [address], "labels": labels})
    return groups


def endpoints_targets(
    endpoints: Iterable[dict[str, Any]],
    services: Iterable[dict[str, Any]],
    pods: Iterable[dict[str, Any]],
) -> list[dict[str, Any]]:
    """What kubernetes_sd role `endpoints` finds: a target per address and port of every
    Endpoints object, with its Service's and its Pod's meta labels."""
    by_service = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in services}
    by_pod = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
    groups: list[dict[str, Any]] = []
    for eps in endpoints:
        meta = eps["metadata"]
        namespace = meta["namespace"]
        base = {
            **_object_meta("__meta_kubernetes_endpoints", eps),
            "__meta_kubernetes_namespace": namespace,
            "__meta_kubernetes_endpoints_name": meta["name"],
        }
        service = by_service.get((namespace, meta["name"]))
        if service is not None:
            base["__meta_kubernetes_service_name"] = meta["name"]
            base.update(_object_meta("__meta_kubernetes_service", service))
        for subset in eps.get("subsets") or []:
            addresses = [(a, True) for a in subset.get("addresses") or []]
            addresses += [(a, False) for a in subset.get("notReadyAddresses") or []]
            for port in subset.get("ports") or []:
                for address, ready in addresses:
                    labels = {
                        **base,
                        "__meta_kubernetes_endpoint_port_name": port.get("name", ""),
                        "__meta_kubernetes_endpoint_port_protocol": port.get("protocol", "TCP"),
                        "__meta_kubernetes_endpoint_ready": str(ready).lower(),
                    }
                    if address.get("nodeName"):
                        labels["__meta_kubernetes_endpoint_node_name"] = address["nodeName"]
                    ref = address.get("targetRef") or {}
                    if ref:
                        labels["__meta_kubernetes_endpoint_address_target_kind"] = ref["kind"]
                        labels["__meta_kubernetes_endpoint_address_target_name"] = ref["name"]
                    pod = (
                        by_pod.get((namespace, ref.get("name")))
                        if ref.get("kind") == "Pod"
                        else None
                    )
                    if pod is not None:
                        labels.update(_pod_meta(pod))
                        for container in pod["spec"].get("containers", []):
                            for cport in container.get("ports") or []:
                                if cport["containerPort"] == port["port"]:
                                    labels.update(_container_meta(container, cport, False))
                    target = f"{address['ip']}:{port['port']}"
                    groups.append({"targets": [target], "labels": labels})
    return groups


class KubernetesDiscovery:
    """The targets of `kubernetes_sd_configs` (roles `endpoints` and `pod`), read with kubectl
    every `interval` seconds and written as `file_sd` files that Prometheus watches."""

    def __init__(self, directory: Path, jobs: list[dict[str, Any]], interval: float = 2.0):
        self.directory = directory
        self.jobs = jobs
        self.interval = interval
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _file(self, job: int, sd: int) -> Path:
        return self.directory / f"job{job}-sd{sd}.json"

    def file_sd_jobs(self) -> list[dict[str, Any]]:
        """The jobs with each kubernetes_sd config replaced by the file it is served through."""
        out = []
        for j, job in enumerate(self.jobs):
            job = dict(job)
            sds = job.pop("kubernetes_sd_configs", None) or []
            if sds:
                files = [str(self._file(j, i)) for i in range(len(sds))]
                job["file_sd_configs"] = [{"files": files, "refresh_interval": "5s"}]
            out.append(job)
        return out

    def _get(self, kubeconfig: str, kind: str, namespaces: list[str] | None) -> list[dict]:
        kubectl = [str(state_dir() / "bin" / "kubectl"), "--kubeconfig", kubeconfig, "get", kind]
        scopes = [["-n", n] for n in namespaces] if namespaces else [["--all-namespaces"]]
        items: list[dict[str, Any]] = []
        for scope in scopes:
            proc = run([*kubectl, *scope, "-o", "json"], timeout=30)
            items += json.loads(proc.stdout)["items"]
        return items

    def refresh(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        cache: dict[tuple[str, str, tuple[str, ...]], list[dict[str, Any]]] = {}

        def get(kubeconfig: str, kind: str, namespaces: list[str] | None) -> list[dict]:
            key = (kubeconfig, kind, tuple(namespaces or ()))
            if key not in cache:
                cache[key] = self._get(kubeconfig, kind, namespaces)
            return cache[key]

        for j, job in enumerate(self.jobs):
            for i, sd in enumerate(job.get("kubernetes_sd_configs") or []):
                kubeconfig = sd["kubeconfig_file"]
                namespaces = (sd.get("namespaces") or {}).get("names")
                pods = get(kubeconfig, "pods", namespaces)
                if sd["role"] == "pod":
                    groups = pod_targets(pods)
                elif sd["role"] == "endpoints":
                    groups = endpoints_targets(
                        get(kubeconfig, "endpoints", namespaces),
                        get(kubeconfig, "services", namespaces),
                        pods,
                    )
                else:
                    raise CommandError(f"kubernetes_sd role {sd['role']!r} is not emulated")
                path = self._file(j, i)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(groups))
                os.replace(tmp, path)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except (CommandError, subprocess.TimeoutExpired, ValueError, KeyError) as exc:
                self.errors.append(str(exc))

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="kubernetes-sd", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=40)
            self._thread = None


@dataclass
class Prometheus:
    """Debian's prometheus on the host, scraping pod IPs directly.

    Debian builds prometheus without Kubernetes service discovery, so jobs with
    `kubernetes_sd_configs` get their targets from a `KubernetesDiscovery` through `file_sd`,
    with the same `__meta_kubernetes_*` labels; the jobs' relabelings apply unchanged.
    """

    workdir: Path
    jobs: list[dict[str, Any]]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    discovery: KubernetesDiscovery | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise CommandError("prometheus is not installed (Debian package `prometheus`)")
        config = {
            "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
            "scrape_configs": self.jobs,
        }
        if any(job.get("kubernetes_sd_configs") for job in self.jobs):
            self.discovery = KubernetesDiscovery(self.workdir / "sd", self.jobs)
            config["scrape_configs"] = self.discovery.file_sd_jobs()
            self.discovery.start()
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        # the child keeps its own copy of the descriptor
        with open(self.workdir / "prometheus.log", "wb") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=2h",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise CommandError(f"prometheus exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise CommandError(f"prometheus not ready in 60s:\n{self.log()}")

    def log(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.discovery is not None:
            self.discovery.stop()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def query(self, expr: str) -> list[dict[str, Any]]:
        resp = httpx.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10)
        body = resp.json()
        if body.get("status") != "success":
            raise CommandError(f"query {expr!r} failed: {body}")
        return list(body["data"]["result"])

    def targets(self) -> list[dict[str, Any]]:
        body = httpx.get(
            self.url + "/api/v1/targets", params={"state": "active"}, timeout=10
        ).json()
        return list(body["data"]["activeTargets"])


# -- the API from the host -----------------------------------------------------------------------


@dataclass
class Api:
    """The API Service by its ClusterIP (kube-proxy routes it from the host too)."""

    base: str
    admin_key: str
    invoke_key: str

    def execute(
        self,
        name: str,
        event: Any = None,
        *,
        key: str | bool | None = True,
        timeout: float = 40,
        client: httpx.Client | None = None,
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        token = self.admin_key if key is True else key
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = json.dumps(event).encode() if event is not None else b""
        url = f"{self.base}/execute/{urllib.parse.quote(name)}"
        if client is not None:
            return client.post(url, content=body, headers=headers, timeout=timeout)
        # A fresh connection per call: what one user's curl does.
        return httpx.post(url, content=body, headers=headers, timeout=timeout)

    def answers(self) -> bool:
        """Whether `/health` answers 200 (kube-proxy may not route a new Service yet)."""
        try:
            return httpx.get(f"{self.base}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def deploy(self, body: dict[str, Any], key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.post(f"{self.base}/deploy", json=body, headers=headers, timeout=30)


# -- a release on the cluster -------------------------------------------------------------------


def pod_ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )


def metric_sum(ip: str, series: str, port: int = 8080) -> float:
    """The samples of `series` (a metric name, or a name with its first labels written out, as
    in `name{kind="pod"}`) on a pod's own /metrics, summed."""
    total = 0.0
    for line in httpx.get(f"http://{ip}:{port}/metrics", timeout=10).text.splitlines():
        if line.startswith(series) and line[len(series) : len(series) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def api_metric(cluster: Cluster, namespace: str, release: str, series: str) -> float:
    """A metric of the API (as in `metric_sum`) summed over its pods, each one's own /metrics."""
    selector = f"{INSTANCE}={release},app.kubernetes.io/component=api"
    return sum(metric_sum(p["status"]["podIP"], series) for p in pods(cluster, namespace, selector))


def pods(cluster: Cluster, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
    args = ["pods", *(["-l", selector] if selector else [])]
    return list(cluster.get_json(*args, namespace=namespace)["items"])


def describe(cluster: Cluster, namespace: str) -> str:
    """The namespace's pods and its latest events, for a timeout's message."""
    listing = cluster.kubectl("get", "pods", "-o", "wide", namespace=namespace, check=False)
    events = cluster.kubectl(
        "get", "events", "--sort-by=.lastTimestamp", namespace=namespace, check=False
    ).stdout
    return f"{listing.stdout}\n{events[-4000:]}"


def release_settled(cluster: Cluster, namespace: str, release: str) -> bool:
    """Every Deployment and StatefulSet (NATS) of the release rolled out: its pods all new, all
    Ready, none extra."""
    workloads = cluster.get_json(
        "deployments,statefulsets", "-l", f"{INSTANCE}={release}", namespace=namespace
    )
    want = 0
    for d in workloads["items"]:
        status, replicas = d.get("status", {}), d["spec"]["replicas"]
        if status.get("observedGeneration", 0) < d["metadata"]["generation"]:
            return False
        if status.get("updatedReplicas", 0) != replicas:
            return False
        if status.get("readyReplicas", 0) != replicas or status.get("replicas", 0) != replicas:
            return False
        want += replicas
    found = pods(cluster, namespace, f"{INSTANCE}={release}")
    return bool(workloads["items"]) and len(found) == want and all(map(pod_ready, found))


def wait_settled(cluster: Cluster, namespace: str, release: str, what: str, timeout: float) -> None:
    """Wait for `release_settled`; a timeout carries the namespace's pods and events."""
    try:
        cluster.wait_for(
            what, lambda: release_settled(cluster, namespace, release), timeout, interval=0.5
        )
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{describe(cluster, namespace)}") from None


def secret_value(cluster: Cluster, namespace: str, name: str, key: str) -> str:
    proc = cluster.kubectl(
        "get", "secret", name, "-o", f"jsonpath={{.data.{key}}}", namespace=namespace
    )
    return base64.b64decode(proc.stdout).decode()


def api_from_notes(cluster: Cluster, namespace: str, notes: str) -> Api:
    """The API Service and its keys, found the way NOTES.txt tells a user to."""
    forward = re.search(r"port-forward service/(\S+) \d+:(\d+)", notes)
    assert forward, f"NOTES.txt names no Service to reach the API:\n{notes}"
    service, port = forward.group(1), int(forward.group(2))
    secret = re.search(r"get secret (\S+) -o jsonpath='\{\.data\.admin-key\}' \| base64 -d", notes)
    assert secret, f"NOTES.txt does not say where the admin key is:\n{notes}"
    admin = secret_value(cluster, namespace, secret.group(1), "admin-key")
    invoke = secret_value(cluster, namespace, secret.group(1), "invoke-keys").split(",")[0]
    assert len(admin) >= 32, "the generated admin key is short"
    assert invoke, "no invoke key was generated"
    assert invoke != admin
    ip = cluster.get_json("service", service, namespace=namespace)["spec"]["clusterIP"]
    api = Api(base=f"http://{ip}:{port}", admin_key=admin, invoke_key=invoke)
    # Ready pods are in the Service's EndpointSlice before kube-proxy has programmed the route
    # (until then the ClusterIP refuses connections): wait for the route, as a client would retry.
    cluster.wait_for(
        f"the Service {service} routes to the API", api.answers, timeout=30, interval=0.2
    )
    return api


@dataclass
class Installed:
    """A release of the chart on the cluster, and its API from the host."""

    cluster: Cluster
    name: str
    namespace: str
    api: Api


@contextlib.contextmanager
def installed(
    cluster: Cluster, helm: Any, values: dict[str, Any], prefix: str, timeout: float = 240
) -> Iterator[Installed]:
    """The chart installed with `values` in a new namespace `<prefix>-...`, every pod Ready;
    uninstalled and the namespace deleted after."""
    namespace = cluster.create_namespace(prefix)
    name = f"vortex-{uuid.uuid4().hex[:6]}"
    try:
        # Helm never upgrades a CRD it finds: bring it up to date first.
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
        out = helm("install", name, str(CHART), "--namespace", namespace, values=values)
        wait_settled(cluster, namespace, name, "every pod of the release Ready", timeout=timeout)
        yield Installed(cluster, name, namespace, api_from_notes(cluster, namespace, out.stdout))
    finally:
        helm.uninstall(name, namespace)
        cluster.delete_namespace(namespace, wait=False)


def drop_function_finalizers(cluster: Any, namespace: str) -> None:
    """Clear the finalizers of the namespace's VortexFunctions: functions whose operator is gone
    would keep the namespace (and the CRD) from going."""
    proc = cluster.kubectl("get", "vf", "-o", "name", namespace=namespace, check=False)
    for ref in proc.stdout.split():
        cluster.kubectl(
            "patch",
            ref,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
            namespace=namespace,
            check=False,
        )
