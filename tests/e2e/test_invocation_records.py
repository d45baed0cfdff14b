"""Invocation records on the real cluster, read back through the API Service.

One release with two API replicas, a warm function with two pods and a shared one in the pool.
Calls go through the API Service on a fresh connection each (so kube-proxy spreads them over both
API replicas, which the replicas' own metrics prove), several at a time (so both warm pods serve,
which their logs prove). Then a record is found by its invocation id through
`GET /functions/{id}/logs`, through the Service and from each API replica, its fields checked;
`kubectl logs` of the pod that served it shows the same JSON line, `status=error` keeps failed
invocations, and a follow sees a new invocation within 2 s of its answer. The same for the shared
function, whose records are in a pool pod; a one-shot pod's record is still found once its pod is
gone (the API replica that ran it keeps the same line on its own stdout); and the `vortex logs`
command finds a record by id.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.fixtures import Cluster
from vortex_runtime.records import parse_line

from . import kit
from .conftest import Helm, record_figure

pytestmark = [pytest.mark.cluster]

INSTANCE = "app.kubernetes.io/instance"
WARM = "recw"
SHARED = "recs"
ONE_SHOT = "reco"
# Logs a marker naming its invocation, sleeps `event.ms`, throws when asked to.
CODE = (
    "export default async function (event, context) {\n"
    "  console.log(`marker-${context.invocationId}`);\n"
    "  if (event && event.fail) throw new TypeError('asked to fail');\n"
    "  await new Promise((resolve) => setTimeout(resolve, (event && event.ms) || 0));\n"
    "  return { id: context.invocationId };\n"
    "}\n"
)
SHA = hashlib.sha256(CODE.encode()).hexdigest()
CALLS = 48
SLEEP_MS = 150
FOLLOW_WITHIN_S = 2.0


def _function(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "vortex.dev/v1alpha1",
        "kind": "VortexFunction",
        "metadata": {"name": name},
        "spec": {"code": CODE, **spec},
    }


@dataclass
class Records:
    cluster: Cluster
    namespace: str
    release: str
    api: kit.Api

    def pods(self, selector: str) -> list[dict[str, Any]]:
        return list(
            self.cluster.get_json("pods", "-l", selector, namespace=self.namespace)["items"]
        )

    def kubectl_records(self, pod: str) -> dict[str, tuple[str, dict[str, Any]]]:
        """invocation id -> (line, record) of every record `kubectl logs` shows for the pod."""
        text = self.cluster.kubectl("logs", pod, "-c", "runtime", namespace=self.namespace).stdout
        out = {}
        for line in text.splitlines():
            record = parse_line(line.encode())
            if record is not None:
                out[str(record["invocation_id"])] = (line, record)
        return out

    def logs(self, function: str, **params: str) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = httpx.get(
            f"{self.api.base}/functions/{function}/logs",
            params=params,
            headers={"Authorization": f"Bearer {self.api.invoke_key}"},
            timeout=30,
        )
        return response, time.monotonic() - started


def _secret(cluster: Cluster, namespace: str, name: str, key: str) -> str:
    proc = cluster.kubectl(
        "get", "secret", name, "-o", f"jsonpath={{.data.{key}}}", namespace=namespace
    )
    return base64.b64decode(proc.stdout).decode()


def _ready(obj: dict[str, Any]) -> bool:
    conditions = obj.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _settled(cluster: Cluster, namespace: str, release: str) -> bool:
    deployments = cluster.get_json(
        "deployments", "-l", f"{INSTANCE}={release}", namespace=namespace
    )
    return bool(deployments["items"]) and all(
        d.get("status", {}).get("readyReplicas", 0) == d["spec"]["replicas"]
        and d.get("status", {}).get("updatedReplicas", 0) == d["spec"]["replicas"]
        for d in deployments["items"]
    )


def _functions_ready(cluster: Cluster, namespace: str) -> bool:
    items = {f["metadata"]["name"]: f for f in cluster.get_json("vf", namespace=namespace)["items"]}
    found = [items.get(name) for name in (WARM, SHARED, ONE_SHOT)]
    warm = found[0]
    return (
        all(f is not None and _ready(f) for f in found)
        and warm is not None
        and warm["status"].get("readyReplicas") == 2
    )


@pytest.fixture(scope="module")
def rec(cluster: Cluster, helm: Helm, base_values: dict[str, Any]) -> Iterator[Records]:
    namespace = cluster.create_namespace("vx-rec")
    release = f"vortex-{uuid.uuid4().hex[:6]}"
    values = kit.deep_merge(base_values, {"api": {"replicas": 2}, "pool": {"replicas": 2}})
    started = time.monotonic()
    try:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(kit.CRD))
        helm("install", release, str(kit.CHART), "--namespace", namespace, values=values)
        cluster.wait_for(
            "every Deployment of the release ready",
            lambda: _settled(cluster, namespace, release),
            timeout=180,
            interval=0.5,
        )
        cluster.apply(
            [
                _function(WARM, isolation="warm", replicas=2, concurrency=8),
                _function(SHARED, isolation="shared", concurrency=8),
                _function(ONE_SHOT, isolation="pod"),
            ],
            namespace=namespace,
        )
        cluster.wait_for(
            f"{WARM} (2 pods), {SHARED} and {ONE_SHOT} Ready",
            lambda: _functions_ready(cluster, namespace),
            timeout=150,
            interval=0.5,
        )
        ip = cluster.get_json("service", f"{release}-api", namespace=namespace)["spec"]["clusterIP"]
        secret = f"{release}-api-auth"
        api = kit.Api(
            base=f"http://{ip}:80",
            admin_key=_secret(cluster, namespace, secret, "admin-key"),
            invoke_key=_secret(cluster, namespace, secret, "invoke-keys").split(",")[0],
        )
        cluster.wait_for("the API Service routes", api.answers, timeout=30, interval=0.2)
        record_figure("invocation records setup", f"{time.monotonic() - started:.1f} s")
        yield Records(cluster, namespace, release, api)
    finally:
        helm(
            "uninstall", release, "--namespace", namespace, "--wait", "--timeout", "120s",
            check=False,
        )  # fmt: skip
        kit.drop_function_finalizers(cluster, namespace)
        cluster.delete_namespace(namespace, wait=False)


def _call(api: kit.Api, name: str, event: Any) -> tuple[str, httpx.Response]:
    response = api.execute(name, event, key=api.invoke_key)
    return response.headers.get("x-vortex-invocation-id", ""), response


def _calls(api: kit.Api, name: str, count: int, event: Any) -> list[str]:
    """`count` successful calls, eight at a time, each on a fresh connection: their ids."""
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: _call(api, name, event), range(count)))
    for invocation_id, response in results:
        assert response.status_code == 200, response.text
        assert response.json()["output"] == {"id": invocation_id}
    return [invocation_id for invocation_id, _ in results]


_EXECUTIONS = re.compile(r"^vortex_executions_total\{([^}]*)\} ([0-9.e+]+)$", re.M)


def _executions_by_api_pod(rec: Records, function: str) -> dict[str, float]:
    """Executions of `function` each API replica counted, read from its own /metrics."""
    out = {}
    for pod in rec.pods(f"{INSTANCE}={rec.release},app.kubernetes.io/component=api"):
        text = httpx.get(f"http://{pod['status']['podIP']}:8080/metrics", timeout=10).text
        out[pod["metadata"]["name"]] = sum(
            float(value)
            for labels, value in _EXECUTIONS.findall(text)
            if f'function="{function}"' in labels
        )
    return out


def _check_record(
    record: dict[str, Any], function: str, invocation_id: str, window: tuple[float, float]
) -> None:
    assert record["invocation_id"] == invocation_id
    assert record["function"] == function
    assert record["version"] == SHA
    assert record["status"] == "ok"
    assert "error_type" not in record
    assert [entry["message"] for entry in record["logs"]] == [f"marker-{invocation_id}"]
    assert SLEEP_MS <= record["duration_ms"] < 5000, record
    started = datetime.fromisoformat(record["started_at"].replace("Z", "+00:00")).timestamp()
    assert window[0] - 1 <= started <= window[1] + 1, (record["started_at"], window)


def _find(rec: Records, function: str, invocation_id: str, times: int) -> tuple[dict, list[float]]:
    """The record of one invocation, asked `times` times (fresh connections: both replicas)."""
    seconds = []
    found: list[dict[str, Any]] = []
    for _ in range(times):
        response, took = rec.logs(function, invocation=invocation_id)
        assert response.status_code == 200, response.text
        records = response.json()["records"]
        assert len(records) == 1, records
        found.append(records[0])
        seconds.append(took)
    assert all(r == found[0] for r in found)
    return found[0], seconds


def _found_by_each_replica(rec: Records, function: str, invocation_id: str) -> list[dict]:
    """The record as each API replica answers it, asked at its own pod IP (the Service picks
    one at random)."""
    found = []
    for pod in rec.pods(f"{INSTANCE}={rec.release},app.kubernetes.io/component=api"):
        response = httpx.get(
            f"http://{pod['status']['podIP']}:8080/functions/{function}/logs",
            params={"invocation": invocation_id},
            headers={"Authorization": f"Bearer {rec.api.invoke_key}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        found += response.json()["records"]
    return found


def _follow_latency(rec: Records, function: str, rounds: int = 3) -> list[float]:
    """Seconds from an invocation's answer to its record on a followed stream, `rounds` times."""
    lines: queue.Queue[dict[str, Any]] = queue.Queue()
    connected = threading.Event()
    stop = threading.Event()

    def reader() -> None:
        with httpx.stream(
            "GET",
            f"{rec.api.base}/functions/{function}/logs",
            params={"follow": "true", "limit": "0"},
            headers={"Authorization": f"Bearer {rec.api.invoke_key}"},
            timeout=httpx.Timeout(10, read=60),
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/x-ndjson")
            connected.set()
            for line in response.iter_lines():
                if stop.is_set():
                    return
                if line.strip():
                    lines.put(json.loads(line))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert connected.wait(10), "the follow did not answer"
    time.sleep(1.0)  # its pod logs are opened after the answer's headers
    latencies = []
    try:
        for _ in range(rounds):
            invocation_id, response = _call(rec.api, function, {"ms": 0})
            answered = time.monotonic()
            assert response.status_code == 200, response.text
            while True:
                record = lines.get(timeout=10)
                if record["invocation_id"] == invocation_id:
                    latencies.append(time.monotonic() - answered)
                    assert record["function"] == function
                    assert record["status"] == "ok"
                    break
    finally:
        stop.set()
    return latencies


# -- the warm function ----------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_a_warm_functions_record_is_found_by_id_through_either_api_replica(rec: Records):
    before = time.time()
    ids = _calls(rec.api, WARM, CALLS, {"ms": SLEEP_MS})
    window = (before, time.time())

    # Both API replicas served calls, and both warm pods.
    served = _executions_by_api_pod(rec, WARM)
    assert len(served) == 2, served
    assert all(served.values()), served
    pods = sorted(p["metadata"]["name"] for p in rec.pods(f"vortex.dev/function={WARM}"))
    assert len(pods) == 2, pods
    by_pod = {pod: rec.kubectl_records(pod) for pod in pods}
    assert all(set(ids) & set(found) for found in by_pod.values()), "a warm pod served nothing"
    assert set(ids) <= set(by_pod[pods[0]]) | set(by_pod[pods[1]])

    # One invocation served by each pod, found by id through the API Service.
    seconds: list[float] = []
    for pod in pods:
        invocation_id = next(i for i in ids if i in by_pod[pod])
        record, took = _find(rec, WARM, invocation_id, times=6)
        seconds += took
        _check_record(record, WARM, invocation_id, window)
        assert _found_by_each_replica(rec, WARM, invocation_id) == [record, record]
        # `kubectl logs` of the pod that served it shows the same JSON line.
        line, on_pod = by_pod[pod][invocation_id]
        assert on_pod == record
        assert json.loads(line) == record
    record_figure(
        "records: warm, by id through the API Service",
        f"median {sorted(seconds)[len(seconds) // 2] * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms"
        f" over {len(seconds)} queries, each reading {len(pods)} warm, 2 pool and 2 API pods",
    )

    # Newest first, and the page holds every call.
    response, _ = rec.logs(WARM, limit="1000")
    listed = [r["invocation_id"] for r in response.json()["records"]]
    assert set(ids) <= set(listed)
    starts = [r["started_at"] for r in response.json()["records"]]
    assert starts == sorted(starts, reverse=True)


@pytest.mark.timeout(300)
def test_a_warm_functions_failed_invocations_are_kept_apart(rec: Records):
    failed_id, failed = _call(rec.api, WARM, {"fail": True})
    assert failed.status_code == 500, failed.text
    assert "TypeError" in failed.text
    ok_id = _calls(rec.api, WARM, 1, {"ms": 0})[0]
    # The runtime writes a record within 0.2 s of the answer.
    time.sleep(0.5)

    errors, _ = rec.logs(WARM, status="error")
    assert errors.status_code == 200, errors.text
    assert [r["invocation_id"] for r in errors.json()["records"]] == [failed_id]
    record = errors.json()["records"][0]
    assert record["status"] == "error"
    assert record["error_type"] == failed.json()["error"]["type"]
    assert [e["message"] for e in record["logs"]] == [f"marker-{failed_id}"]
    assert rec.logs(WARM, status="ok", invocation=failed_id)[0].json()["records"] == []
    assert rec.logs(WARM, status="error", invocation=ok_id)[0].json()["records"] == []


# -- the shared function in the pool --------------------------------------------------------------


@pytest.mark.timeout(300)
def test_a_shared_functions_record_is_found_in_its_pool_pod(rec: Records):
    before = time.time()
    ids = _calls(rec.api, SHARED, 16, {"ms": SLEEP_MS})
    window = (before, time.time())
    assert all(_executions_by_api_pod(rec, SHARED).values())

    pool = sorted(
        p["metadata"]["name"]
        for p in rec.pods(f"{INSTANCE}={rec.release},app.kubernetes.io/component=pool")
    )
    assert len(pool) == 2, pool
    by_pod = {pod: rec.kubectl_records(pod) for pod in pool}
    # A shared function runs on one pool pod (rendezvous hashing).
    serving = [pod for pod in pool if set(ids) & set(by_pod[pod])]
    assert len(serving) == 1, {pod: len(set(ids) & set(by_pod[pod])) for pod in pool}

    invocation_id = ids[-1]
    record, seconds = _find(rec, SHARED, invocation_id, times=6)
    _check_record(record, SHARED, invocation_id, window)
    assert _found_by_each_replica(rec, SHARED, invocation_id) == [record, record]
    line, on_pod = by_pod[serving[0]][invocation_id]
    assert on_pod == record
    assert json.loads(line) == record
    record_figure(
        "records: shared, by id through the API Service",
        f"median {sorted(seconds)[len(seconds) // 2] * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms",
    )

    failed_id, failed = _call(rec.api, SHARED, {"fail": True})
    assert failed.status_code == 500, failed.text
    time.sleep(0.5)
    errors = rec.logs(SHARED, status="error")[0].json()["records"]
    assert [r["invocation_id"] for r in errors] == [failed_id]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("function", [WARM, SHARED])
def test_follow_sees_a_new_invocation_within_2_s(rec: Records, function: str):
    latencies = _follow_latency(rec, function)
    record_figure(
        f"records: {function}, follow",
        f"answer to record {', '.join(f'{s:.2f}' for s in latencies)} s",
    )
    assert max(latencies) < FOLLOW_WITHIN_S, latencies


# -- a one-shot pod --------------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_a_one_shot_pods_record_outlives_its_pod(rec: Records):
    before = time.time()
    invocation_id, response = _call(rec.api, ONE_SHOT, {"ms": SLEEP_MS})
    window = (before, time.time())
    answered = time.monotonic()
    assert response.status_code == 200, response.text

    def found() -> dict[str, Any] | None:
        records = rec.logs(ONE_SHOT, invocation=invocation_id)[0].json()["records"]
        return records[0] if records else None

    record = rec.cluster.wait_for("the one-shot record", found, timeout=10, interval=0.1)
    kept_s = time.monotonic() - answered
    _check_record(record, ONE_SHOT, invocation_id, window)
    rec.cluster.wait_for(
        "the execution pod gone",
        lambda: not rec.pods(f"vortex.dev/function={ONE_SHOT}"),
        timeout=60,
        interval=0.5,
    )
    assert found() == record
    # The API replica that ran it wrote the same line on its stdout: `kubectl logs` shows it.
    api_pods = rec.pods(f"{INSTANCE}={rec.release},app.kubernetes.io/component=api")
    lines = []
    for pod in api_pods:
        text = rec.cluster.kubectl("logs", pod["metadata"]["name"], namespace=rec.namespace).stdout
        lines += [
            line for line in text.splitlines() if f'"invocation_id":"{invocation_id}"' in line
        ]
    assert len(lines) == 1, lines
    assert json.loads(lines[0]) == record
    record_figure("records: one-shot, answer to findable", f"{kept_s:.2f} s")


# -- the CLI --------------------------------------------------------------------------------------


def _vortex() -> Path:
    return Path(sys.executable).parent / "vortex"


@pytest.mark.timeout(300)
def test_vortex_logs_finds_a_record_by_id(rec: Records):
    invocation_id = _calls(rec.api, WARM, 1, {"ms": 0})[0]
    time.sleep(0.5)
    env = {**os.environ, "VORTEX_URL": rec.api.base, "VORTEX_API_KEY": rec.api.invoke_key}

    proc = subprocess.run(
        [str(_vortex()), "logs", WARM, "--invocation", invocation_id, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )

    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["function_id"] == WARM
    [record] = document["records"]
    assert record["invocation_id"] == invocation_id
    assert record["version"] == SHA
    assert [e["message"] for e in record["logs"]] == [f"marker-{invocation_id}"]
