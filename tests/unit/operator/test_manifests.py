"""manifests: hardened warm pods, code hash in the template, keys only by reference, egress."""

from __future__ import annotations

import base64
import json

from vortex_kube.contract import FunctionSpec
from vortex_operator import manifests
from vortex_operator.model import FunctionRef
from vortex_operator.settings import Settings
from vortex_runtime.settings import MinioSettings

REF = FunctionRef("fns", "hello", "uid-1", 1)
SHA = "b" * 64


def settings(
    minio_endpoint: str = "10.201.0.1:9000", minio_secure: bool = False, **overrides
) -> Settings:
    minio = MinioSettings(
        endpoint=minio_endpoint,
        access_key="op-access",
        secret_key="op-secret",
        secure=minio_secure,
    )
    return Settings(minio=minio, **overrides)


def spec(**fields) -> FunctionSpec:
    return FunctionSpec.parse({"code": "return 1;", "isolation": "warm", **fields})


def test_children_are_owned_by_the_function() -> None:
    objs = manifests.children(REF, spec(), SHA, settings())
    assert [o["kind"] for o in objs] == ["Secret", "NetworkPolicy", "Service", "Deployment"]
    for obj in objs:
        assert obj["metadata"]["name"] == "vf-hello"
        assert obj["metadata"]["namespace"] == "fns"
        [owner] = obj["metadata"]["ownerReferences"]
        assert owner["uid"] == "uid-1"
        assert owner["kind"] == "VortexFunction"
        assert owner["apiVersion"] == "vortex.dev/v1alpha1"
        assert owner["controller"] is True
        assert obj["metadata"]["labels"]["vortex.dev/function"] == "hello"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "vortex-operator"


def test_pod_template_carries_code_hash_and_readme_labels() -> None:
    dep = manifests.deployment(REF, spec(replicas=3), SHA, settings())
    template = dep["spec"]["template"]
    assert template["metadata"]["annotations"] == {"vortex.dev/code-sha256": SHA}
    assert template["metadata"]["labels"]["app.kubernetes.io/name"] == "vortex-function"
    assert template["metadata"]["labels"]["vortex.dev/function"] == "hello"
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_pods_are_hardened() -> None:
    pod = manifests.deployment(REF, spec(), SHA, settings())["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsUser"] == 10001
    assert container["resources"] == {
        "requests": {"cpu": "25m", "memory": "128Mi"},
        "limits": {"cpu": "1", "memory": "512Mi"},
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["readinessProbe"]["periodSeconds"] == 1
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": 2}}
    assert pod["terminationGracePeriodSeconds"] >= 2 + 5


def test_minio_keys_are_referenced_never_inlined() -> None:
    dep = manifests.deployment(REF, spec(), SHA, settings())
    text = json.dumps(dep)
    assert "op-access" not in text
    assert "op-secret" not in text
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MINIO_ACCESS_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "vf-hello", "key": "MINIO_ACCESS_KEY"}
    }
    secret = manifests.secret(REF, settings())
    assert base64.b64decode(secret["data"]["MINIO_SECRET_KEY"]) == b"op-secret"


def test_runtime_pods_can_get_read_only_keys() -> None:
    secret = manifests.secret(
        REF, settings(runtime_minio_access_key="reader", runtime_minio_secret_key="reader-secret")
    )
    assert base64.b64decode(secret["data"]["MINIO_ACCESS_KEY"]) == b"reader"


def test_runtime_environment() -> None:
    fn = spec(
        timeoutMs=900,
        memoryMb=64,
        concurrency=3,
        env=[
            {"name": "GREETING", "value": "hi"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ],
    )
    [container] = manifests.deployment(REF, fn, SHA, settings())["spec"]["template"]["spec"][
        "containers"
    ]
    env = {e["name"]: e for e in container["env"]}
    assert env["VORTEX_CODE_KEY"]["value"] == f"functions/{SHA}.js"
    assert env["VORTEX_CODE_SHA256"]["value"] == SHA
    assert env["VORTEX_TIMEOUT_MS"]["value"] == "900"
    assert env["VORTEX_MEMORY_MB"]["value"] == "64"
    assert env["VORTEX_POOL_SIZE"]["value"] == "3"
    assert env["VORTEX_FUNCTION_NAME"]["value"] == "hello"
    assert env["MINIO_ENDPOINT"]["value"] == "10.201.0.1:9000"
    assert env["VORTEX_ENV_GREETING"] == {"name": "VORTEX_ENV_GREETING", "value": "hi"}
    assert env["VORTEX_ENV_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "s", "key": "k"}}


def test_service_port_80_to_http() -> None:
    svc = manifests.service(REF, settings())
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert svc["spec"]["selector"] == {
        "vortex.dev/function": "hello",
        "vortex.dev/isolation": "warm",
    }


def test_network_policy_allows_only_dns_and_minio() -> None:
    policy = manifests.network_policy(REF, settings())
    assert policy["spec"]["policyTypes"] == ["Egress"]
    assert policy["spec"]["podSelector"] == {"matchLabels": {"vortex.dev/function": "hello"}}
    dns, minio = policy["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert minio == {
        "to": [{"ipBlock": {"cidr": "10.201.0.1/32"}}],
        "ports": [{"protocol": "TCP", "port": 9000}],
    }


def test_minio_peers_from_a_service_name_or_settings() -> None:
    peers, port = manifests.minio_peers(settings(minio_endpoint="minio.storage.svc:9000"))
    assert port == 9000
    assert peers == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "storage"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "minio"}},
        }
    ]
    custom = [{"ipBlock": {"cidr": "10.0.0.0/8"}}]
    assert manifests.minio_peers(settings(minio_peers=custom, minio_port=9443)) == (custom, 9443)
    assert manifests.minio_peers(settings(minio_endpoint="s3.example.com", minio_secure=True)) == (
        [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
        443,
    )


def test_isolation_pod_has_no_warm_children() -> None:
    objs = manifests.children(REF, spec(isolation="pod"), SHA, settings())
    assert [o["kind"] for o in objs] == ["Secret", "NetworkPolicy"]
    assert manifests.unwanted(spec(isolation="pod"))


EGRESS = {
    "allow": [
        "api.example.com:443",
        "db.data.svc.cluster.local:5432",
        "*.svc.cluster.local",
        "10.1.0.0/16:8080",
    ]
}


def test_network_policy_adds_what_the_egress_rules_name() -> None:
    spec = FunctionSpec.parse({"code": "return 1", "isolation": "warm", "egress": EGRESS})
    policy = manifests.network_policy(REF, settings(), spec)
    _, _, public, data, cluster, block = policy["spec"]["egress"]
    assert public["ports"] == [{"protocol": "TCP", "port": 443}]
    (peer,) = public["to"]
    assert peer["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert {"10.0.0.0/8", "169.254.0.0/16", "127.0.0.0/8"} <= set(peer["ipBlock"]["except"])
    assert data == {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "data"}}}],
        "ports": [{"protocol": "TCP", "port": 5432}],
    }
    assert cluster == {"to": [{"namespaceSelector": {}}]}
    assert block == {
        "to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}],
        "ports": [{"protocol": "TCP", "port": 8080}],
    }


def test_a_shared_function_with_egress_opens_it_on_the_pool_pods() -> None:
    spec = FunctionSpec.parse({"code": "return 1", "isolation": "shared", "egress": EGRESS})
    (policy,) = manifests.children(REF, spec, "0" * 64, settings())
    assert policy["kind"] == "NetworkPolicy"
    assert policy["spec"]["podSelector"] == {
        "matchLabels": {
            "app.kubernetes.io/name": "vortex-function",
            "app.kubernetes.io/component": "pool",
        }
    }
    assert len(policy["spec"]["egress"]) == 4
    assert ("NetworkPolicy", "isolation is shared") not in manifests.unwanted(spec)
    plain = FunctionSpec.parse({"code": "return 1", "isolation": "shared"})
    assert manifests.children(REF, plain, "0" * 64, settings()) == []
    assert ("NetworkPolicy", "isolation is shared") in manifests.unwanted(plain)
