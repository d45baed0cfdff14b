"""The chart without a cluster: lint, schema errors, CRD and RBAC drift, hardened and configurable
defaults, the shared pool as vortex_kube builds it, the NATS queue and what the API is told of
it, monitors that select what the components really serve, the dashboard's metrics."""

from __future__ import annotations

import base64
import json
import os
import re
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
    "nats": {"persistence": {"enabled": True}},
}


def pod_specs(objs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for o in objs:
        name = f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] in ("Deployment", "StatefulSet", "Job"):
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
        ({"pool": {"replica": 2}}, "at '/pool': additional properties 'replica' not allowed"),
        (
            {"pool": {"isolatesPerFunction": 0}},
            "at '/pool/isolatesPerFunction': minimum: got 0, want 1",
        ),
        ({"pool": {"memoryBudgetMb": "lots"}}, "at '/pool/memoryBudgetMb': got string, want"),
        ({"pool": {"prewarmIsolates": 65}}, "at '/pool/prewarmIsolates'"),
        ({"pool": {"pdb": {"minAvailable": 1}}}, "at '/pool/pdb'"),
        (
            {"operator": {"serviceMonitor": {"interval": "often"}}},
            "at '/operator/serviceMonitor/interval'",
        ),
        ({"nats": {"external": {"url": "http://nats:4222"}}}, "at '/nats/external/url'"),
        ({"nats": {"jetstream": {"maxFileStore": "1Gi"}}}, "at '/nats/jetstream/maxFileStore'"),
        (
            {"nats": {"persistence": {"existingClaim": "x"}}},
            "at '/nats/persistence': additional properties 'existingClaim' not allowed",
        ),
        ({"api": {"asyncWorkers": 0}}, "at '/api/asyncWorkers': minimum: got 0, want 1"),
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
        "Deployment/vortex-pool",
        "StatefulSet/vortex-nats",
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


@pytest.mark.parametrize(
    ("component", "kind"),
    [("operator", "Deployment"), ("api", "Deployment"), ("minio", "Deployment"),
     ("nats", "StatefulSet")],
)  # fmt: skip
def test_image_resources_and_security_context_are_configurable(component, kind):
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
    spec = kit.one(kit.render(values), kind, f"vortex-{component}")["spec"]["template"]["spec"]
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
    assert _kept(pm, pod["metadata"]["labels"])
    ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] in ports
    relabel = pm["spec"]["podMetricsEndpoints"][0]["relabelings"][0]
    assert relabel["targetLabel"] == "function"
    label = "vortex.dev/function"
    assert relabel["sourceLabels"] == [
        "__meta_kubernetes_pod_label_" + label.replace(".", "_").replace("/", "_")
    ]
    assert pod["metadata"]["labels"][label] == "hello"


def _kept(monitor: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether the monitor's `keep` relabelings on pod labels keep a pod with these labels."""
    prefix = "__meta_kubernetes_pod_label_"
    by_meta = {prefix + re.sub(r"[^a-zA-Z0-9_]", "_", k): v for k, v in labels.items()}
    for rule in monitor["spec"]["podMetricsEndpoints"][0].get("relabelings", []):
        if rule.get("action", "replace").lower() != "keep":
            continue
        assert all(s.startswith(prefix) for s in rule["sourceLabels"]), rule
        value = ";".join(by_meta.get(s, "") for s in rule["sourceLabels"])
        if not re.fullmatch(rule.get("regex", "(.*)"), value):
            return False
    return True


def test_pod_monitor_selects_pool_pods_as_component_pool_and_not_one_shot_pods():
    objs = kit.render(EVERYTHING_ON)
    pm = kit.one(objs, "PodMonitor")
    pool = kit.one(objs, "Deployment", "vortex-pool")["spec"]["template"]
    labels = pool["metadata"]["labels"]
    assert _matches(pm["spec"]["selector"]["matchLabels"], labels)
    assert _kept(pm, labels)
    endpoint = pm["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] in {p["name"] for p in pool["spec"]["containers"][0]["ports"]}
    component = next(r for r in endpoint["relabelings"] if r.get("targetLabel") == "component")
    assert component["sourceLabels"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_component"]
    assert labels["app.kubernetes.io/component"] == "pool"
    # Pool pods are in the release namespace, which the monitor watches.
    assert "vortex" in pm["spec"]["namespaceSelector"]["matchNames"]
    # One-shot pods serve one invocation and are gone: not scraped.
    from vortex_api.functions import Function
    from vortex_api.k8s_objects import one_shot_pod
    from vortex_api.settings import Settings as ApiSettings

    fn = Function(
        function_id="hello",
        timeout_ms=1000,
        memory_mb=64,
        code_object="functions/x.js",
        code_sha256="x",
    )
    pod = one_shot_pod(fn, "vf-hello-1", "1", ApiSettings())
    assert not _kept(pm, pod["metadata"]["labels"])


# -- the shared pool ------------------------------------------------------------------------------

POOL_LABELS = {
    "app.kubernetes.io/name": "vortex-function",
    "app.kubernetes.io/instance": "vortex",
    "app.kubernetes.io/component": "pool",
    "app.kubernetes.io/part-of": "vortex",
    "vortex.dev/isolation": "shared",
}
POOL_SELECTOR = {k: POOL_LABELS[k] for k in list(POOL_LABELS)[:3]}
# Scheduling fields of the pool's pod spec, set from values and not by the builder.
SCHEDULING = ("nodeSelector", "tolerations", "affinity", "topologySpreadConstraints",
              "priorityClassName", "imagePullSecrets")  # fmt: skip

POOL_CUSTOM: dict[str, Any] = kit.deep_merge(
    kit.EXTERNAL_S3,
    {
        "runtime": {
            "image": {"repository": "r/runtime", "tag": "7", "pullPolicy": "Always"},
            "drainSeconds": 0,
            "minioCredentialsSecret": "minio-read",
        },
        "pool": {
            "replicas": 4,
            "memoryBudgetMb": 1024,
            "isolatesPerFunction": 3,
            "prewarmIsolates": 0,
            "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "3Gi", "cpu": "2"}},
            "terminationGracePeriodSeconds": 330,
            "nodeSelector": {"pool": "vortex"},
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone"}],
            "priorityClassName": "high",
            "podLabels": {"team": "a"},
            "podAnnotations": {"note": "b"},
        },
        "global": {"imagePullSecrets": ["pull"]},
    },
)


def _values(values: dict[str, Any] | None) -> dict[str, Any]:
    defaults = yaml.safe_load((kit.CHART / "values.yaml").read_text())
    return kit.deep_merge(defaults, values or {})


@pytest.mark.parametrize("values", [None, POOL_CUSTOM], ids=["defaults", "custom"])
def test_pool_pod_spec_is_the_one_vortex_kube_builds(values):
    """The chart renders the pool's pod spec itself; it must be what `pool_pod_spec` builds
    from the same values, so pool pods are hardened exactly as warm and one-shot pods."""
    from vortex_kube.contract import DEFAULT_RUNTIME_IMAGE
    from vortex_kube.podspec import Platform, pool_pod_spec

    v = _values(values)
    image = v["runtime"]["image"]
    external = not v["minio"]["enabled"]
    endpoint = v["minio"]["external"]["endpoint"] if external else "vortex-minio.vortex.svc:9000"
    platform = Platform(
        image=f"{image['repository']}:{image['tag']}" if image["tag"] else DEFAULT_RUNTIME_IMAGE,
        pull_policy=image["pullPolicy"],
        minio_endpoint=endpoint,
        minio_bucket=v["minio"]["bucket"],
        minio_secure=external and v["minio"]["external"]["secure"],
    )
    secret = v["runtime"]["minioCredentialsSecret"] or (
        v["minio"]["external"]["existingSecret"] if external else "vortex-minio"
    )
    pool = v["pool"]
    expected = pool_pod_spec(
        platform,
        memory_budget_mb=pool["memoryBudgetMb"],
        isolates_per_function=pool["isolatesPerFunction"],
        prewarm_isolates=pool["prewarmIsolates"],
        resources=pool["resources"],
        drain_s=v["runtime"]["drainSeconds"],
        grace_s=pool["terminationGracePeriodSeconds"],
        secret=secret,
    )
    deployment = kit.one(kit.render(values), "Deployment", "vortex-pool")
    spec = dict(deployment["spec"]["template"]["spec"])
    scheduling = {key: spec.pop(key) for key in SCHEDULING if key in spec}
    assert spec == expected

    assert deployment["spec"]["replicas"] == pool["replicas"]
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    template = deployment["spec"]["template"]["metadata"]
    assert template["labels"] == {**POOL_LABELS, **pool["podLabels"]}
    assert template.get("annotations", {}) == pool["podAnnotations"]
    for key in ("nodeSelector", "tolerations", "affinity", "topologySpreadConstraints"):
        assert scheduling.get(key, type(pool[key])()) == pool[key], key
    assert scheduling.get("priorityClassName", "") == pool["priorityClassName"]
    pull = [{"name": n} for n in v["global"]["imagePullSecrets"]]
    assert scheduling.get("imagePullSecrets", []) == pull


def test_pool_service_pdb_and_api_agree_on_the_pool_pods():
    objs = kit.render(EVERYTHING_ON)
    deployment = kit.one(objs, "Deployment", "vortex-pool")
    assert deployment["spec"]["selector"]["matchLabels"] == POOL_SELECTOR
    assert deployment["spec"]["template"]["metadata"]["labels"] == POOL_LABELS
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"):
        labels = kit.one(objs, kind, "vortex-pool")["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == "pool"
        assert labels["app.kubernetes.io/name"] == "vortex"
        assert labels["helm.sh/chart"].startswith("vortex-")

    service = kit.one(objs, "Service", "vortex-pool")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == POOL_SELECTOR
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    # The pool Service selects the pool's pods and no other pod of the chart.
    selected = [
        o["metadata"]["name"]
        for o in kit.find(objs, "Deployment")
        if _matches(service["spec"]["selector"], o["spec"]["template"]["metadata"]["labels"])
    ]
    assert selected == ["vortex-pool"]

    pdb = kit.one(objs, "PodDisruptionBudget", "vortex-pool")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": POOL_SELECTOR}}
    min_pdb = kit.one(
        kit.render({"pool": {"pdb": {"minAvailable": 1, "maxUnavailable": None}}}),
        "PodDisruptionBudget",
        "vortex-pool",
    )
    assert min_pdb["spec"]["minAvailable"] == 1

    api = kit.one(objs, "Deployment", "vortex-api")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "VORTEX_POOL_SERVICE", "value": "vortex-pool"} in api["env"]
    # The API watches the pool Service's EndpointSlices in its namespace.
    role = kit.one(objs, "Role", "vortex-api")
    assert {("discovery.k8s.io", "endpointslices", verb, False) for verb in ("list", "watch")} <= (
        _rules([role], ("Role",))
    )


def test_api_may_read_invocation_records_from_runtime_pods():
    """GET /functions/{id}/logs lists a function's, the pool's and the API's own pods and reads
    their logs, in the release namespace only; the API never watches pods."""
    from vortex_api.pod_records import API_CONTAINER

    objs = kit.render()
    role = kit.one(objs, "Role", "vortex-api")
    rules = _rules([role], ("Role",))
    assert {("", "pods", "list", False), ("", "pods/log", "get", False)} <= rules
    assert ("", "pods", "watch", False) not in rules
    assert not [r for r in rules if r[1] == "pods/log" and r[2] != "get"]
    # The API's pods, where one-shot pods' records are kept: the Deployment's own selector.
    deployment = kit.one(objs, "Deployment", "vortex-api")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["name"] == API_CONTAINER
    env = {e["name"]: e.get("value") for e in container["env"]}
    selector = dict(term.split("=") for term in env["VORTEX_API_PODS"].split(","))
    assert selector == deployment["spec"]["selector"]["matchLabels"]


def test_pool_pods_are_function_pods_for_the_runtime_and_minio_network_policies():
    objs = kit.render()
    runtime = kit.one(objs, "NetworkPolicy", "vortex-functions")
    assert _matches(runtime["spec"]["podSelector"]["matchLabels"], POOL_LABELS)
    minio = kit.one(objs, "NetworkPolicy", "vortex-minio")
    readers = [
        peer
        for rule in minio["spec"]["ingress"]
        for peer in rule["from"]
        if _matches(peer["podSelector"]["matchLabels"], POOL_LABELS)
    ]
    assert readers, "MinIO would refuse the pool's pods"
    namespaces = readers[0]["namespaceSelector"]["matchExpressions"][0]["values"]
    assert "vortex" in namespaces


@pytest.mark.parametrize(
    "minio",
    [
        None,
        kit.EXTERNAL_S3["minio"],
        {**kit.EXTERNAL_S3["minio"], "external": {**kit.EXTERNAL_S3["minio"]["external"],
                                                  "endpoint": "10.1.2.3:9000"}},
        {**kit.EXTERNAL_S3["minio"], "external": {**kit.EXTERNAL_S3["minio"]["external"],
                                                  "endpoint": "minio.store.svc.cluster.local"}},
        {**kit.EXTERNAL_S3["minio"], "external": {**kit.EXTERNAL_S3["minio"]["external"],
                                                  "endpoint": "s3.example.com",
                                                  "secure": False}},
        {**kit.EXTERNAL_S3["minio"], "external": {**kit.EXTERNAL_S3["minio"]["external"],
                                                  "networkPolicyPeers": [
                                                      {"ipBlock": {"cidr": "10.0.0.0/8"}}]}},
    ],
    ids=["bundled", "external-host", "external-ip", "external-in-cluster", "external-plain",
         "external-peers"],
)  # fmt: skip
def test_pool_network_policy_is_the_egress_the_operator_gives_warm_pods(minio, monkeypatch):
    """Pool pods reach DNS and MinIO only, through the same peers and port as the operator's
    per-function NetworkPolicy, with the operator's settings read from its rendered Deployment."""
    from vortex_operator import manifests
    from vortex_operator.settings import Settings

    objs = kit.render({"minio": minio} if minio else None)
    policy = kit.one(objs, "NetworkPolicy", "vortex-pool")
    assert policy["spec"]["podSelector"] == {"matchLabels": POOL_SELECTOR}
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]

    operator = kit.one(objs, "Deployment", "vortex-operator")["spec"]["template"]["spec"]
    for name in list(os.environ):
        if name.startswith(("VORTEX_OPERATOR_", "MINIO_")):
            monkeypatch.delenv(name)
    for entry in operator["containers"][0]["env"]:
        if "value" in entry:
            monkeypatch.setenv(entry["name"], entry["value"])
    settings = Settings()
    peers, port = manifests.minio_peers(settings)
    dns, to_minio = policy["spec"]["egress"]
    assert dns == {
        "to": settings.dns_peers,
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    }
    assert to_minio == {"to": peers, "ports": [{"port": port, "protocol": "TCP"}]}
    if not minio:
        assert port == 9000

    [ingress] = policy["spec"]["ingress"]
    assert ingress["ports"] == [{"port": 8080, "protocol": "TCP"}]
    api_pods = {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": "vortex",
                "app.kubernetes.io/instance": "vortex",
                "app.kubernetes.io/component": "api",
            }
        }
    }
    scrapers = _values(None)["global"]["metricsScrapers"]
    assert ingress["from"] == [api_pods, *scrapers]
    api = kit.one(objs, "Deployment", "vortex-api")["spec"]["template"]["metadata"]["labels"]
    assert _matches(api_pods["podSelector"]["matchLabels"], api)


def test_pool_off_renders_no_pool_and_tells_the_api_none():
    objs = kit.render({"pool": {"enabled": False}})
    assert not [o for o in objs if o["metadata"]["name"] == "vortex-pool"]
    env = kit.one(objs, "Deployment", "vortex-api")["spec"]["template"]["spec"]["containers"][0][
        "env"
    ]
    assert "VORTEX_POOL_SERVICE" not in {e["name"] for e in env}
    no_policies = kit.render(
        {"pool": {"networkPolicy": {"enabled": False}, "pdb": {"enabled": False}}}
    )
    assert not kit.find(no_policies, "NetworkPolicy", "vortex-pool")
    assert not kit.find(no_policies, "PodDisruptionBudget", "vortex-pool")
    assert kit.find(no_policies, "Deployment", "vortex-pool")


@pytest.mark.parametrize(
    ("budget", "limit", "ok"),
    [(512, "1Gi", True), (1024, "1Gi", False), (1024, "1073741824", False),
     (900, "900M", False), (800, "900M", True), (4096, "1.5Gi", True)],
)  # fmt: skip
def test_pool_memory_budget_must_stay_below_the_memory_limit(budget, limit, ok):
    values = {"pool": {"memoryBudgetMb": budget, "resources": {"limits": {"memory": limit}}}}
    proc = kit.template(values, check=False)
    if ok:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode != 0
        assert "pool.memoryBudgetMb" in proc.stderr
        assert "memory limit" in proc.stderr


# -- the NATS queue -------------------------------------------------------------------------------

NATS_SELECTOR = {
    "app.kubernetes.io/name": "vortex",
    "app.kubernetes.io/instance": "vortex",
    "app.kubernetes.io/component": "nats",
}


def _api_env(objs: list[dict[str, Any]], name: str = "vortex-api") -> dict[str, str | None]:
    api = kit.one(objs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in api["env"]}


def test_nats_statefulset_runs_one_jetstream_server_behind_its_service():
    objs = kit.render()
    sts = kit.one(objs, "StatefulSet", "vortex-nats")
    assert sts["metadata"]["labels"]["app.kubernetes.io/component"] == "nats"
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["selector"]["matchLabels"] == NATS_SELECTOR
    assert sts["spec"]["serviceName"] == "vortex-nats"
    assert "volumeClaimTemplates" not in sts["spec"]
    pod = sts["spec"]["template"]
    assert _matches(NATS_SELECTOR, pod["metadata"]["labels"])
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "vortex-nats"
    assert spec["automountServiceAccountToken"] is False
    [c] = spec["containers"]
    assert c["image"] == "nats:2.15.3"
    # The official image's entrypoint is nats-server: only arguments are given.
    assert "command" not in c
    assert {"-js", "-sd=/data", "-p=4222", "-m=8222", "--config=/etc/nats/nats.conf"} <= set(
        c["args"]
    )
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"client": 4222, "monitor": 8222}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["port"] == "monitor", probe
        assert c[probe]["httpGet"]["path"].startswith("/healthz"), probe
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts == {"data": "/data", "config": "/etc/nats"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["data"]["emptyDir"] == {"sizeLimit": "2Gi"}
    assert volumes["config"]["configMap"]["name"] == "vortex-nats"
    config = kit.one(objs, "ConfigMap", "vortex-nats")["data"]["nats.conf"]
    assert "max_memory_store: 64MB" in config
    assert "max_file_store: 1GB" in config

    service = kit.one(objs, "Service", "vortex-nats")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == NATS_SELECTOR
    assert {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        "client": (4222, "client"),
        "monitor": (8222, "monitor"),
    }
    # The Service selects the NATS pod and no other pod of the chart.
    selected = [
        o["metadata"]["name"]
        for o in [*kit.find(objs, "Deployment"), *kit.find(objs, "StatefulSet")]
        if _matches(service["spec"]["selector"], o["spec"]["template"]["metadata"]["labels"])
    ]
    assert selected == ["vortex-nats"]

    env = _api_env(objs)
    assert env["VORTEX_ASYNC_QUEUE"] == "nats"
    assert env["VORTEX_NATS_URL"] == "nats://vortex-nats.vortex.svc:4222"
    assert "VORTEX_ASYNC_WORKERS" not in env


def test_nats_limits_and_persistence_are_configurable():
    values = {
        "nats": {
            "jetstream": {"maxMemoryStore": "16MB", "maxFileStore": "8GB"},
            "persistence": {
                "enabled": True,
                "size": "10Gi",
                "storageClass": "fast",
                "accessModes": ["ReadWriteOncePod"],
            },
        }
    }
    objs = kit.render(values)
    sts = kit.one(objs, "StatefulSet", "vortex-nats")
    [claim] = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOncePod"],
        "storageClassName": "fast",
        "resources": {"requests": {"storage": "10Gi"}},
    }
    # The claim is the data volume: no emptyDir beside it, and no claim of the chart's own.
    assert "data" not in {v["name"] for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert not [
        o for o in kit.find(objs, "PersistentVolumeClaim") if "nats" in o["metadata"]["name"]
    ]
    config = kit.one(objs, "ConfigMap", "vortex-nats")["data"]["nats.conf"]
    assert "max_memory_store: 16MB" in config
    assert "max_file_store: 8GB" in config
    # A change of the limits restarts the server (it reads its file at start only).
    checksum = sts["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    default = kit.one(kit.render(), "StatefulSet", "vortex-nats")["spec"]["template"]
    assert default["metadata"]["annotations"]["checksum/config"] != checksum
    no_class = kit.render({"nats": {"persistence": {"enabled": True, "storageClass": "-"}}})
    [claim] = kit.one(no_class, "StatefulSet", "vortex-nats")["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == ""


def test_nats_off_renders_no_nats_and_the_api_has_no_queue():
    objs = kit.render({"nats": {"enabled": False}})
    assert not [o for o in objs if o["metadata"]["name"] == "vortex-nats"]
    assert not [
        o
        for o in objs
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "nats"
    ]
    env = _api_env(objs)
    assert env["VORTEX_ASYNC_QUEUE"] == "none"
    assert "VORTEX_NATS_URL" not in env
    no_policy = kit.render({"nats": {"networkPolicy": {"enabled": False}}})
    assert not kit.find(no_policy, "NetworkPolicy", "vortex-nats")
    assert kit.find(no_policy, "StatefulSet", "vortex-nats")


def test_external_nats_is_what_the_api_uses():
    url = "nats://queue.messaging.svc.cluster.local:4222"
    objs = kit.render({"nats": {"enabled": False, "external": {"url": url}}})
    assert not kit.find(objs, "StatefulSet")
    env = _api_env(objs)
    assert env["VORTEX_ASYNC_QUEUE"] == "nats"
    assert env["VORTEX_NATS_URL"] == url
    # The bundled server wins while it is on.
    bundled = _api_env(kit.render({"nats": {"external": {"url": url}}}))
    assert bundled["VORTEX_NATS_URL"] == "nats://vortex-nats.vortex.svc:4222"


def test_api_async_workers_is_passed_on_when_set():
    env = _api_env(kit.render({"api": {"asyncWorkers": 7}}))
    assert env["VORTEX_ASYNC_WORKERS"] == "7"


def test_nats_network_policy_admits_only_the_api_pods_on_the_client_port():
    objs = kit.render()
    policy = kit.one(objs, "NetworkPolicy", "vortex-nats")
    assert policy["spec"]["podSelector"] == {"matchLabels": NATS_SELECTOR}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "client", "protocol": "TCP"}]
    [peer] = rule["from"]
    assert set(peer) == {"podSelector"}, "the release namespace's pods only"
    selector = peer["podSelector"]["matchLabels"]
    pods = {
        f"{o['kind']}/{o['metadata']['name']}": o["spec"]["template"]["metadata"]["labels"]
        for o in [*kit.find(objs, "Deployment"), *kit.find(objs, "StatefulSet")]
    }
    admitted = sorted(name for name, labels in pods.items() if _matches(selector, labels))
    assert admitted == ["Deployment/vortex-api"]
    # The policy selects the NATS pod; the client port it opens is the container's.
    sts = kit.one(objs, "StatefulSet", "vortex-nats")["spec"]["template"]
    assert _matches(NATS_SELECTOR, sts["metadata"]["labels"])
    assert "client" in {p["name"] for p in sts["spec"]["containers"][0]["ports"]}
    # The API's own policy limits its ingress only: its way to NATS stays open.
    assert kit.one(objs, "NetworkPolicy", "vortex-api")["spec"]["policyTypes"] == ["Ingress"]


def test_nats_statefulset_name_leaves_room_for_the_revision_label():
    objs = kit.render({"fullnameOverride": "x" * 48})  # the longest the schema takes
    name = kit.one(objs, "StatefulSet")["metadata"]["name"]
    # The controller labels each pod `<name>-<10-character hash>`, at most 63 characters.
    assert len(name) + 11 <= 63, name
    api_env = _api_env(objs, "x" * 48 + "-api")
    assert api_env["VORTEX_NATS_URL"] == f"nats://{name}.vortex.svc:4222"


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


def _row_queries(title: str) -> tuple[list[str], set[str]]:
    """The queries of the dashboard row `title` (its panels up to the next row), and the
    metrics they name."""
    board = kit.dashboard()
    row = next(p for p in board["panels"] if p["type"] == "row" and p["title"] == title)
    after = board["panels"][board["panels"].index(row) + 1 :]
    panels = after[: next((i for i, p in enumerate(after) if p["type"] == "row"), len(after))]
    queries = [t["expr"] for p in panels for t in p["targets"]]
    return queries, set().union(*(kit.metric_names(q) for q in queries))


def test_pool_panels_select_the_pool_pods_by_the_monitors_component_label():
    queries, names = _row_queries("Pool")
    assert {
        "vortex_runtime_functions_loaded",
        "vortex_runtime_isolates",
        "vortex_runtime_isolate_recycles_total",
        "vortex_runtime_cold_starts_total",
    } <= names
    for expr in queries:
        selectors = re.findall(r"vortex_[a-z0-9_]+\{([^}]*)\}", expr)
        assert selectors, expr
        assert all('component="pool"' in s for s in selectors), expr
    assert any('reason="evicted"' in q for q in queries)
    assert any("sum by (kind)" in q for q in queries)
    # The label the panels select by is the one the PodMonitor copies from the pool's pods.
    pm = kit.one(kit.render(EVERYTHING_ON), "PodMonitor")
    targets = {r.get("targetLabel") for r in pm["spec"]["podMetricsEndpoints"][0]["relabelings"]}
    assert "component" in targets


def test_async_panels_count_the_shared_queue_once_and_its_counters_by_function():
    """Every API replica reports the whole shared queue: its gauges are taken once (max over the
    replicas) before any sum. The counters are each replica's own: summed."""
    queries, names = _row_queries("Async")
    assert {
        "vortex_async_attempts_total",
        "vortex_async_dead_letters_total",
        "vortex_async_start_delay_seconds_bucket",
        "vortex_async_queue_depth",
        "vortex_async_queue_oldest_age_seconds",
    } <= names
    for expr in queries:
        for gauge in ("vortex_async_queue_depth", "vortex_async_queue_oldest_age_seconds"):
            if gauge in expr:
                assert re.search(rf"max by \([^)]*\) \({gauge}\b", expr), expr
        assert re.search(r'vortex_async_[a-z_]+\{function=~"\$function"\}', expr), expr
