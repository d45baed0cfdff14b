"""The chart's NetworkPolicies on the real cluster, which enforces them (kube-router's firewall
beside the CNI bridge, see tests/cluster/README.md): one release installed for the module, a warm
function and a shared one (the pool's pods), and probe pods, from inside which plain TCP connects (2 s timeout) say what each pod
reaches.

Probe pods run the runtime image with a TCP listener on 8080: `stranger` (no labels) and
`api-client` in the release namespace; `outsider` (no labels), `scraper` (labelled like
prometheus-operator's Prometheus, the default `global.metricsScrapers`) and `fake-function`
(labelled like a function pod) in a second namespace. Traffic from the node itself is always
allowed, so every probe starts inside a pod. The fetch tests add `web`, a real HTTP server behind
a Service in the second namespace, and a shared and a warm function allowed to fetch from it.

A probe that must be blocked is paired with the same target reached from a pod that no policy
limits, so that a closed port cannot pass for a policy; and the first test proves enforcement is
on at all (a deny-all policy blocks a pod that was reachable, and lifting it restores it).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.cluster.fixtures import Cluster
from tests.fixtures.fetch import FETCH, SERVER

from . import kit
from .conftest import Helm, record_figure

pytestmark = [pytest.mark.cluster]

INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
FUNCTION = "np"
LISTEN_PORT = 8080
CONNECT_TIMEOUT_S = 2
# kube-router applies a change (a new pod, a new policy) within a sync; probes expecting a state
# retry for this long before they fail.
SETTLE_S = 30

# Every probe pod serves TCP on LISTEN_PORT (accept and close) and otherwise waits.
LISTENER = (
    "import socket\n"
    "s = socket.socket()\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    f"s.bind(('0.0.0.0', {LISTEN_PORT}))\n"
    "s.listen(64)\n"
    "while True:\n"
    "    s.accept()[0].close()\n"
)

# Run inside a pod: every target at once, each a TCP connect or a name lookup, bounded by
# CONNECT_TIMEOUT_S; prints one JSON list of outcomes ("open", "refused", "timeout", or
# "error:<errno>"; for lookups the addresses or "error:...").
PROBE = f"""
import concurrent.futures, json, socket, sys
def probe(t):
    if "resolve" in t:
        try:
            return sorted({{a[4][0] for a in socket.getaddrinfo(t["resolve"], 80, socket.AF_INET)}})
        except OSError as e:
            return "error:" + str(e)
    try:
        socket.create_connection((t["host"], t["port"]), {CONNECT_TIMEOUT_S}).close()
        return "open"
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return "error:" + str(e.errno)
targets = json.loads(sys.argv[1])
with concurrent.futures.ThreadPoolExecutor(len(targets)) as ex:
    print(json.dumps(list(ex.map(probe, targets))))
"""

FUNCTION_MANIFEST = {
    "apiVersion": "vortex.dev/v1alpha1",
    "kind": "VortexFunction",
    "metadata": {"name": FUNCTION},
    "spec": {"code": "return 7;\n", "isolation": "warm"},
}
# A shared function: the pool's pods serve it.
SHARED = "np-shared"
SHARED_MANIFEST = {
    "apiVersion": "vortex.dev/v1alpha1",
    "kind": "VortexFunction",
    "metadata": {"name": SHARED},
    "spec": {"code": "return 8;\n"},
}
# Runtime pods: a warm function's, and the shared pool's.
RUNTIMES = ["function", "pool"]


def _deny_all_ingress(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def _probe_pod(name: str, image: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"vortex-e2e/probe": name, **labels}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-c", LISTENER],
                    "ports": [{"name": "listen", "containerPort": LISTEN_PORT}],
                    "readinessProbe": {
                        "tcpSocket": {"port": LISTEN_PORT},
                        "periodSeconds": 1,
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


# -- the network -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    container: str
    ip: str
    ports: dict[str, int]

    def at(self, port: str) -> tuple[str, int]:
        """(pod IP, number) of the container port named PORT."""
        return (self.ip, self.ports[port])

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Net:
    cluster: Cluster
    helm: Helm
    release: str
    namespace: str
    other: str
    values: dict[str, Any]
    pods: dict[str, Pod] = field(default_factory=dict)
    # name -> (host, port) of the release's and the cluster's services
    services: dict[str, tuple[str, int]] = field(default_factory=dict)
    probes: int = 0

    def pod(self, namespace: str, selector: str) -> Pod:
        items = [
            p
            for p in self.cluster.get_json("pods", "-l", selector, namespace=namespace)["items"]
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        ]
        assert items, f"no running pod {selector} in {namespace}"
        p = items[0]
        container = p["spec"]["containers"][0]
        ports = {
            c["name"]: int(c["containerPort"]) for c in container.get("ports", []) if "name" in c
        }
        return Pod(namespace, p["metadata"]["name"], container["name"], p["status"]["podIP"], ports)

    def component(self, component: str) -> Pod:
        return self.pod(self.namespace, f"{INSTANCE}={self.release},{COMPONENT}={component}")

    def probe(self, source: Pod, targets: list[dict[str, Any]]) -> list[Any]:
        """What SOURCE sees of each target, from inside it (`kubectl exec`)."""
        self.probes += len(targets)
        proc = self.cluster.kubectl(
            "exec",
            source.name,
            "-c",
            source.container,
            "--",
            "python3",
            "-c",
            PROBE,
            json.dumps(targets),
            namespace=source.namespace,
            timeout=30,
        )
        return list(json.loads(proc.stdout.strip().splitlines()[-1]))

    def expect(self, source: Pod, want: dict[str, tuple[tuple[str, int], bool]]) -> None:
        """Each named (host, port) is reachable from SOURCE (True) or not (False): refused or
        timed out. Retried for SETTLE_S while kube-router catches up with new pods or policies."""
        pending = dict(want)
        seen: dict[str, Any] = {}
        deadline = time.monotonic() + SETTLE_S
        while True:
            names = list(pending)
            targets = [{"host": pending[n][0][0], "port": pending[n][0][1]} for n in names]
            for name, outcome in zip(names, self.probe(source, targets), strict=True):
                seen[name] = outcome
                reachable = pending[name][1]
                if (outcome == "open") == reachable and (
                    reachable or outcome in ("refused", "timeout")
                ):
                    del pending[name]
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(1)
        wrong = {
            n: f"{want[n][0][0]}:{want[n][0][1]} is {seen[n]}, want "
            + ("open" if want[n][1] else "refused or timeout")
            for n in pending
        }
        assert not wrong, f"from {source}: {wrong}"


def _service(cluster: Cluster, namespace: str, name: str, port_name: str) -> tuple[str, int]:
    """(ClusterIP, port) of a Service's port named PORT_NAME."""
    svc = cluster.get_json("service", name, namespace=namespace)
    port = next(p for p in svc["spec"]["ports"] if p.get("name") == port_name)
    return svc["spec"]["clusterIP"], int(port["port"])


def _deployments_ready(cluster: Cluster, namespace: str, release: str) -> bool:
    items = cluster.get_json("deployments", "-l", f"{INSTANCE}={release}", namespace=namespace)[
        "items"
    ]
    return bool(items) and all(
        d.get("status", {}).get("readyReplicas", 0) == d["spec"]["replicas"]
        and d.get("status", {}).get("updatedReplicas", 0) == d["spec"]["replicas"]
        for d in items
    )


def _functions_ready(cluster: Cluster, namespace: str, *names: str) -> bool:
    """Every VortexFunction named Ready."""
    return all(
        any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in cluster.get_json("vortexfunction", name, namespace=namespace)
            .get("status", {})
            .get("conditions", [])
        )
        for name in names
    )


def _describe(cluster: Cluster, *namespaces: str) -> str:
    out = []
    for ns in namespaces:
        out.append(
            cluster.kubectl("get", "pods,vf,netpol", "-o", "wide", namespace=ns, check=False).stdout
        )
    return "\n".join(out)


@pytest.fixture(scope="module")
def net(cluster: Cluster, helm: Helm, base_values: dict[str, Any]) -> Iterator[Net]:
    namespace = cluster.create_namespace("vx-np")
    other = cluster.create_namespace("vx-np-other")
    release = f"vortex-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    try:
        # Helm never upgrades a CRD it finds: bring it up to date first, as users must.
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(kit.CRD))
        helm("install", release, str(kit.CHART), "--namespace", namespace, values=base_values)
        # the probe pods start while the release does, on the release's runtime image
        runtime = base_values["runtime"]["image"]
        image = f"{runtime['repository']}:{runtime['tag']}"
        cluster.apply(
            [
                _probe_pod("stranger", image, {}),
                _probe_pod("api-client", image, {"vortex-e2e/api-client": "yes"}),
            ],
            namespace=namespace,
        )
        cluster.apply(
            [
                _probe_pod("outsider", image, {}),
                _probe_pod("scraper", image, {"app.kubernetes.io/name": "prometheus"}),
                _probe_pod(
                    "fake-function",
                    image,
                    {"app.kubernetes.io/name": "vortex-function", "vortex.dev/function": FUNCTION},
                ),
            ],
            namespace=other,
        )
        try:
            cluster.wait_for(
                "every Deployment of the release ready",
                lambda: _deployments_ready(cluster, namespace, release),
                timeout=180,
                interval=0.5,
            )
            cluster.apply([FUNCTION_MANIFEST, SHARED_MANIFEST], namespace=namespace)
            cluster.wait_for(
                f"VortexFunctions {FUNCTION} and {SHARED} Ready",
                lambda: _functions_ready(cluster, namespace, FUNCTION, SHARED),
                timeout=150,
                interval=0.5,
            )
            for ns, name in _probes(namespace, other):
                cluster.wait_pod_ready(name, ns, timeout=120)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{_describe(cluster, namespace, other)}") from None

        n = Net(cluster, helm, release, namespace, other, base_values)
        for ns, name in _probes(namespace, other):
            n.pods[name] = n.pod(ns, f"vortex-e2e/probe={name}")
        n.pods["function"] = n.pod(namespace, f"vortex.dev/function={FUNCTION}")
        for c in ("api", "operator", "minio", "pool"):
            n.pods[c] = n.component(c)
        n.services["minio"] = _service(cluster, namespace, f"{release}-minio", "s3")
        n.services["api"] = _service(cluster, namespace, f"{release}-api", "http")
        n.services["kubernetes"] = _service(cluster, "default", "kubernetes", "https")
        n.services["dns"] = _service(cluster, "kube-system", "kube-dns", "dns-tcp")
        # the API server's own address (the `kubernetes` Service's endpoint: the node's)
        eps = cluster.get_json("endpoints", "kubernetes", namespace="default")
        subset = eps["subsets"][0]
        n.services["apiserver"] = (subset["addresses"][0]["ip"], int(subset["ports"][0]["port"]))
        record_figure("network policy setup", f"{time.monotonic() - started:.1f} s")
        yield n
        record_figure("network policy probes", f"{n.probes} connects")
    finally:
        helm.uninstall(release, namespace)
        cluster.delete_namespace(namespace, wait=False)
        cluster.delete_namespace(other, wait=False)


def _probes(namespace: str, other: str) -> list[tuple[str, str]]:
    """(namespace, name) of every probe pod."""
    return [
        (namespace, "stranger"),
        (namespace, "api-client"),
        (other, "outsider"),
        (other, "scraper"),
        (other, "fake-function"),
    ]


# -- enforcement is on -------------------------------------------------------------------------


@pytest.mark.timeout(600)  # includes the install, and the images on a cold cache
def test_the_cluster_enforces_network_policy(net: Net) -> None:
    """The control: a pod reachable from another stops being so under a deny-all policy, and is
    reachable again once the policy is gone. Fails on a cluster that enforces nothing."""
    outsider, stranger = net.pods["outsider"], net.pods["stranger"]
    target = {"outsider": (outsider.at("listen"), True)}
    net.expect(stranger, target)
    net.cluster.apply(_deny_all_ingress("deny-all"), namespace=net.other)
    try:
        net.expect(stranger, {"outsider": (outsider.at("listen"), False)})
    finally:
        net.cluster.kubectl("delete", "networkpolicy", "deny-all", namespace=net.other)
    net.expect(stranger, target)


# -- function pods (the runtime policy and the operator's per-function policy) ---------------


@pytest.mark.timeout(180)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_function_pods_reach_minio_and_dns(net: Net, runtime: str) -> None:
    fn = net.pods[runtime]
    net.expect(
        fn,
        {
            "minio service": (net.services["minio"], True),
            "minio pod": (net.pods["minio"].at("s3"), True),
            "dns over tcp": (net.services["dns"], True),
        },
    )
    # and names resolve (UDP to the cluster DNS)
    [resolved] = net.probe(fn, [{"resolve": "kubernetes.default.svc.cluster.local"}])
    assert resolved == [net.services["kubernetes"][0]], resolved


@pytest.mark.timeout(180)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_function_pods_cannot_reach_the_kubernetes_api(net: Net, runtime: str) -> None:
    targets = {
        "kubernetes service": net.services["kubernetes"],
        "api server on the node": net.services["apiserver"],
    }
    # reachable from a pod no policy limits: the port is open, only the policy closes it
    net.expect(net.pods["stranger"], {k: (v, True) for k, v in targets.items()})
    net.expect(net.pods[runtime], {k: (v, False) for k, v in targets.items()})


@pytest.mark.timeout(180)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_function_pods_cannot_reach_other_namespaces_the_operator_or_the_api(
    net: Net, runtime: str
) -> None:
    p = net.pods
    targets = {
        "pod in another namespace": p["outsider"].at("listen"),
        "pod in the release namespace": p["stranger"].at("listen"),
        "operator health": p["operator"].at("health"),
        "api pod": p["api"].at("http"),
        "api service": net.services["api"],
    }
    # The same targets, from an unlimited pod: open (the operator's health port takes anyone;
    # the API takes everyone by default).
    net.expect(p["api-client"], {k: (v, True) for k, v in targets.items()})
    net.expect(p[runtime], {k: (v, False) for k, v in targets.items()})


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("runtime", "function", "output"), [("function", FUNCTION, 7), ("pool", SHARED, 8)]
)
def test_function_pods_take_invocations_only_from_the_api_and_scrapers(
    net: Net, runtime: str, function: str, output: int
) -> None:
    p = net.pods
    fn = {"function pod": (p[runtime].at("http"), True)}
    closed = {"function pod": (p[runtime].at("http"), False)}
    net.expect(p["api"], fn)
    net.expect(p["scraper"], fn)  # global.metricsScrapers: prometheus pods in any namespace
    net.expect(p["stranger"], closed)
    net.expect(p["outsider"], closed)
    net.expect(p["operator"], closed)
    # and the real path: the API Service, an API pod, the function's Service, its pod
    host, port = net.services["api"]
    key = base64.b64decode(
        net.cluster.kubectl(
            "get",
            "secret",
            f"{net.release}-api-auth",
            "-o",
            "jsonpath={.data.admin-key}",
            namespace=net.namespace,
        ).stdout
    ).decode()
    response = httpx.post(
        f"http://{host}:{port}/execute/{function}",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        content=b"",
        timeout=40,
    )
    assert response.status_code == 200, response.text
    assert response.json()["output"] == output


# -- MinIO -------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_minio_answers_only_the_operator_and_function_pods(net: Net) -> None:
    p = net.pods
    minio = {
        "minio pod": (p["minio"].at("s3"), True),
        "minio service": (net.services["minio"], True),
    }
    blocked = {k: (v[0], False) for k, v in minio.items()}
    net.expect(p["operator"], minio)
    net.expect(p["function"], minio)
    net.expect(p["pool"], minio)
    # an unlabelled pod of the release namespace, a pod of another namespace, a pod labelled as
    # a function but outside the watched namespaces, and the API (which never reads code)
    for source in ("stranger", "outsider", "fake-function", "api"):
        net.expect(p[source], blocked)


# -- the operator ------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_operator_takes_probes_from_anyone_and_metrics_only_from_scrapers(net: Net) -> None:
    p, op = net.pods, net.pods["operator"]
    metrics = net.values["operator"]["metrics"]
    assert metrics["enabled"], "the test release serves the operator's metrics"
    net.expect(
        p["scraper"], {"health": (op.at("health"), True), "metrics": (op.at("metrics"), True)}
    )
    net.expect(
        p["stranger"], {"health": (op.at("health"), True), "metrics": (op.at("metrics"), False)}
    )
    net.expect(p["outsider"], {"metrics": (op.at("metrics"), False)})


# -- the API -----------------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_api_takes_everyone_by_default_and_only_ingress_from_when_set(net: Net) -> None:
    p = net.pods

    def api_targets(reachable: bool) -> dict[str, tuple[tuple[str, int], bool]]:
        api = net.component("api")
        return {
            "api pod": (api.at("http"), reachable),
            "api service": (net.services["api"], reachable),
        }

    # api.networkPolicy.ingressFrom: [] (the default): everyone
    for source in ("stranger", "outsider", "api-client", "scraper"):
        net.expect(p[source], api_targets(True))

    # Only pods labelled vortex-e2e/api-client=yes of the release namespace; metrics scrapers
    # keep their own rule.
    ingress_from = [{"podSelector": {"matchLabels": {"vortex-e2e/api-client": "yes"}}}]
    values = kit.deep_merge(net.values, {"api": {"networkPolicy": {"ingressFrom": ingress_from}}})
    net.helm("upgrade", net.release, str(kit.CHART), "--namespace", net.namespace, values=values)
    policy = net.cluster.get_json("networkpolicy", f"{net.release}-api", namespace=net.namespace)
    assert policy["spec"]["ingress"][0]["from"] == ingress_from, policy["spec"]
    net.cluster.wait_for(
        "the API rolled out after the upgrade",
        lambda: _deployments_ready(net.cluster, net.namespace, net.release),
        timeout=120,
    )
    net.expect(p["api-client"], api_targets(True))
    net.expect(p["scraper"], api_targets(True))
    # The operator's autoscaler reads /internal/concurrency from every API pod.
    net.expect(p["operator"], api_targets(True))
    net.expect(p["stranger"], api_targets(False))
    net.expect(p["outsider"], api_targets(False))


# -- fetch: what a function's egress opens, and nothing else ----------------------------------

WEB = "web"
FETCHER = "np-fetch"
WARM_FETCHER = "np-fetch-warm"


def _web(image: str) -> list[dict[str, Any]]:
    """A real HTTP server (tests/fixtures/fetch.py) in a pod of its own, behind a Service."""
    pod = _probe_pod(WEB, image, {})
    pod["spec"]["containers"][0]["command"] = ["python3", "-c", SERVER, str(LISTEN_PORT)]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": WEB},
        "spec": {
            "selector": {"vortex-e2e/probe": WEB},
            "ports": [{"name": "http", "port": LISTEN_PORT, "targetPort": LISTEN_PORT}],
        },
    }
    return [pod, service]


def _web_host(net: Net) -> str:
    return f"{WEB}.{net.other}.svc.cluster.local"


@pytest.fixture(scope="module")
def web(net: Net) -> Pod:
    """The web pod, in the other namespace behind the Service `web`; reachable from a pod no
    policy limits (the control for every probe that finds it closed)."""
    runtime = net.values["runtime"]["image"]
    net.cluster.apply(_web(f"{runtime['repository']}:{runtime['tag']}"), namespace=net.other)
    net.cluster.wait_pod_ready(WEB, net.other, timeout=120)
    pod = net.pod(net.other, f"vortex-e2e/probe={WEB}")
    net.expect(net.pods["stranger"], {"web": (pod.at("listen"), True)})
    return pod


def _selected(net: Net, labels: dict[str, str]) -> set[str]:
    """Names of the release namespace's pods that LABELS select."""
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    return {p["metadata"]["name"] for p in kit.pods(net.cluster, net.namespace, selector)}


def _has_policy(net: Net, function: str) -> bool:
    """Whether the function's NetworkPolicy vf-FUNCTION exists."""
    proc = net.cluster.kubectl(
        "get", "networkpolicy", f"vf-{function}", namespace=net.namespace, check=False
    )
    return proc.returncode == 0


def _deploy_fetcher(net: Net, name: str, **spec: Any) -> dict[str, Any]:
    """A VortexFunction NAME running FETCH, allowed only the web Service (SPEC adds to its
    spec), once Ready; returns its NetworkPolicy vf-NAME."""
    cluster = net.cluster
    manifest = {
        "apiVersion": "vortex.dev/v1alpha1",
        "kind": "VortexFunction",
        "metadata": {"name": name},
        "spec": {"code": FETCH, "egress": {"allow": [f"{_web_host(net)}:{LISTEN_PORT}"]}, **spec},
    }
    cluster.apply(manifest, namespace=net.namespace)
    cluster.wait_for(
        f"{name} Ready",
        lambda: _functions_ready(cluster, net.namespace, name),
        timeout=120,
        interval=0.5,
    )
    cluster.wait_for(
        f"the NetworkPolicy vf-{name}", lambda: _has_policy(net, name), timeout=60, interval=0.5
    )
    return dict(cluster.get_json("networkpolicy", f"vf-{name}", namespace=net.namespace))


def _fetches_only_the_web_service(net: Net, name: str) -> None:
    """Executed through the API, NAME's fetch to the web Service round-trips a body, and its
    fetches to the `stranger` pod and to the metadata address are refused by the runtime."""
    admin = kit.secret_value(net.cluster, net.namespace, f"{net.release}-api-auth", "admin-key")
    ip, port = net.services["api"]
    api = kit.Api(base=f"http://{ip}:{port}", admin_key=admin, invoke_key="")
    stranger = net.pods["stranger"].at("listen")
    url = f"http://{_web_host(net)}:{LISTEN_PORT}"
    event = {
        "many": [
            {"url": f"{url}/echo", "init": {"method": "POST", "body": "hi"}, "read": "json"},
            {"url": f"http://{stranger[0]}:{stranger[1]}/"},
            {"url": "http://169.254.169.254/latest/meta-data/"},
        ]
    }
    response = api.execute(name, event)
    assert response.status_code == 200, response.text
    echoed, refused, metadata = response.json()["output"]
    assert echoed["status"] == 200, echoed
    assert echoed["body"]["body"] == "hi"
    assert refused["error"]["message"] == f"fetch to {stranger[0]} is not allowed"
    assert metadata["error"]["message"] == "fetch to 169.254.169.254 is not allowed"


@pytest.mark.timeout(300)
def test_fetch_reaches_an_allowed_service_and_the_pool_nothing_else(net: Net, web: Pod) -> None:
    """A shared function allowed `web.<other>.svc.cluster.local:8080` fetches from it through
    the pool; a fetch elsewhere is refused by the runtime; and the pool's pods themselves, by
    raw socket, reach the web pod only while the function's NetworkPolicy exists, and never the
    release's `stranger` pod, which a pod no policy limits does reach."""
    stranger = net.pods["stranger"].at("listen")
    pool = net.pods["pool"]
    net.expect(pool, {"web": (web.at("listen"), False), "stranger": (stranger, False)})
    try:
        policy = _deploy_fetcher(net, FETCHER)
        assert policy["spec"]["podSelector"]["matchLabels"][COMPONENT] == "pool"
        net.expect(pool, {"web": (web.at("listen"), True), "stranger": (stranger, False)})
        _fetches_only_the_web_service(net, FETCHER)
    finally:
        net.cluster.kubectl("delete", "vf", FETCHER, "--ignore-not-found", namespace=net.namespace)
    net.expect(pool, {"web": (web.at("listen"), False)})


@pytest.mark.timeout(300)
def test_a_warm_function_fetches_from_an_allowed_service_through_its_own_pods(
    net: Net, web: Pod
) -> None:
    """The same rules on a warm function: its NetworkPolicy selects its own pods, not the
    pool's; the fetch through the API succeeds and the others are refused; and its warm pod,
    by raw socket, reaches the web pod and not the `stranger` pod, where the release's other
    warm function, which names no egress, reaches neither."""
    cluster, namespace = net.cluster, net.namespace
    stranger = net.pods["stranger"].at("listen")
    closed = {"web": (web.at("listen"), False), "stranger": (stranger, False)}
    net.expect(net.pods["function"], closed)
    try:
        policy = _deploy_fetcher(net, WARM_FETCHER, isolation="warm")
        deployment = cluster.get_json("deployment", f"vf-{WARM_FETCHER}", namespace=namespace)
        warm_pods = _selected(net, deployment["spec"]["selector"]["matchLabels"])
        selected = _selected(net, policy["spec"]["podSelector"]["matchLabels"])
        pool_pods = _selected(net, {INSTANCE: net.release, COMPONENT: "pool"})
        assert warm_pods, "the warm Deployment has no pods"
        assert selected == warm_pods, (selected, warm_pods)
        assert not selected & pool_pods, (selected, pool_pods)
        warm = net.pod(namespace, f"vortex.dev/function={WARM_FETCHER}")
        net.expect(warm, {"web": (web.at("listen"), True), "stranger": (stranger, False)})
        _fetches_only_the_web_service(net, WARM_FETCHER)
    finally:
        cluster.kubectl("delete", "vf", WARM_FETCHER, "--ignore-not-found", namespace=namespace)
    # what it opened goes with it (the policy is the function's child)
    cluster.wait_for(
        f"the NetworkPolicy vf-{WARM_FETCHER} gone",
        lambda: not _has_policy(net, WARM_FETCHER),
        timeout=60,
        interval=0.5,
    )
