"""A function's life on the real cluster, with the operator as a local `kopf run` process, the
real API (kubernetes backend) and the shared pool: apply, execute, move between the pool and warm
pods, roll, reject bad code, scale, heal, delete."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from tests.integration.operator.conftest import Stack
from vortex_runtime import sha256_hex

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(300)]


def messages(response_json: dict[str, Any]) -> list[str]:
    return [entry["message"] for entry in response_json["logs"]]


def test_hello_example_is_pooled_with_no_pod_of_its_own_and_executes(stack: Stack) -> None:
    pool_pods = {p["metadata"]["name"] for p in stack.pool_pods()}
    name = stack.apply_example("hello")
    fn = stack.wait_ready(name)

    status = fn["status"]
    assert fn["spec"]["isolation"] == "shared"  # the CRD's default
    assert status["phase"] == "Ready"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "Pooled"
    code = fn["spec"]["code"]
    assert status["codeSha256"] == sha256_hex(code.encode())
    assert status["codeObject"] == f"functions/{status['codeSha256']}.js"
    assert status["codeObject"] in stack.code_objects()
    assert "replicasSummary" not in status
    assert stack.pods(name, isolation=None) == []
    for kind in ("deployment", "service", "networkpolicy", "secret"):
        assert stack.get(kind, f"vf-{name}") is None, kind

    printed = stack.kubectl("get", "vf", name).stdout.split("\n")[1].split()
    assert printed[:3] == [name, "True", "shared"]
    assert status["codeSha256"][:12] in printed

    response = stack.execute_until_ok(name)
    assert response.json()["output"] == 42
    assert messages(response.json()) == ["Hello Vortex!"]
    assert {p["metadata"]["name"] for p in stack.pool_pods()} == pool_pods  # no new pod


def test_a_function_moves_between_the_pool_and_warm_pods_with_no_failed_request(
    stack: Stack,
) -> None:
    stack.apply_function("mover", {"code": "return 'moved';"})
    stack.wait_ready("mover")
    assert stack.execute_until_ok("mover").json()["output"] == "moved"

    statuses: Counter[int] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def light_load() -> None:
        while not stop.is_set():
            response = stack.execute("mover")
            statuses[response.status_code] += 1
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text[:200]}")
            time.sleep(0.05)

    worker = threading.Thread(target=light_load)
    worker.start()
    try:
        stack.patch_spec("mover", {"isolation": "warm"})
        stack.wait_condition("mover", "Ready", "True", generation=2, timeout=120)
        stack.cluster.wait_for(
            "a warm pod of mover", lambda: stack.running_ready_pods("mover"), timeout=60
        )
        time.sleep(1)
        stack.patch_spec("mover", {"isolation": "shared"})
        fn = stack.wait_condition("mover", "Ready", "True", generation=3, timeout=60)
        ready = next(c for c in fn["status"]["conditions"] if c["type"] == "Ready")
        assert ready["reason"] == "Pooled"
        stack.cluster.wait_for(
            "mover's warm pods gone", lambda: not stack.pods("mover", isolation=None), timeout=60
        )
        time.sleep(1)
    finally:
        stop.set()
        worker.join(30)

    assert failures == []
    assert statuses[200] > 20
    assert stack.get("deployment", "vf-mover") is None


def test_async_and_event_examples(stack: Stack) -> None:
    names = [stack.apply_example("async"), stack.apply_example("event")]
    for name in names:
        stack.wait_ready(name)
    assert len(stack.running_ready_pods("greet")) == 2

    out = stack.execute_until_ok("async").json()
    assert out["output"] == {"waited": True, "idLength": 36}
    assert messages(out) == ["slept at least 50 ms"]

    out = stack.execute_until_ok("greet", {"name": "Ada"}).json()
    assert out["output"] == {"message": "Hello, Ada!", "function": "greet"}
    assert messages(out) == ["greeting Ada"]


def test_children_are_owned_hardened_and_keep_keys_out_of_specs(stack: Stack) -> None:
    stack.apply_function("owned", {"code": "return 1;", "isolation": "warm"})
    fn = stack.wait_ready("owned")
    uid = fn["metadata"]["uid"]
    for kind in ("deployment", "service", "networkpolicy", "secret"):
        obj = stack.get(kind, "vf-owned")
        assert obj is not None, kind
        [owner] = obj["metadata"]["ownerReferences"]
        assert owner["uid"] == uid
        assert owner["controller"] is True

    svc = stack.get("service", "vf-owned")
    assert svc is not None
    assert svc["spec"]["ports"][0]["port"] == 80
    assert svc["spec"]["ports"][0]["name"] == "http"

    [pod] = stack.running_ready_pods("owned")
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    [container] = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert not any(v["name"].startswith("kube-api-access") for v in spec.get("volumes", []))
    env = {e["name"]: e for e in container["env"]}
    assert "value" not in env["MINIO_SECRET_KEY"]
    assert env["MINIO_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "vf-owned"
    assert (
        stack.minio.secret_key
        not in stack.kubectl("get", "deploy", "vf-owned", "-o", "yaml").stdout
    )


def test_code_change_rolls_with_no_failed_request(stack: Stack) -> None:
    stack.apply_function("roll", {"code": "return 'v1';", "replicas": 2, "isolation": "warm"})
    stack.wait_ready("roll")
    assert stack.execute_until_ok("roll").json()["output"] == "v1"

    outputs: Counter[str] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def light_load() -> None:
        while not stop.is_set():
            response = stack.execute("roll")
            if response.status_code == 200:
                outputs[str(response.json()["output"])] += 1
            else:
                failures.append(f"{response.status_code} {response.text[:200]}")
            time.sleep(0.05)

    worker = threading.Thread(target=light_load)
    worker.start()
    try:
        time.sleep(1)
        stack.patch_spec("roll", {"code": "return 'v2';"})
        new_sha = sha256_hex(b"return 'v2';")
        fn = stack.wait_condition("roll", "Ready", "True", generation=2, timeout=120)
        assert fn["status"]["codeSha256"] == new_sha
        deadline = time.monotonic() + 30
        while outputs["v2"] < 20 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        worker.join(30)

    assert failures == []
    assert outputs["v1"] > 0
    assert outputs["v2"] >= 20
    pods = stack.running_ready_pods("roll")
    assert len(pods) == 2
    assert {p["metadata"]["annotations"]["vortex.dev/code-sha256"] for p in pods} == {new_sha}
    assert stack.execute("roll").json()["output"] == "v2"


def test_syntax_error_is_a_false_condition_and_nothing_rolls(stack: Stack) -> None:
    stack.apply_function("typo", {"code": "return 'good';", "isolation": "warm"})
    stack.wait_ready("typo")
    before = stack.get("deployment", "vf-typo")
    assert before is not None
    pods_before = {p["metadata"]["name"] for p in stack.running_ready_pods("typo")}

    stack.patch_spec("typo", {"code": "const a = 1;\nreturn a +;\n"})
    fn = stack.wait_condition("typo", "CodeStored", "False", reason="CompileError", generation=2)

    stored = next(c for c in fn["status"]["conditions"] if c["type"] == "CodeStored")
    assert stored["message"] == "line 2, column 11: SyntaxError: Unexpected token ';'"
    assert fn["status"]["compileError"]["line"] == 2
    assert fn["status"]["compileError"]["column"] == 11
    assert fn["status"]["phase"] == "Failed"
    ready = next(c for c in fn["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "CompileError"
    assert any(
        e["reason"] == "CompileError" and e["type"] == "Warning" for e in stack.events("typo")
    )

    time.sleep(2)  # give a wrong rollout the chance to start
    after = stack.get("deployment", "vf-typo")
    assert after is not None
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert {p["metadata"]["name"] for p in stack.running_ready_pods("typo")} == pods_before
    assert stack.execute("typo").json()["output"] == "good"


def test_deleted_deployment_comes_back(stack: Stack) -> None:
    stack.apply_function("phoenix", {"code": "return 'again';", "isolation": "warm"})
    stack.wait_ready("phoenix")
    old = stack.get("deployment", "vf-phoenix")
    assert old is not None

    stack.kubectl("delete", "deployment", "vf-phoenix", "--wait=false")

    def replaced() -> bool:
        new = stack.get("deployment", "vf-phoenix")
        return new is not None and new["metadata"]["uid"] != old["metadata"]["uid"]

    stack.cluster.wait_for("a new Deployment vf-phoenix", replaced, timeout=30, interval=0.2)
    stack.cluster.wait_for(
        "a ready pod of the new Deployment",
        lambda: stack.running_ready_pods("phoenix"),
        timeout=90,
    )
    stack.wait_ready("phoenix")
    assert any(e["reason"] == "Restored" for e in stack.events("phoenix"))
    assert stack.execute_until_ok("phoenix").json()["output"] == "again"


def test_hand_edited_service_is_put_back(stack: Stack) -> None:
    stack.apply_function("edited", {"code": "return 1;", "isolation": "warm"})
    stack.wait_ready("edited")
    stack.kubectl(
        "patch",
        "service",
        "vf-edited",
        "--type=json",
        "-p",
        '[{"op": "replace", "path": "/spec/ports/0/port", "value": 8081}]',
    )

    def port_is_80() -> bool:
        svc = stack.get("service", "vf-edited")
        return svc is not None and svc["spec"]["ports"][0]["port"] == 80

    stack.cluster.wait_for(
        "Service vf-edited port back at 80", port_is_80, timeout=30, interval=0.2
    )


def test_kubectl_scale_gives_three_warm_pods(stack: Stack) -> None:
    stack.apply_function("scaled", {"code": "return 'many';", "isolation": "warm"})
    stack.wait_ready("scaled")

    stack.kubectl("scale", "vf/scaled", "--replicas=3")

    stack.cluster.wait_for(
        "3 ready pods", lambda: len(stack.running_ready_pods("scaled")) == 3, timeout=120
    )
    fn = stack.wait_condition("scaled", "Ready", "True", generation=2)
    assert fn["spec"]["replicas"] == 3
    assert fn["status"]["readyReplicas"] == 3
    scale = stack.cluster.get_json("vf/scaled", "--subresource=scale", namespace=stack.namespace)
    assert scale["status"]["replicas"] == 3
    assert scale["status"]["selector"] == "vortex.dev/function=scaled,vortex.dev/isolation=warm"


def test_memory_limit_kills_the_pod_which_restarts_and_serves_again(stack: Stack) -> None:
    code = (
        "if (event && event.hog) {\n"
        "  const chunks = [];\n"
        "  for (let i = 0; i < 200; i++) chunks.push(new Float64Array(1 << 20).fill(i));\n"
        "  return chunks.length;\n"
        "}\n"
        "return 'fine';\n"
    )
    stack.apply_function(
        "hog",
        {
            "code": code,
            "memoryMb": 4096,  # the isolate may grow; the pod's limit is the one that bites
            "concurrency": 1,
            "isolation": "warm",
            "resources": {"requests": {"memory": "128Mi"}, "limits": {"memory": "200Mi"}},
        },
    )
    stack.wait_ready("hog")
    assert stack.execute_until_ok("hog", {}).json()["output"] == "fine"

    response = stack.execute("hog", {"hog": True})
    assert response.status_code >= 500

    def oom_killed() -> dict[str, Any] | None:
        for pod in stack.pods("hog"):
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                last = (cs.get("lastState") or {}).get("terminated") or {}
                if cs.get("restartCount", 0) >= 1 and last.get("reason") == "OOMKilled":
                    return pod
        return None

    pod = stack.cluster.wait_for("an OOMKilled restart", oom_killed, timeout=60)
    assert pod["spec"]["containers"][0]["resources"]["limits"]["memory"] == "200Mi"
    assert stack.execute_until_ok("hog", {}).json()["output"] == "fine"
    stack.wait_ready("hog")


def test_isolation_pod_has_no_warm_pods_and_a_runaway_gets_504(stack: Stack) -> None:
    stack.apply_function("spin", {"code": "while (true) {}", "isolation": "pod", "timeoutMs": 1000})
    fn = stack.wait_ready("spin")
    assert fn["status"]["replicasSummary"] == "one-shot"
    assert stack.get("deployment", "vf-spin") is None
    assert stack.get("service", "vf-spin") is None
    assert stack.get("networkpolicy", "vf-spin") is not None
    assert fn["status"]["codeObject"] in stack.code_objects()

    seen: list[dict[str, Any]] = []
    stop = threading.Event()

    def watch_one_shot_pods() -> None:
        while not stop.is_set():
            seen.extend(stack.pods("spin", isolation="pod"))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch_one_shot_pods)
    watcher.start()
    try:
        started = time.monotonic()
        response = stack.execute("spin", timeout=60)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        watcher.join(10)

    assert response.status_code == 504, response.text
    assert elapsed < 30
    assert seen, "no one-shot pod was seen"
    assert seen[0]["spec"]["activeDeadlineSeconds"] >= 1
    assert stack.pods("spin") == []  # never a warm pod

    def one_shot_pods_gone() -> bool:
        return stack.pods("spin", isolation="pod") == []

    stack.cluster.wait_for("one-shot pods cleaned up", one_shot_pods_gone, timeout=60)


def test_deleting_a_function_leaves_nothing_behind(stack: Stack) -> None:
    stack.apply_function("doomed", {"code": "return 'bye';", "replicas": 2, "isolation": "warm"})
    fn = stack.wait_ready("doomed")
    key = fn["status"]["codeObject"]
    assert key in stack.code_objects()
    stack.patch_spec("doomed", {"code": "return 'bye again';"})
    fn = stack.wait_condition("doomed", "Ready", "True", generation=2)
    keys = fn["status"]["codeObjects"]
    assert len(keys) == 2

    stack.kubectl("delete", "vf", "doomed", "--wait=true", "--timeout=60s", timeout=90)

    def nothing_left() -> bool:
        return stack.pods("doomed", isolation=None) == [] and all(
            stack.get(kind, "vf-doomed") is None
            for kind in ("deployment", "service", "networkpolicy", "secret")
        )

    stack.cluster.wait_for("no child of doomed left", nothing_left, timeout=90)
    assert not set(keys) & set(stack.code_objects())
