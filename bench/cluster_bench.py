"""Cluster benchmark: `/execute` through the API Service of the chart on the real local cluster.

The images are built from the working tree and the chart installed in a fresh namespace exactly
as the end-to-end tests do (tests/e2e: `kit.build_images`, `release_values`, `kit.CHART`); the API
is reached by its Service's ClusterIP with the invoke key from the chart's Secret, found the way
NOTES.txt tells a user to. Two trivial functions are deployed through `POST /deploy`: one
`isolation: shared` (the pool) and one `isolation: warm` with two replicas, each with a
per-function cap above the load. wrk drives each at 16 connections, in rounds that alternate with
workerd serving the same trivial function on the same machine, so that load from elsewhere falls
on all three alike; the figures are printed beside Fission's published warm figures. Then the
async figures of `bench.async_bench` for the shared function, through the same Service: the
chart's NATS JetStream as the queue, consumed by the API pods (their succeeded attempts summed
over each pod's own /metrics).

Throughput counts 2xx answers only, and every figure carries its non-2xx count. The release is
uninstalled and the namespace deleted at the end, whatever happened; the cluster stays up (it is
brought up first if it is not, as `make test` does). Run by `python -m bench cluster` (and `all`).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import anchors, async_bench
from tests.cluster.fixtures import Cluster, cluster_up
from tests.e2e import kit
from tests.e2e.conftest import Helm, release_values

CONNECTIONS = 16
ROUNDS = 3
WARMUP_S = 2
SETTLE_TIMEOUT_S = 300.0
FUNCTION_TIMEOUT_S = 180.0

SHARED = "bench-shared"
WARM = "bench-warm"
WARM_REPLICAS = 2
# Each API process caps a shared function at its `concurrency`, and a warm one at `concurrency`
# times its ready replicas (README, "concurrency and replicas"): both caps are 2x the load, so
# that even all connections on one API replica are never turned away by the function's cap.
FUNCTIONS: dict[str, dict[str, Any]] = {
    SHARED: {"isolation": "shared", "concurrency": 2 * CONNECTIONS},
    WARM: {"isolation": "warm", "replicas": WARM_REPLICAS, "concurrency": CONNECTIONS},
}


@dataclass(frozen=True)
class Published:
    """Figures someone else published, with where they were measured."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    machine: str


FISSION_WARM = Published(3500.0, 4.5, 22.0, "an 8-CPU laptop")


@dataclass
class Release:
    """The chart installed for the benchmark, and its API from the host."""

    cluster: Cluster
    name: str
    namespace: str
    api: kit.Api
    install_s: float
    pods: int
    api_replicas: int
    max_workers: int


def _cluster() -> Cluster:
    if os.geteuid() != 0:
        raise RuntimeError("the local Kubernetes cluster needs root: run `make bench` as root")
    return Cluster(kubeconfig=cluster_up())


def _api_deployment(cluster: Cluster, namespace: str, release: str) -> dict[str, Any]:
    selector = f"{kit.INSTANCE}={release},app.kubernetes.io/component=api"
    [deployment] = cluster.get_json("deployments", "-l", selector, namespace=namespace)["items"]
    return dict(deployment)


def _env(deployment: dict[str, Any], name: str) -> str:
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for var in container.get("env", []):
            if var["name"] == name:
                return str(var["value"])
    raise KeyError(f"{name} is not set on {deployment['metadata']['name']}")


@contextmanager
def installed(cluster: Cluster, images: dict[str, str]) -> Iterator[Release]:
    """The chart in a fresh namespace, every pod Ready; uninstalled and the namespace deleted
    afterwards, whatever happened."""
    helm = Helm(cluster)
    namespace = cluster.create_namespace("vx-bench")
    name = f"vortex-bench-{uuid.uuid4().hex[:6]}"
    try:
        # Helm installs a chart's CRD only when there is none: bring an older one up to date.
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(kit.CRD))
        started = time.monotonic()
        notes = helm(
            "install",
            name,
            str(kit.CHART),
            "--namespace",
            namespace,
            values=release_values(images),
        ).stdout
        kit.wait_settled(
            cluster, namespace, name, "every pod of the release Ready", SETTLE_TIMEOUT_S
        )
        install_s = time.monotonic() - started
        api = kit.api_from_notes(cluster, namespace, notes)
        deployment = _api_deployment(cluster, namespace, name)
        yield Release(
            cluster,
            name,
            namespace,
            api,
            install_s,
            len(kit.pods(cluster, namespace)),
            int(deployment["spec"]["replicas"]),
            int(_env(deployment, "VORTEX_MAX_WORKERS")),
        )
    finally:
        try:
            helm.uninstall(name, namespace)
        finally:
            cluster.delete_namespace(namespace, wait=False)


def _answers_42(api: kit.Api, name: str) -> bool:
    try:
        reply = api.execute(name, key=api.invoke_key, timeout=10)
    except httpx.HTTPError:
        return False
    return reply.status_code == 200 and reply.json().get("output") == 42


def _ready_replicas(cluster: Cluster, namespace: str, name: str) -> int:
    status = cluster.get_json("vortexfunction", name, namespace=namespace).get("status", {})
    return int(status.get("readyReplicas") or 0)


def deploy_functions(release: Release) -> None:
    """Deploy the trivial functions through the API and wait until each answers 200 (and the
    warm one has all its replicas Ready, so that its cap is counted from all of them)."""
    api, cluster, namespace = release.api, release.cluster, release.namespace
    for name, settings in FUNCTIONS.items():
        reply = api.deploy({"name": name, "code": anchors.TRIVIAL_BODY, **settings})
        if reply.status_code != 201:
            raise RuntimeError(f"deploy of {name} answered {reply.status_code}: {reply.text}")
    for name in FUNCTIONS:
        cluster.wait_for(
            f"{name} to answer 200", lambda n=name: _answers_42(api, n), FUNCTION_TIMEOUT_S, 1
        )
    cluster.wait_for(
        f"{WARM_REPLICAS} ready replicas of {WARM}",
        lambda: _ready_replicas(cluster, namespace, WARM) >= WARM_REPLICAS,
        FUNCTION_TIMEOUT_S,
        1,
    )


def _median_of(runs: list[anchors.WrkResult]) -> anchors.WrkResult:
    """The rounds of one target: median throughput and percentiles, counts summed."""
    return anchors.WrkResult(
        statistics.median(r.requests_per_s for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.requests for r in runs),
        sum(r.non2xx for r in runs),
        sum(r.socket_errors for r in runs),
    )


def measure(
    urls: dict[str, str], headers: dict[str, str], duration_s: int
) -> dict[str, anchors.WrkResult]:
    """wrk at CONNECTIONS against each URL in turn, ROUNDS times, after a short warm-up."""
    for url in urls.values():
        anchors.wrk(url, connections=CONNECTIONS, duration_s=WARMUP_S, headers=headers)
    runs: dict[str, list[anchors.WrkResult]] = {name: [] for name in urls}
    for _ in range(ROUNDS):
        for name, url in urls.items():
            runs[name].append(
                anchors.wrk(url, connections=CONNECTIONS, duration_s=duration_s, headers=headers)
            )
    return {name: _median_of(results) for name, results in runs.items()}


def _against_workerd(label: str, ours: anchors.WrkResult, theirs: anchors.WrkResult) -> str:
    return (
        f"  {label}/workerd: throughput {ours.requests_per_s / theirs.requests_per_s:.2f}x,"
        f" p99 {ours.p99_ms / theirs.p99_ms:.2f}x"
        f"   (non-2xx: {label} {ours.non2xx}, workerd {theirs.non2xx})"
    )


def _against_published(label: str, ours: anchors.WrkResult, theirs: Published) -> str:
    return (
        f"  {label}/Fission: throughput {ours.requests_per_s / theirs.requests_per_s:.2f}x,"
        f" p50 {ours.p50_ms / theirs.p50_ms:.2f}x, p99 {ours.p99_ms / theirs.p99_ms:.2f}x"
        f"   (non-2xx: {label} {ours.non2xx})"
    )


def main(duration_s: int = 10) -> None:
    print("== cluster benchmark (the chart on the local cluster) ==")
    started = time.monotonic()
    cluster = _cluster()
    up_s = time.monotonic() - started
    with tempfile.TemporaryDirectory(prefix="vortex-bench-images-") as tmp:
        images = kit.build_images(cluster, Path(tmp))
    print(
        f"cluster up: {up_s:.0f} s; images of the working tree in containerd:"
        f" {time.monotonic() - started - up_s:.0f} s"
    )
    with installed(cluster, images) as release:
        print(
            f"install to every pod Ready: {release.install_s:.1f} s ({release.pods} pods,"
            f" release {release.name} in namespace {release.namespace})"
        )
        print(
            f"API Service {release.api.base}: {release.api_replicas} replicas,"
            f" VORTEX_MAX_WORKERS={release.max_workers} each"
        )
        if release.max_workers < CONNECTIONS:
            raise RuntimeError(
                f"the bulkhead ({release.max_workers}) is below the load ({CONNECTIONS}):"
                " its 503s would be counted as the function's"
            )
        deploy_started = time.monotonic()
        deploy_functions(release)
        caps = {
            SHARED: FUNCTIONS[SHARED]["concurrency"],
            WARM: FUNCTIONS[WARM]["concurrency"] * WARM_REPLICAS,
        }
        print(
            f"functions answering 200 {time.monotonic() - deploy_started:.1f} s after deploy:"
            f" {SHARED} (shared, cap {caps[SHARED]} per API process),"
            f" {WARM} (warm, {WARM_REPLICAS} replicas, cap {caps[WARM]} per API process)"
        )
        headers = {"Authorization": f"Bearer {release.api.invoke_key}"}
        with anchors.workerd() as workerd_url:
            results = measure(
                {
                    "shared": f"{release.api.base}/execute/{SHARED}",
                    "warm": f"{release.api.base}/execute/{WARM}",
                    "workerd": workerd_url + "/",
                },
                headers,
                duration_s,
            )
        queued = async_bench.measure(
            release.api.base,
            SHARED,
            lambda: kit.api_metric(
                cluster, release.namespace, release.name, async_bench.succeeded_series(SHARED)
            ),
            duration_s,
            headers,
        )
    print(
        f"/execute through the API Service under wrk, {CONNECTIONS} connections, {ROUNDS} rounds"
        f" of {duration_s}s alternating with workerd (medians of the rounds, counts summed):"
    )
    print(f"  shared pool: {results['shared'].line()}")
    print(f"  warm:        {results['warm'].line()}")
    print(f"  workerd:     {results['workerd'].line()}")
    print(_against_workerd("shared", results["shared"], results["workerd"]))
    print(_against_workerd("warm", results["warm"], results["workerd"]))
    fission = FISSION_WARM
    print(
        f"Fission's published warm figures: about {fission.requests_per_s:,.0f} req/s,"
        f" p50 {fission.p50_ms:g} ms, p99 {fission.p99_ms:g} ms on {fission.machine}"
        f" (this machine: {os.cpu_count()} CPUs, the cluster, the load and workerd on them)"
    )
    print(_against_published("shared", results["shared"], fission))
    print(_against_published("warm", results["warm"], fission))
    print(
        f"async on the cluster ({SHARED}, NATS JetStream, consumed by"
        f" {release.api_replicas} API pods):"
    )
    for line in queued.lines():
        print(f"  {line}")
    print(
        f"cluster benchmark: {time.monotonic() - started:.0f} s in all; release uninstalled,"
        f" namespace {release.namespace} deleted in the background"
    )
