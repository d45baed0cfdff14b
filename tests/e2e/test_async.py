"""Async invocations and cron triggers on the real cluster, on the chart's NATS JetStream.

One release (two API replicas consuming the queue, the shared pool, NATS as the chart installs
it). Through the API Service: 500 invocations that fail their first attempt on even ids all
succeed, each run at most twice and retried on the backoff's schedule; an Idempotency-Key sent
10 times gives one invocation; 200 in flight survive a consuming API pod killed, the NATS
process killed and a pool pod deleted, every one ending succeeded or dead and none lost; and a
`* * * * *` schedule fires once a minute for 3 minutes across an operator restart, one run per
tick, the VortexFunction's status naming the latest.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.fixtures import Cluster

from . import kit
from .conftest import Helm, record_figure

pytestmark = [pytest.mark.cluster]

INSTANCE = "app.kubernetes.io/instance"
BACKOFF_S = 1.0
ACK_WAIT_S = 5
FLAKY = (
    "export default function (event, context) {\n"
    "  if (event.n % 2 === 0 && context.attempt === 1) throw new Error('first attempt');\n"
    "  return { n: event.n, attempt: context.attempt, id: context.invocationId };\n"
    "}\n"
)
SLOW = (
    "export default async function (event, context) {\n"
    "  await new Promise((resolve) => setTimeout(resolve, event.ms));\n"
    "  return { n: event.n, attempt: context.attempt };\n"
    "}\n"
)
TICKED = (
    "export default function (event, context) { return { event, id: context.invocationId }; }\n"
)


Release = kit.Installed


@pytest.fixture(scope="module")
def release(cluster: Cluster, helm: Helm, base_values: dict[str, Any]) -> Iterator[Release]:
    env = [{"name": "VORTEX_NATS_ACK_WAIT_S", "value": str(ACK_WAIT_S)}]
    values = kit.deep_merge(base_values, {"api": {"extraEnv": env}})
    with kit.installed(cluster, helm, values, "vx-async") as release:
        yield release


def _headers(api: kit.Api, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.admin_key}", **extra}


def _deploy(api: kit.Api, name: str, code: str, **fields: Any) -> None:
    response = api.deploy({"name": name, "code": code, **fields})
    assert response.status_code == 201, response.text


def _enqueue(client: httpx.Client, api: kit.Api, name: str, event: Any, **headers: str) -> str:
    response = client.post(f"/async/{name}", json=event, headers=_headers(api, **headers))
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/invocations/{response.json()['invocation_id']}"
    return str(response.json()["invocation_id"])


def _enqueue_all(
    api: kit.Api, name: str, events: list[Any], per_s: float | None = None
) -> list[str]:
    """Queue every event (16 at a time), at most `per_s` a second if given."""
    start = time.monotonic()

    def one(numbered: tuple[int, Any]) -> str:
        if per_s is not None:
            time.sleep(max(0.0, start + numbered[0] / per_s - time.monotonic()))
        return _enqueue(client, api, name, numbered[1])

    with (
        httpx.Client(base_url=api.base, timeout=30) as client,
        concurrent.futures.ThreadPoolExecutor(16) as pool,
    ):
        return list(pool.map(one, enumerate(events)))


def _final(api: kit.Api, ids: list[str], timeout_s: float) -> dict[str, dict[str, Any]]:
    """Each invocation's record once it ended; fails naming what has not after `timeout_s`."""
    done: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    with (
        httpx.Client(base_url=api.base, timeout=30) as client,
        concurrent.futures.ThreadPoolExecutor(16) as pool,
    ):
        while True:
            left = [i for i in ids if i not in done]

            def read(invocation_id: str) -> dict[str, Any] | None:
                try:
                    response = client.get(f"/invocations/{invocation_id}", headers=_headers(api))
                except httpx.HTTPError:
                    return None  # an API pod going away: read again
                if response.status_code in (502, 503):
                    return None
                assert response.status_code == 200, (invocation_id, response.text)
                doc: dict[str, Any] = response.json()
                return doc

            for doc in pool.map(read, left):
                if doc is not None and doc["status"] in ("succeeded", "dead"):
                    done[doc["invocation_id"]] = doc
            if len(done) == len(ids):
                return done
            if time.monotonic() > deadline:
                states = Counter(
                    d["status"] for d in pool.map(read, [i for i in ids if i not in done]) if d
                )
                raise AssertionError(f"{len(ids) - len(done)} not ended: {dict(states)}")
            time.sleep(0.5)


def _at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_500_that_fail_their_first_attempt_on_even_ids_all_succeed_on_schedule(
    release: Release,
) -> None:
    api = release.api
    retry = {
        "maxAttempts": 3,
        "backoff": {"initialSeconds": BACKOFF_S},
        "retryOn": ["FunctionError"],
    }
    _deploy(api, "flaky", FLAKY, retry=retry, concurrency=64)
    started = time.monotonic()
    # A steady 100 a second, which the release drains as they come (a burst of 500 at once
    # makes the retries wait for CPU on this 2-core node: that is throughput, not schedule).
    ids = _enqueue_all(api, "flaky", [{"n": n} for n in range(500)], per_s=100)
    enqueue_s = time.monotonic() - started
    assert len(set(ids)) == 500
    done = _final(api, ids, timeout_s=180)
    gaps = []
    for n, invocation_id in enumerate(ids):
        doc = done[invocation_id]
        expected = 2 if n % 2 == 0 else 1
        assert (doc["status"], doc["attempts"]) == ("succeeded", expected), doc
        assert doc["result"]["output"] == {"n": n, "attempt": expected, "id": invocation_id}
        assert [a["attempt"] for a in doc["history"]] == list(range(1, expected + 1))
        if expected == 2:
            first, second = doc["history"]
            assert first["error"]["type"] == "FunctionError"
            gaps.append(_at(second["started_at"]) - _at(first["finished_at"]))
    gaps.sort()
    record_figure(
        "async on NATS: 500 queued through the API Service at 100/s",
        f"in {enqueue_s:.1f} s; retry gaps p50 {gaps[len(gaps) // 2]:.3f} s,"
        f" p99 {gaps[int(len(gaps) * 0.99)]:.3f} s, max {gaps[-1]:.3f} s (backoff {BACKOFF_S} s)",
    )
    assert len(gaps) == 250
    assert gaps[0] >= BACKOFF_S * 0.999, gaps[:5]
    assert gaps[-1] <= BACKOFF_S * 1.2, gaps[-10:]


def test_an_idempotency_key_repeated_10_times_gives_one_invocation(release: Release) -> None:
    api = release.api
    _deploy(api, "once", FLAKY)
    key = f"order-{uuid.uuid4().hex}"
    with httpx.Client(base_url=api.base, timeout=30) as client:
        ids = {
            _enqueue(client, api, "once", {"n": 1}, **{"Idempotency-Key": key}) for _ in range(10)
        }
    assert len(ids) == 1
    (doc,) = _final(api, list(ids), timeout_s=60).values()
    assert (doc["status"], doc["attempts"]) == ("succeeded", 1), doc


def _host_pid(pod: dict[str, Any], exe: str) -> int:
    """The host PID of the process `exe` in `pod` (this machine is the cluster's node)."""
    uid = pod["metadata"]["uid"].replace("-", "_")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if Path(os.readlink(proc / "exe")).name != exe:
                continue
            cgroup = (proc / "cgroup").read_text()
        except OSError:
            continue
        if uid in cgroup or pod["metadata"]["uid"] in cgroup:
            return int(proc.name)
    raise AssertionError(f"no {exe} process of pod {pod['metadata']['name']}")


def _component_pods(release: Release, component: str) -> list[dict[str, Any]]:
    selector = f"{INSTANCE}={release.name},app.kubernetes.io/component={component}"
    return [
        p
        for p in kit.pods(release.cluster, release.namespace, selector)
        if not p["metadata"].get("deletionTimestamp")
    ]


def test_200_in_flight_survive_a_consumer_nats_and_a_runtime_pod_going_away(
    release: Release,
) -> None:
    cluster, namespace, api = release.cluster, release.namespace, release.api
    _deploy(api, "slow", SLOW, concurrency=16, timeout_ms=20000)
    ids = _enqueue_all(api, "slow", [{"n": n, "ms": 1500} for n in range(200)])
    queued_at = time.monotonic()

    # 1. a consuming API pod, killed: its attempts are taken over after the ack wait
    victim = _component_pods(release, "api")[0]["metadata"]["name"]
    cluster.kubectl("delete", "pod", victim, "--grace-period=0", "--force", namespace=namespace)
    time.sleep(2)
    # 2. the NATS server's process, killed: its container restarts on the same store
    (nats_pod,) = _component_pods(release, "nats")
    restarts = sum(
        c.get("restartCount", 0) for c in nats_pod["status"].get("containerStatuses", [])
    )
    os.kill(_host_pid(nats_pod, "nats-server"), signal.SIGKILL)
    time.sleep(2)
    # 3. a pool pod, deleted: what ran there fails and is retried elsewhere
    pool_pod = _component_pods(release, "pool")[0]["metadata"]["name"]
    cluster.kubectl("delete", "pod", pool_pod, "--grace-period=0", "--force", namespace=namespace)

    done = _final(api, ids, timeout_s=300)
    drained_s = time.monotonic() - queued_at
    (nats_pod,) = _component_pods(release, "nats")
    assert (
        sum(c.get("restartCount", 0) for c in nats_pod["status"].get("containerStatuses", []))
        > restarts
    ), "the NATS container should have restarted"
    statuses = Counter(d["status"] for d in done.values())
    attempts = Counter(d["attempts"] for d in done.values())
    record_figure(
        "async chaos: 200 in flight, an API pod, NATS and a pool pod killed",
        f"all ended in {drained_s:.1f} s: {dict(statuses)}; attempts {dict(sorted(attempts.items()))}",
    )
    errors = Counter((d["error"] or {}).get("type") for d in done.values() if d["status"] == "dead")
    assert set(statuses) <= {"succeeded", "dead"}
    assert len(done) == 200
    for doc in done.values():
        if doc["status"] == "succeeded":
            assert doc["result"]["output"]["attempt"] == doc["attempts"], doc
    # the work got done: a few may have died of the failures injected, most did not
    assert statuses["succeeded"] >= 190, (
        statuses,
        errors,
        [d for d in done.values() if d["status"] == "dead"][:2],
    )


def _wait_logged(release: Release, what: str, done: Callable[[], bool], timeout: float) -> None:
    """`cluster.wait_for`, whose timeout carries the operator's and the API's last log lines."""
    try:
        release.cluster.wait_for(what, done, timeout=timeout, interval=1)
    except TimeoutError as exc:
        logs = []
        for component in ("operator", "api"):
            selector = f"{INSTANCE}={release.name},app.kubernetes.io/component={component}"
            out = release.cluster.kubectl(
                "logs", "-l", selector, "--tail=40", namespace=release.namespace, check=False
            )
            logs.append(f"--- {component}\n{out.stdout[-4000:]}{out.stderr[-1000:]}")
        raise TimeoutError(f"{exc}\n" + "\n".join(logs)) from None


def _status(release: Release, name: str) -> dict[str, Any]:
    fn = release.cluster.get_json("vf", name, namespace=release.namespace)
    return dict(fn.get("status") or {})


def _minute_id(name: str, minute: datetime) -> str:
    return f"{name}.{minute.astimezone(UTC):%Y%m%dT%H%MZ}"


def test_a_schedule_fires_once_a_minute_across_an_operator_restart(release: Release) -> None:
    cluster, namespace, api = release.cluster, release.namespace, release.api
    _deploy(api, "ticker", TICKED, schedule="* * * * *", schedule_event={"from": "cron"})
    wide = cluster.kubectl("get", "vf", "ticker", "-o", "wide", namespace=namespace).stdout
    assert "* * * * *" in wide, wide
    deployed = datetime.now(UTC)

    seen: list[str] = []

    def ticked() -> bool:
        last = _status(release, "ticker").get("lastScheduleInvocation")
        if last and (not seen or seen[-1] != last):
            seen.append(last)
        return len(seen) >= want

    want = 1
    _wait_logged(release, "the first tick", ticked, timeout=90)
    # the operator's leader restarts between two ticks
    for pod in _component_pods(release, "operator"):
        cluster.kubectl("delete", "pod", pod["metadata"]["name"], namespace=namespace)
    want = 3
    _wait_logged(release, "two more ticks", ticked, timeout=200)

    first = deployed.replace(second=0, microsecond=0)  # a tick of the minute it was made, at most
    minutes = [_minute_id("ticker", first + timedelta(minutes=k)) for k in range(4)]
    # one tick per minute, consecutive, none from before the function existed
    assert seen[:3] in (minutes[:3], minutes[1:4]), (seen, minutes)
    status = _status(release, "ticker")
    tick = datetime.strptime(seen[2].rsplit(".", 1)[1], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
    assert status["lastScheduleTime"] == tick.strftime("%Y-%m-%dT%H:%M:%SZ"), status
    done = _final(api, seen[:3], timeout_s=60)
    for invocation_id in seen[:3]:
        doc = done[invocation_id]
        assert (doc["status"], doc["attempts"]) == ("succeeded", 1), doc
        assert doc["result"]["output"] == {"event": {"from": "cron"}, "id": invocation_id}
    # each tick ran once: one invocation record per tick, none for any other id
    records = httpx.get(
        f"{api.base}/functions/ticker/logs",
        params={"limit": 100},
        headers=_headers(api),
        timeout=30,
    )
    assert records.status_code == 200, records.text
    ran = Counter(r["invocation_id"] for r in records.json()["records"])
    assert all(ran[i] == 1 for i in seen[:3]), ran
    assert set(ran) <= set(minutes), ran
