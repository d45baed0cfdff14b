"""Pure translations: VortexFunction <-> Function, EndpointSlice -> URLs, one-shot Pod."""

from __future__ import annotations

from vortex_api.functions import Function
from vortex_api.k8s_objects import (
    function_body,
    function_from_object,
    one_shot_pod,
    slice_endpoints,
)
from vortex_api.models import DeployRequest
from vortex_api.settings import Settings


def test_slice_endpoints_reads_ready_addresses_and_port() -> None:
    obj = {
        "metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "vf-fn"}},
        "ports": [{"name": "metrics", "port": 9090}, {"name": "http", "port": 8081}],
        "endpoints": [
            {"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
            {"addresses": ["10.0.0.2"]},
            {"addresses": ["10.0.0.3"], "conditions": {"ready": False}},
            {"addresses": ["10.0.0.4"], "conditions": {"ready": True, "terminating": True}},
            {"addresses": ["fd00::5"], "conditions": {"ready": True}},
        ],
    }
    assert slice_endpoints(obj, 8080) == (
        "fn",
        ["http://10.0.0.1:8081", "http://10.0.0.2:8081", "http://[fd00::5]:8081"],
    )


def test_slice_of_another_service_is_ignored() -> None:
    obj = {"metadata": {"labels": {"kubernetes.io/service-name": "kube-dns"}}, "endpoints": []}
    assert slice_endpoints(obj, 8080) == (None, [])
    assert slice_endpoints({"metadata": {}}, 8080) == (None, [])


def test_function_from_object() -> None:
    obj = {
        "metadata": {"name": "fn", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {
            "timeoutMs": 900,
            "memoryMb": 64,
            "concurrency": 4,
            "replicas": 3,
            "isolation": "warm",
            "env": [
                {"name": "A", "value": "1"},
                {"name": "S", "valueFrom": {"secretKeyRef": {"name": "x", "key": "y"}}},
            ],
        },
        "status": {
            "phase": "Ready",
            "readyReplicas": 2,
            "codeSha256": "c" * 64,
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    fn = function_from_object(obj, Settings())
    assert (fn.function_id, fn.timeout_ms, fn.memory_mb) == ("fn", 900, 64)
    assert fn.env == {"A": "1", "S": "<from secret>"}
    assert fn.ready is True
    assert fn.inflight_cap == 8  # concurrency per ready replica
    assert fn.code_sha256 == "c" * 64
    assert ("x-vortex-timeout-ms", "900") in fn.runtime_headers
    assert all(name != "x-vortex-env" for name, _ in fn.runtime_headers)


def test_defaults_for_a_bare_object() -> None:
    fn = function_from_object({"metadata": {"name": "bare"}}, Settings(default_timeout_ms=1234))
    assert (fn.timeout_ms, fn.isolation, fn.ready, fn.phase) == (1234, "shared", False, "Pending")
    assert fn.inflight_cap is None


def test_function_body_omits_unset_fields() -> None:
    body = function_body("n", "ns", DeployRequest(code="return 1;"), Settings())
    assert body["spec"] == {
        "code": "return 1;",
        "timeoutMs": 5000,
        "memoryMb": 128,
        "env": [],
        "isolation": "shared",
    }
    assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "vortex-api"}


def test_a_shared_function_sends_its_env_and_code_hash_and_is_capped_per_api_replica() -> None:
    obj = {
        "metadata": {"name": "sh", "generation": 3},
        "spec": {"concurrency": 5, "replicas": 3, "env": [{"name": "A", "value": "1"}]},
        "status": {
            "observedGeneration": 3,
            "codeSha256": "d" * 64,
            "codeObject": f"functions/{'d' * 64}.js",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Pooled"}],
        },
    }
    fn = function_from_object(obj, Settings())
    assert fn.isolation == "shared"
    assert fn.ready is True
    assert fn.ready_reason == "Pooled"
    assert (fn.generation, fn.observed_generation) == (3, 3)
    assert fn.inflight_cap == 5  # replicas are warm pods: not the pool's
    assert ("x-vortex-env", '{"A":"1"}') in fn.runtime_headers
    assert ("x-vortex-code-sha256", "d" * 64) in fn.runtime_headers
    assert fn.blocked is None


def test_a_shared_function_reading_env_from_a_secret_cannot_run() -> None:
    env = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "x", "key": "y"}}}]
    fn = function_from_object(
        {"metadata": {"name": "s"}, "spec": {"env": env}, "status": {"codeSha256": "e" * 64}},
        Settings(),
    )
    assert fn.blocked is not None
    reason, message, _ = fn.blocked
    assert reason == "EnvNotPooled"
    assert "T uses valueFrom" in message


def test_pool_slices_are_the_pool_group() -> None:
    from tests.unit.api.kube_fixtures import POOL_SERVICE, pool_slice
    from vortex_api.k8s_objects import POOL_GROUP

    urls = ["http://10.1.0.1:8080", "http://10.1.0.2:8080"]
    obj = pool_slice("10.1.0.1", "10.1.0.2")
    assert slice_endpoints(obj, 8080, POOL_SERVICE) == (POOL_GROUP, urls)
    assert slice_endpoints(obj, 8080) == (None, [])


def test_one_shot_pod_defaults_and_secret_credentials() -> None:
    fn = Function(function_id="f", timeout_ms=1500, memory_mb=64, code_object="functions/x.js")
    settings = Settings(minio_secret_name="minio-creds", pod_deadline_extra_s=2)
    pod = one_shot_pod(fn, "vf-f-1", "1", settings)
    container = pod["spec"]["containers"][0]
    assert pod["spec"]["activeDeadlineSeconds"] == 4
    assert container["resources"]["limits"] == {"memory": "192Mi"}
    env = {e["name"]: e for e in container["env"]}
    assert env["MINIO_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "minio-creds",
        "key": "MINIO_SECRET_KEY",
    }
    assert "value" not in env["MINIO_ACCESS_KEY"]


def test_an_autoscaled_function_carries_its_scale_and_the_autoscaler_status() -> None:
    obj = {
        "metadata": {"name": "hot"},
        "spec": {
            "isolation": "warm",
            "concurrency": 10,
            "replicas": 3,
            "scale": {"maxReplicas": 8},
        },
        "status": {"readyReplicas": 2, "desiredReplicas": 3, "observedConcurrency": 12.5},
    }
    info = function_from_object(obj, Settings()).info()
    assert info.spec.scale is not None
    assert info.spec.scale.model_dump() == {
        "min_replicas": 1,
        "max_replicas": 8,
        "target_concurrency": 7.0,
    }
    assert (info.status.desired_replicas, info.status.observed_concurrency) == (3, 12.5)
    plain = function_from_object({"metadata": {"name": "p"}}, Settings()).info()
    assert plain.spec.scale is None
    assert plain.status.desired_replicas is None
