"""Pods, Services, DNS and resource limits on the real local cluster."""

from __future__ import annotations

import urllib.request

import pytest

from tests.cluster.fixtures import Cluster

from .conftest import HTTPD_MARKER

pytestmark = pytest.mark.cluster


def pod_manifest(name: str, image: str, command: list[str] | None = None, **spec) -> dict:
    container = {"name": "main", "image": image, "imagePullPolicy": "Never"}
    if command:
        container["command"] = command
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 1, **spec},
    }


@pytest.fixture(scope="module")
def web(cluster: Cluster, httpd_image: str):
    """A pod from a locally built image serving HTTP, and a Service in front of it."""
    ns = cluster.create_namespace("vx-web")
    cluster.apply(
        [
            pod_manifest(
                "web",
                httpd_image,
                container={
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                },
            ),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
            },
        ],
        namespace=ns,
    )
    pod = cluster.wait_pod_ready("web", ns, timeout=120)

    def endpoint_ready() -> bool:
        slices = cluster.get_json(
            "endpointslices", "-l", "kubernetes.io/service-name=web", namespace=ns
        )
        return any(
            ep.get("conditions", {}).get("ready") and pod["status"]["podIP"] in ep["addresses"]
            for s in slices["items"]
            for ep in s.get("endpoints") or []
        )

    cluster.wait_for("a ready endpoint for Service web", endpoint_ready, timeout=60)
    svc_ip = cluster.get_json("service", "web", namespace=ns)["spec"]["clusterIP"]

    def service_answers() -> bool:
        # kube-proxy programs the Service's rules a moment after the endpoint is ready
        try:
            with urllib.request.urlopen(f"http://{svc_ip}/", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    cluster.wait_for("kube-proxy rules for Service web", service_answers, timeout=60)
    yield ns, pod
    cluster.delete_namespace(ns)


def test_node_is_ready_with_built_version(cluster: Cluster):
    node = cluster.get_json("node", "vortex-node")
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.33.13"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://2.1.")
    version = cluster.kubectl("version", "-o", "json").stdout
    assert '"gitVersion": "v1.33.13"' in version


def test_pod_answers_http_on_its_pod_ip_from_host(cluster: Cluster, web):
    _, pod = web
    ip = pod["status"]["podIP"]
    assert ip.startswith("10.202.0.")
    with urllib.request.urlopen(f"http://{ip}:8080/", timeout=10) as resp:
        assert resp.status == 200
        assert HTTPD_MARKER in resp.read().decode()


def test_pod_reaches_service_by_dns_name(cluster: Cluster, web, base_image: str):
    ns, _ = web
    script = (
        "import socket, urllib.request\n"
        f"for host in ('web', 'web.{ns}', 'web.{ns}.svc.cluster.local'):\n"
        "    print(host, socket.gethostbyname(host), flush=True)\n"
        "    body = urllib.request.urlopen(f'http://{host}/', timeout=10).read().decode()\n"
        "    print(host, body.strip(), flush=True)\n"
        "print('kubernetes', socket.gethostbyname('kubernetes.default'), flush=True)\n"
    )
    cluster.apply(
        pod_manifest("client", base_image, ["python3", "-c", script], restartPolicy="Never"),
        namespace=ns,
    )
    pod = cluster.wait_pod_phase("client", ns, ["Succeeded", "Failed"], timeout=120)
    logs = cluster.kubectl("logs", "client", namespace=ns).stdout
    assert pod["status"]["phase"] == "Succeeded", logs
    svc_ip = cluster.get_json("service", "web", namespace=ns)["spec"]["clusterIP"]
    assert f"web.{ns}.svc.cluster.local {svc_ip}" in logs
    assert f"web {HTTPD_MARKER}" in logs
    assert "kubernetes 10.203.0.1" in logs


def test_pod_reaches_apiserver_through_kubernetes_service(
    cluster: Cluster, namespace: str, base_image: str
):
    script = (
        "import ssl, urllib.request, urllib.error\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
        "ctx = ssl.create_default_context(cafile=sa + '/ca.crt')\n"
        "token = open(sa + '/token').read()\n"
        "req = urllib.request.Request('https://kubernetes.default.svc/version',"
        " headers={'Authorization': 'Bearer ' + token})\n"
        "print(urllib.request.urlopen(req, context=ctx, timeout=10).read().decode())\n"
    )
    cluster.apply(
        pod_manifest("api", base_image, ["python3", "-c", script], restartPolicy="Never"),
        namespace=namespace,
    )
    pod = cluster.wait_pod_phase("api", namespace, ["Succeeded", "Failed"], timeout=120)
    logs = cluster.kubectl("logs", "api", namespace=namespace).stdout
    assert pod["status"]["phase"] == "Succeeded", logs
    assert '"gitVersion": "v1.33.13"' in logs


def test_pod_over_memory_limit_is_oomkilled(cluster: Cluster, namespace: str, base_image: str):
    hog = "chunks = []\nwhile True:\n    chunks.append(b'x' * (16 << 20))\n"
    cluster.apply(
        pod_manifest(
            "hog",
            base_image,
            ["python3", "-c", hog],
            restartPolicy="Never",
            container={"resources": {"limits": {"memory": "64Mi", "cpu": "500m"}}},
        ),
        namespace=namespace,
    )
    pod = cluster.wait_pod_phase("hog", namespace, ["Failed", "Succeeded"], timeout=120)
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled", terminated
    assert terminated["exitCode"] == 137


def test_active_deadline_seconds_ends_pod(cluster: Cluster, namespace: str, base_image: str):
    cluster.apply(
        pod_manifest(
            "slow", base_image, ["sleep", "3600"], restartPolicy="Never", activeDeadlineSeconds=5
        ),
        namespace=namespace,
    )
    pod = cluster.wait_pod_phase("slow", namespace, ["Failed", "Succeeded"], timeout=90)
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["reason"] == "DeadlineExceeded"
