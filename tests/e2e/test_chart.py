"""The chart without a cluster: lint, schema errors, CRD and RBAC drift, hardened and configurable
defaults, monitors that select what the components really serve, the dashboard's metrics."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

from tests.cluster.fixtures import REPO_ROOT

from . import kit

pytestmark = pytest.mark.timeout(300)

OPERATOR_RBAC = REPO_ROOT / "operator" / "deploy" / "rbac.yaml"

# Values that turn on every optional object (monitors need their CRDs, so no server dry-run here).
EVERYTHING_ON: dict[str, Any] = {
    "operator": {"serviceMonitor": {"enabled": True}, "replicas": 2},
    "api": {
        "serviceMonitor": {"enabled": True},
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "tls": [{"hosts": ["vortex.local"], "secretName": "tls"}],
        },
    },
    "runtime": {"podMonitor": {"enabled": True}},
    "minio": {"persistence": {"enabled": True}},
}


def pod_specs(objs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for o in objs:
        name = f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] in ("Deployment", "Job"):
            out.append((name, o["spec"]["template"]["spec"]))
        elif o["kind"] == "Pod":
            out.append((name, o["spec"]))
    return out


# -- lint and schema ------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [None, EVERYTHING_ON], ids=["defaults", "everything-on"])
def test_helm_lint_strict_passes(values):
    with kit.values_args(values) as args:
        proc = kit.run([str(kit.helm_path()), "lint", "--strict", str(kit.CHART), *args])
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"operator": {"replicas": 0}}, "at '/operator/replicas': minimum: got 0, want 1"),
        ({"api": {"maxWorkers": "lots"}}, "at '/api/maxWorkers': got string, want integer"),
        ({"api": {"replica": 2}}, "at '/api': additional properties 'replica' not allowed"),
        ({"api": {"auth": {"adminKey": "short"}}}, "at '/api/auth/adminKey'"),
        (
            {"runtime": {"image": {"pullPolicy": "Sometimes"}}},
            "value must be one of 'Always', 'IfNotPresent', 'Never'",
        ),
        ({"minio": {"enabled": False}}, "at '/minio/external/endpoint': minLength: got 0, want 1"),
        ({"minio": {"bucket": "Bad_Bucket"}}, "at '/minio/bucket'"),
        ({"api": {"pdb": {"maxUnavailable": 1}}}, "at '/api/pdb'"),
        (
            {"operator": {"leaderElection": False, "replicas": 2}},
            "at '/operator/replicas': value must be 1",
        ),
        (
            {"operator": {"watchNamespaces": ["Not_A_Namespace"]}},
            "at '/operator/watchNamespaces/0'",
        ),
        ({"api": {"service": {"type": "ExternalName"}}}, "at '/api/service/type'"),
        (
            {"operator": {"serviceMonitor": {"interval": "often"}}},
            "at '/operator/serviceMonitor/interval'",
        ),
    ],
)
def test_bad_values_fail_with_a_clear_message(values, message):
    proc = kit.template(values, check=False)
    assert proc.returncode != 0, f"accepted {values}"
    assert "values don't meet the specifications of the schema" in proc.stderr
    assert message in proc.stderr, proc.stderr


def test_external_minio_needs_endpoint_and_secret_and_then_renders():
    objs = kit.render(kit.EXTERNAL_S3)
    assert not [
        o
        for o in objs
        if "minio" in o["metadata"]["name"] and o["kind"] in ("Deployment", "Service", "Secret")
    ]
    env = {
        e["name"]: e
        for e in kit.one(objs, "Deployment", "vortex-operator")["spec"]["template"]["spec"][
            "containers"
        ][0]["env"]
    }
    assert env["MINIO_ENDPOINT"]["value"] == "s3.example.com:443"
    assert env["MINIO_SECURE"]["value"] == "true"
    assert env["MINIO_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "s3-keys",
        "key": "MINIO_ACCESS_KEY",
    }
    # The API tells one-shot pods to use TLS too (they share the warm pods' pod spec builder).
    api = kit.one(objs, "Deployment", "vortex-api")["spec"]["template"]["spec"]["containers"][0]
    api_env = {e["name"]: e.get("value") for e in api["env"]}
    assert api_env["MINIO_SECURE"] == "true"
    assert api_env["MINIO_ENDPOINT"] == "s3.example.com:443"


# -- drift ----------------------------------------------------------------------------------------


def test_chart_crds_are_identical_to_the_top_level_crds():
    top = {p.name: p.read_bytes() for p in (REPO_ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (kit.CHART / "crds").glob("*.yaml")}
    assert top, "no CRDs in crds/"
    assert sorted(chart) == sorted(top), "helm/vortex/crds must hold exactly the files of crds/"
    for name, content in top.items():
        assert chart[name] == content, (
            f"helm/vortex/crds/{name} differs from crds/{name}: copy it over"
        )


def _rules(docs: list[dict[str, Any]], kinds: tuple[str, ...]) -> set[tuple[Any, ...]]:
    out = set()
    for doc in docs:
        if doc["kind"] not in kinds:
            continue
        for rule in doc.get("rules", []):
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        named = bool(rule.get("resourceNames"))
                        out.add((group, resource, verb, named))
    return out


def test_operator_rbac_matches_the_operators_own_manifest():
    """The chart grants the operator exactly what operator/deploy/rbac.yaml lists."""
    theirs = [d for d in yaml.safe_load_all(OPERATOR_RBAC.read_text()) if d]
    objs = kit.render()
    ours = [
        o
        for o in objs
        if o["kind"] in ("ClusterRole", "Role")
        and o["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"
    ]
    assert _rules(ours, ("ClusterRole",)) == _rules(theirs, ("ClusterRole",))
    assert _rules(ours, ("Role",)) == _rules(theirs, ("Role",))
    lease_role = kit.one(objs, "Role", "vortex-operator-leader")
    names = [n for r in lease_role["rules"] for n in r.get("resourceNames", [])]
    env = kit.one(objs, "Deployment", "vortex-operator")["spec"]["template"]["spec"]["containers"][
        0
    ]["env"]
    assert names == [next(e["value"] for e in env if e["name"] == "VORTEX_OPERATOR_LEASE_NAME")]


def test_namespaced_operator_is_bound_only_in_its_namespaces():
    objs = kit.render({"operator": {"watchNamespaces": ["team-a"]}}, namespace="vx")
    bindings = {
        (b["metadata"]["namespace"], b["roleRef"]["name"]) for b in kit.find(objs, "RoleBinding")
    }
    assert {("vx", "vortex-operator"), ("team-a", "vortex-operator")} <= bindings
    crbs = {b["roleRef"]["name"] for b in kit.find(objs, "ClusterRoleBinding")}
    assert crbs == {"vortex-operator-crds"}, "only CRD discovery is cluster-wide"
    env = kit.one(objs, "Deployment", "vortex-operator")["spec"]["template"]["spec"]["containers"][
        0
    ]["env"]
    assert {"name": "VORTEX_OPERATOR_NAMESPACES", "value": "vx,team-a"} in env

    wide = kit.render({"operator": {"clusterWide": True}}, namespace="vx")
    assert "vortex-operator" in {b["roleRef"]["name"] for b in kit.find(wide, "ClusterRoleBinding")}
    env = kit.one(wide, "Deployment", "vortex-operator")["spec"]["template"]["spec"]["containers"][
        0
    ]["env"]
    assert {"name": "VORTEX_OPERATOR_NAMESPACES", "value": ""} in env


# -- hardened and configurable --------------------------------------------------------------------


def test_every_pod_is_hardened_by_default():
    objs = kit.render(EVERYTHING_ON)
    specs = pod_specs(objs)
    assert {n for n, _ in specs} >= {
        "Deployment/vortex-operator",
        "Deployment/vortex-api",
        "Deployment/vortex-minio",
        "Job/vortex-operator-cleanup",
        "Pod/vortex-api-test",
    }
    for name, spec in specs:
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, name
        assert pod_sc["runAsUser"] > 0, name
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key), name
        assert not [v for v in spec.get("volumes", []) if "hostPath" in v], name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert not sc.get("privileged"), name
            assert c["resources"]["limits"]["memory"], name
            assert c["resources"]["requests"], name
            assert ":" in c["image"], name
            assert not c["image"].endswith(":latest"), name
            assert c["imagePullPolicy"] in ("IfNotPresent", "Never"), name
    # Only the operator and the API talk to the Kubernetes API.
    tokens = {n for n, s in specs if s.get("automountServiceAccountToken") is not False}
    assert tokens == {
        "Deployment/vortex-operator",
        "Deployment/vortex-api",
        "Job/vortex-operator-cleanup",
    }


@pytest.mark.parametrize("component", ["operator", "api", "minio"])
def test_image_resources_and_security_context_are_configurable(component):
    values = {
        component: {
            "image": {"repository": "registry.example/x", "tag": "1.2.3", "pullPolicy": "Always"},
            "resources": {
                "limits": {"memory": "3Gi", "cpu": 2},
                "requests": {"memory": "1Gi", "cpu": "300m"},
            },
            "podSecurityContext": {
                "runAsNonRoot": True,
                "runAsUser": 4242,
                "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"},
            },
            "securityContext": {"readOnlyRootFilesystem": True, "runAsGroup": 4343},
            "nodeSelector": {"pool": "vortex"},
            "tolerations": [{"key": "k", "operator": "Exists"}],
        }
    }
    spec = kit.one(kit.render(values), "Deployment", f"vortex-{component}")["spec"]["template"][
        "spec"
    ]
    c = spec["containers"][0]
    assert c["image"] == "registry.example/x:1.2.3"
    assert c["imagePullPolicy"] == "Always"
    assert c["resources"] == values[component]["resources"]
    # Helm merges maps with the defaults: the given fields win, the hardened rest stays.
    assert spec["securityContext"].items() >= values[component]["podSecurityContext"].items()
    assert c["securityContext"].items() >= values[component]["securityContext"].items()
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert spec["nodeSelector"] == {"pool": "vortex"}
    assert spec["tolerations"] == [{"key": "k", "operator": "Exists"}]


def test_replicas_runtime_image_and_digests_are_configurable():
    digest = "sha256:" + "a" * 64
    objs = kit.render(
        {
            "operator": {"replicas": 3},
            "api": {
                "replicas": 5,
                "image": {"repository": "r/api", "digest": digest, "pullPolicy": "IfNotPresent"},
            },
            "runtime": {"image": {"repository": "r/runtime", "tag": "9", "pullPolicy": "Never"}},
        }
    )
    op = kit.one(objs, "Deployment", "vortex-operator")
    api = kit.one(objs, "Deployment", "vortex-api")
    assert op["spec"]["replicas"] == 3
    assert api["spec"]["replicas"] == 5
    assert api["spec"]["template"]["spec"]["containers"][0]["image"] == f"r/api@{digest}"
    op_env = {
        e["name"]: e.get("value") for e in op["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    api_env = {
        e["name"]: e.get("value") for e in api["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert (
        op_env["VORTEX_OPERATOR_RUNTIME_IMAGE"] == "r/runtime:9" == api_env["VORTEX_RUNTIME_IMAGE"]
    )
    assert op_env["VORTEX_OPERATOR_RUNTIME_IMAGE_PULL_POLICY"] == "Never"


def test_generated_keys_are_random_distinct_and_given_keys_win():
    def keys(objs):
        data = kit.one(objs, "Secret", "vortex-api-auth")["data"]
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    first, second = keys(kit.render()), keys(kit.render())
    assert len(first["admin-key"]) == 40
    assert len(first["invoke-keys"]) == 40
    assert first["admin-key"] != first["invoke-keys"]
    assert first != second, "helm template cannot look up, so every render generates new keys"
    given = keys(
        kit.render({"api": {"auth": {"adminKey": "a" * 20, "invokeKeys": ["b" * 20, "c" * 20]}}})
    )
    assert given == {"admin-key": "a" * 20, "invoke-keys": f"{'b' * 20},{'c' * 20}"}
    minio = kit.one(kit.render(), "Secret", "vortex-minio")["data"]
    assert set(minio) == {"MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"}


def test_auth_off_and_existing_secret():
    off = kit.render({"api": {"auth": {"enabled": False}}})
    assert not kit.find(off, "Secret", "vortex-api-auth")
    env = {
        e["name"]
        for e in kit.one(off, "Deployment", "vortex-api")["spec"]["template"]["spec"]["containers"][
            0
        ]["env"]
    }
    assert not env & {"VORTEX_ADMIN_KEY", "VORTEX_INVOKE_KEYS"}
    existing = kit.render({"api": {"auth": {"existingSecret": "my-keys"}}})
    assert not kit.find(existing, "Secret", "vortex-api-auth")
    env = kit.one(existing, "Deployment", "vortex-api")["spec"]["template"]["spec"]["containers"][
        0
    ]["env"]
    admin = next(e for e in env if e["name"] == "VORTEX_ADMIN_KEY")
    assert admin["valueFrom"]["secretKeyRef"] == {"name": "my-keys", "key": "admin-key"}


# -- monitors select what really serves metrics ----------------------------------------------------


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_service_monitors_select_their_service_and_port():
    objs = kit.render(EVERYTHING_ON)
    for component, service in (("api", "vortex-api"), ("operator", "vortex-operator-metrics")):
        sm = kit.one(objs, "ServiceMonitor", f"vortex-{component}")
        svc = kit.one(objs, "Service", service)
        selected = [
            s
            for s in kit.find(objs, "Service")
            if _matches(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        assert [s["metadata"]["name"] for s in selected] == [service]
        port = sm["spec"]["endpoints"][0]["port"]
        svc_port = next(p for p in svc["spec"]["ports"] if p["name"] == port)
        deploy = kit.one(objs, "Deployment", f"vortex-{component}")
        container_ports = {
            p["name"] for p in deploy["spec"]["template"]["spec"]["containers"][0]["ports"]
        }
        assert svc_port["targetPort"] in container_ports
        assert _matches(svc["spec"]["selector"], deploy["spec"]["template"]["metadata"]["labels"])


def test_pod_monitor_selects_the_operators_warm_pods():
    """Built with the operator's own manifest builder, so a label change there fails here."""
    from vortex_kube.contract import FunctionSpec
    from vortex_operator import manifests
    from vortex_operator.model import FunctionRef
    from vortex_operator.settings import Settings

    ref = FunctionRef(namespace="vortex", name="hello", uid="u-1")
    spec = FunctionSpec.parse({"code": "return 1;"})
    deployment = manifests.deployment(ref, spec, "0" * 64, Settings())
    pod = deployment["spec"]["template"]
    pm = kit.one(kit.render(EVERYTHING_ON), "PodMonitor")
    assert _matches(pm["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
    ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] in ports
    relabel = pm["spec"]["podMetricsEndpoints"][0]["relabelings"][0]
    assert relabel["targetLabel"] == "function"
    label = "vortex.dev/function"
    assert relabel["sourceLabels"] == [
        "__meta_kubernetes_pod_label_" + label.replace(".", "_").replace("/", "_")
    ]
    assert pod["metadata"]["labels"][label] == "hello"


# -- dashboard ------------------------------------------------------------------------------------


def test_dashboard_configmap_carries_the_dashboard_and_label():
    cm = kit.one(kit.render(), "ConfigMap", "vortex-dashboard-vortex")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["vortex.json"]) == kit.dashboard()


def _declared_series() -> set[str]:
    """Every series name the API, the runtime and the operator can export."""
    import importlib
    import pkgutil

    import prometheus_client
    from prometheus_client import CollectorRegistry

    import vortex_operator
    from vortex_api.metrics import Metrics
    from vortex_runtime import metrics as runtime_metrics

    registries: list[CollectorRegistry] = [
        Metrics().registry,
        runtime_metrics.REGISTRY,
        prometheus_client.REGISTRY,
    ]
    # The operator's registries, wherever its modules keep them.
    for info in pkgutil.walk_packages(vortex_operator.__path__, "vortex_operator."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        registries += [
            r
            for r in vars(module).values()
            if isinstance(r, CollectorRegistry) and r not in registries
        ]
    names: set[str] = set()
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "gauge": ("",),
        "summary": ("_sum", "_count", ""),
    }
    for registry in registries:
        for family in registry.collect():
            for suffix in suffixes.get(family.type, ("",)):
                names.add(family.name + suffix)
    return names


def test_every_dashboard_query_uses_metrics_a_component_declares():
    declared = _declared_series()
    queries = kit.dashboard_queries()
    assert len(queries) >= 10
    missing = {
        name: title
        for title, expr in queries
        for name in kit.metric_names(expr)
        if name not in declared
    }
    assert not missing, f"dashboard panels use metrics no component exports: {missing}"


def test_dashboard_variables_resolve_in_every_query():
    board = kit.dashboard()
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource", "function"}
    for _, expr in kit.dashboard_queries(board):
        kit.resolve_variables(expr)
