"""Every runtime pod (warm pods from the operator, one-shot pods from the API, the shared pool's
pods from the chart) comes from one builder with one hardening, which Pod Security `restricted`
admits, and never carries MinIO keys inline."""

from __future__ import annotations

import os
from typing import Any

import pytest

from vortex_api.functions import Function
from vortex_api.k8s_objects import one_shot_pod
from vortex_api.settings import Settings as ApiSettings
from vortex_kube.contract import FunctionSpec
from vortex_kube.podspec import (
    Platform,
    RuntimeCode,
    one_shot_pod_spec,
    pool_pod_spec,
    warm_pod_spec,
)
from vortex_operator import manifests
from vortex_operator.model import FunctionRef
from vortex_operator.settings import Settings as OperatorSettings
from vortex_runtime.settings import MinioSettings, RuntimeSettings

SHA = "c" * 64
MINIO = MinioSettings(endpoint="minio.vortex.svc:9000", bucket="code", secure=True)
_ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "projected",
                    "secret", "persistentVolumeClaim"}  # fmt: skip


def restricted_violations(pod_spec: dict[str, Any]) -> list[str]:
    """What Pod Security `restricted` (v1.x) would refuse in a pod spec."""
    found = []
    pod_sc = pod_spec.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(key):
            found.append(key)
    for volume in pod_spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= _ALLOWED_VOLUMES:
            found.append(f"volume {volume['name']}: {kinds}")
    for c in pod_spec["containers"] + pod_spec.get("initContainers", []):
        sc = c.get("securityContext") or {}
        name = c["name"]
        if sc.get("privileged"):
            found.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            found.append(f"{name}: capabilities not dropped")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: capabilities added")
        if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
            found.append(f"{name}: runAsNonRoot")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            found.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccomp {seccomp}")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                found.append(f"{name}: hostPort")
    return found


def warm() -> dict[str, Any]:
    settings = OperatorSettings(minio=MINIO, runtime_image="r/runtime:1")
    spec = FunctionSpec.parse({"code": "return 1;", "env": [{"name": "A", "value": "1"}]})
    ref = FunctionRef("ns", "hello", "uid-1", 1)
    return dict(manifests.deployment(ref, spec, SHA, settings)["spec"]["template"]["spec"])


def one_shot(secret_name: str | None = None) -> dict[str, Any]:
    settings = ApiSettings(minio=MINIO, runtime_image="r/runtime:1", minio_secret_name=secret_name)
    fn = Function(
        function_id="hello",
        timeout_ms=1500,
        memory_mb=64,
        code_object=f"functions/{SHA}.js",
        code_sha256=SHA,
        env_spec=[{"name": "A", "value": "1"}],
    )
    return dict(one_shot_pod(fn, "vf-hello-1", "1", settings)["spec"])


def pool(**overrides: Any) -> dict[str, Any]:
    settings = OperatorSettings(minio=MINIO, runtime_image="r/runtime:1")
    kwargs: dict[str, Any] = {
        "memory_budget_mb": 512,
        "isolates_per_function": 8,
        "prewarm_isolates": 2,
        "resources": {"requests": {"memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "drain_s": settings.drain_seconds,
        "grace_s": 60,
        "secret": "minio-read",
        **overrides,
    }
    return pool_pod_spec(settings.platform(), **kwargs)


@pytest.mark.parametrize("build", [warm, one_shot, pool], ids=["warm", "one-shot", "pool"])
def test_runtime_pods_pass_pod_security_restricted(build: Any) -> None:
    assert restricted_violations(build()) == []


@pytest.mark.parametrize("build", [warm, one_shot], ids=["warm", "one-shot"])
def test_runtime_pods_are_hardened_alike(build: Any) -> None:
    spec = build()
    [container] = spec["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 10001
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in spec["volumes"])
    env = {e["name"]: e for e in container["env"]}
    assert env["MINIO_SECURE"]["value"] == "true"
    assert env["MINIO_ENDPOINT"]["value"] == "minio.vortex.svc:9000"
    for key in ("MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"):
        assert "value" not in env[key]
        assert env[key]["valueFrom"]["secretKeyRef"]["key"] == key
    assert env["VORTEX_ENV_A"]["value"] == "1"


def test_warm_and_one_shot_pods_share_everything_but_their_lifecycle() -> None:
    w, o = warm(), one_shot()
    for key in ("securityContext", "volumes", "automountServiceAccountToken"):
        assert w[key] == o[key]
    [wc], [oc] = w["containers"], o["containers"]
    for key in ("securityContext", "volumeMounts", "readinessProbe", "ports", "image"):
        assert wc[key] == oc[key]
    assert o["restartPolicy"] == "Never"
    assert "livenessProbe" in wc
    assert "livenessProbe" not in oc


def test_one_shot_pods_read_keys_from_the_function_secret_unless_one_is_named() -> None:
    def secret_of(spec: dict[str, Any]) -> set[str]:
        env = spec["containers"][0]["env"]
        return {e["valueFrom"]["secretKeyRef"]["name"] for e in env if "valueFrom" in e}

    assert secret_of(one_shot()) == {"vf-hello"}
    assert secret_of(one_shot("minio-creds")) == {"minio-creds"}


def test_one_shot_deadline_and_default_resources() -> None:
    platform = Platform(image="i", minio_endpoint="m:9000", minio_bucket="b")
    code = RuntimeCode("f", "functions/x.js", "x", timeout_ms=1500, memory_mb=64, secret="vf-f")
    spec = one_shot_pod_spec(platform, code, resources=None, deadline_extra_s=2)
    assert spec["activeDeadlineSeconds"] == 4
    assert spec["containers"][0]["resources"]["limits"] == {"memory": "192Mi"}
    warm_spec = warm_pod_spec(platform, code, pool_size=3, resources={}, drain_s=2)
    assert warm_spec["terminationGracePeriodSeconds"] == 2 + 2 + 2
    env = {e["name"]: e.get("value") for e in warm_spec["containers"][0]["env"]}
    assert env["VORTEX_POOL_SIZE"] == "3"


def test_pool_pods_are_hardened_and_probed_like_warm_pods() -> None:
    w, p = warm(), pool()
    for key in ("securityContext", "volumes", "automountServiceAccountToken", "enableServiceLinks"):
        assert p[key] == w[key]
    [wc], [pc] = w["containers"], p["containers"]
    for key in (
        "name",
        "image",
        "imagePullPolicy",
        "args",
        "ports",
        "securityContext",
        "volumeMounts",
        "readinessProbe",
        "livenessProbe",
        "lifecycle",
        "terminationMessagePolicy",
    ):
        assert pc[key] == wc[key], key
    assert p["terminationGracePeriodSeconds"] == 60
    assert "restartPolicy" not in p


def test_pool_env_is_what_the_runtime_reads_in_many_function_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [container] = pool(memory_budget_mb=300, isolates_per_function=3, prewarm_isolates=0)[
        "containers"
    ]
    env = {e["name"]: e for e in container["env"]}
    # No code object of its own: the pool serves functions by code key.
    assert not {"VORTEX_CODE_KEY", "VORTEX_CODE_SHA256", "VORTEX_FUNCTION_NAME"} & set(env)
    for key in ("MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"):
        assert "value" not in env[key]
        assert env[key]["valueFrom"] == {"secretKeyRef": {"name": "minio-read", "key": key}}
    for name in list(os.environ):
        if name.startswith(("VORTEX_", "MINIO_")):
            monkeypatch.delenv(name)
    for name, entry in env.items():
        if "value" in entry:
            monkeypatch.setenv(name, entry["value"])
    runtime, minio = RuntimeSettings(), MinioSettings()
    assert runtime.use_minio is True
    assert runtime.code_key is None
    assert runtime.runtime_port == 8080
    assert (runtime.memory_budget_mb, runtime.pool_size, runtime.prewarm_isolates) == (300, 3, 0)
    assert (minio.endpoint, minio.bucket, minio.secure) == ("minio.vortex.svc:9000", "code", True)
    # Every VORTEX_* variable names a setting of the runtime (a typo would be ignored silently).
    fields = {f"VORTEX_{name.upper()}" for name in RuntimeSettings.model_fields}
    assert {n for n in env if n.startswith("VORTEX_")} <= fields


def test_pool_without_drain_has_no_pre_stop() -> None:
    [container] = pool(drain_s=0)["containers"]
    assert "lifecycle" not in container
    assert container["resources"] == {
        "requests": {"memory": "256Mi"},
        "limits": {"memory": "1Gi"},
    }
