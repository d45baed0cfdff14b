"""Invocation records in the Kubernetes backend: read back from the runtime pods' logs.

Which pods (the function's own and the pool's), the filters of `GET /functions/{id}/logs`, a
restarted container's previous log, a pod that fails (left out) or all failing (502), and the
follow: records of two pods merged, a new pod picked up, each record once, every stream closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.unit.api.helpers import eventually
from tests.unit.api.kube_fixtures import FUNCTIONS, NS, PODS
from tests.unit.fake_kube import FakeKube
from vortex_api import pod_records
from vortex_api.backends.kubernetes import KubernetesBackend
from vortex_api.invocation_logs import LogQuery, Record
from vortex_api.pod_records import PodRecords
from vortex_kube.contract import function_labels, warm_selector
from vortex_runtime.records import encode

POOL_LABELS = {
    "app.kubernetes.io/name": "vortex-function",
    "app.kubernetes.io/instance": "vortex",
    "app.kubernetes.io/component": "pool",
    "vortex.dev/isolation": "shared",
}
T0 = 1_780_000_000.0  # started_at of the first record: 2026-05-28T20:26:40Z


def line(
    invocation: str, function: str, at: float = T0, *, error: str | None = None, logs: str = "[]"
) -> bytes:
    """A record as a runtime pod writes it on stdout (without its newline)."""
    return encode(invocation, function, "ab" * 32, at, 1.5, error, logs.encode()).rstrip(b"\n")


def pod(
    name: str,
    labels: dict[str, str],
    *,
    state: str = "running",
    restarts: int = 0,
    container_id: str = "containerd://1",
    container: str = "runtime",
) -> dict[str, Any]:
    status = {"name": container, "state": {state: {}}, "restartCount": restarts,
              "containerID": container_id}  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "status": {"phase": "Running", "containerStatuses": [status]},
    }


API_POD = pod("vortex-api-1", {"app.kubernetes.io/component": "api"})


def warm_pod(name: str, function: str, **kwargs: Any) -> dict[str, Any]:
    return pod(name, {**function_labels(function), **warm_selector(function)}, **kwargs)


async def put_pods(fake: FakeKube, *pods: dict[str, Any]) -> None:
    for obj in pods:
        await fake.put(PODS, obj)


async def put_function(fake: FakeKube, backend: KubernetesBackend, name: str) -> None:
    obj = {"metadata": {"name": name}, "spec": {"code": "x", "isolation": "warm"}}
    await fake.put(FUNCTIONS, obj)
    await eventually(lambda: name in backend.functions)


async def logs(client: httpx.AsyncClient, function: str, **params: str) -> httpx.Response:
    return await client.get(f"/functions/{function}/logs", params=params)


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["invocation_id"] for r in response.json()["records"]]


@pytest.fixture
async def cluster(
    fake_kube: FakeKube, k8s_client: httpx.AsyncClient, k8s_backend: KubernetesBackend
) -> FakeKube:
    """A warm function `a` with two pods, and a pool of two pods that also ran `a` and `b`."""
    await put_function(fake_kube, k8s_backend, "a")
    await put_function(fake_kube, k8s_backend, "b")
    await put_pods(
        fake_kube,
        warm_pod("vf-a-1", "a"),
        warm_pod("vf-a-2", "a"),
        pod("vortex-pool-1", POOL_LABELS),
        pod("vortex-pool-2", POOL_LABELS),
        warm_pod("vf-b-1", "b"),
        API_POD,
    )
    old = time.time() - 60  # written a minute ago
    fake_kube.write_log(NS, "vf-a-1", line("a1", "a", T0 + 1), line("a3", "a", T0 + 3), at=old)
    fake_kube.write_log(NS, "vf-a-2", b'{"level":"info"}', line("a2", "a", T0 + 2), at=old)
    # `a` ran in the pool before it was warm; `b` too, with a log that names `a`.
    fake_kube.write_log(
        NS,
        "vortex-pool-1",
        line("a0", "a", T0, error="TypeError", logs='[{"message":"bad"}]'),
        line("b0", "b", T0 + 4, logs='[{"message":"\\"function\\":\\"a\\""}]'),
        b"{torn",
        at=old,
    )
    fake_kube.write_log(NS, "vf-b-1", line("b1", "b", T0 + 5), at=old)
    fake_kube.write_log(NS, "vortex-api-1", line("x0", "a", T0 + 6), at=old)
    return fake_kube


# which pods


async def test_the_pods_of_a_function_are_its_own_and_the_pools(
    fake_kube: FakeKube, k8s_client: httpx.AsyncClient, k8s_backend: KubernetesBackend
) -> None:
    one_shot = {**function_labels("a", "vortex-api"), "vortex.dev/isolation": "pod"}
    await put_pods(
        fake_kube,
        warm_pod("vf-a-1", "a"),
        pod("vf-a-0c0ffee", one_shot),
        pod("vortex-pool-1", POOL_LABELS),
        warm_pod("vf-b-1", "b"),
        API_POD,
    )
    assert k8s_backend.records is not None

    found = await k8s_backend.records.sources("a")

    assert [(s.name, s.container) for s in found] == [
        ("vf-a-0c0ffee", "runtime"),
        ("vf-a-1", "runtime"),
        ("vortex-pool-1", "runtime"),
    ]
    kube = k8s_backend.records.kube
    no_pool = PodRecords(kube, NS, pool=False)
    assert [s.name for s in await no_pool.sources("a")] == ["vf-a-0c0ffee", "vf-a-1"]
    # Where the API's pods are named, their own container too (one-shot pods' records).
    with_api = PodRecords(kube, NS, pool=True, api_pods="app.kubernetes.io/component=api")
    assert [(s.name, s.container) for s in await with_api.sources("a")][-2:] == [
        ("vortex-api-1", "api"),
        ("vortex-pool-1", "runtime"),
    ]


async def test_the_api_pods_keep_the_records_of_one_shot_pods(
    cluster: FakeKube, k8s_backend: KubernetesBackend
) -> None:
    assert k8s_backend.records is not None
    records = PodRecords(
        k8s_backend.records.kube, NS, pool=True, api_pods="app.kubernetes.io/component=api"
    )
    await cluster.put(
        PODS, pod("vortex-api-1", {"app.kubernetes.io/component": "api"}, container="api")
    )

    found = await records.newest("a", LogQuery(invocation="x0"))

    assert [r["invocation_id"] for r in found] == ["x0"]
    assert any("/vortex-api-1/log?container=api" in path for _, path in cluster.requests)


def read_logs(fake: FakeKube) -> list[str]:
    """The pods whose logs were read, in the order asked (`-previous` for a previous one)."""
    out = []
    for method, path in fake.requests:
        base, _, query = path.partition("?")
        if method == "GET" and base.endswith("/log"):
            name = base.split("/")[-2]
            out.append(name + ("-previous" if "previous=true" in query else ""))
    return out


async def test_records_of_every_pod_of_the_function_newest_first(
    cluster: FakeKube, k8s_client: httpx.AsyncClient
) -> None:
    response = await logs(k8s_client, "a")

    # Its warm pods and the pool: not another function's pod, nor the API's; a line of `b`
    # that names `a` and lines that are no records are left out.
    assert ids(response) == ["a3", "a2", "a1", "a0"]
    assert response.json()["function_id"] == "a"
    assert response.json()["records"][-1] == {
        "invocation_id": "a0",
        "function": "a",
        "version": "ab" * 32,
        "started_at": "2026-05-28T20:26:40.000Z",
        "duration_ms": 1.5,
        "status": "error",
        "error_type": "TypeError",
        "logs": [{"message": "bad"}],
    }
    assert sorted(read_logs(cluster)) == ["vf-a-1", "vf-a-2", "vortex-pool-1", "vortex-pool-2"]
    # The runtime container's log, whole lines without timestamps.
    query = next(path for _, path in cluster.requests if "/vf-a-1/log" in path)
    assert query.endswith("/vf-a-1/log?container=runtime")


async def test_the_query_filters_records(cluster: FakeKube, k8s_client: httpx.AsyncClient) -> None:
    assert ids(await logs(k8s_client, "a", invocation="a2")) == ["a2"]
    assert ids(await logs(k8s_client, "a", status="error")) == ["a0"]
    assert ids(await logs(k8s_client, "a", status="ok", limit="2")) == ["a3", "a2"]
    assert ids(await logs(k8s_client, "a", limit="0")) == []
    assert ids(await logs(k8s_client, "b", invocation="a2")) == []
    assert ids(await logs(k8s_client, "a", since="2026-05-28T20:26:42Z")) == ["a3", "a2"]
    # The kubelet is asked for the lines written since then, to the second.
    assert any(
        "sinceTime=2026-05-28T20%3A26%3A42Z" in path or "sinceTime=2026-05-28T20:26:42Z" in path
        for _, path in cluster.requests
    )
    assert (await logs(k8s_client, "a", status="maybe")).status_code in (400, 422)


async def test_a_restarted_container_is_read_with_its_previous_instance(
    fake_kube: FakeKube, k8s_client: httpx.AsyncClient, k8s_backend: KubernetesBackend
) -> None:
    await put_function(fake_kube, k8s_backend, "a")
    await fake_kube.put(PODS, warm_pod("vf-a-1", "a", restarts=1))
    fake_kube.write_log(NS, "vf-a-1", line("before", "a", T0), previous=True)
    fake_kube.write_log(NS, "vf-a-1", line("after", "a", T0 + 60))
    # Restarted too, but the kubelet no longer has its previous container: nothing is missing.
    await fake_kube.put(PODS, warm_pod("vf-a-2", "a", restarts=3))
    fake_kube.write_log(NS, "vf-a-2", line("other", "a", T0 + 30))

    assert ids(await logs(k8s_client, "a")) == ["after", "other", "before"]
    assert sorted(read_logs(fake_kube)) == [
        "vf-a-1",
        "vf-a-1-previous",
        "vf-a-2",
        "vf-a-2-previous",
    ]


async def test_a_pod_whose_container_has_not_started_is_not_read(
    fake_kube: FakeKube, k8s_client: httpx.AsyncClient, k8s_backend: KubernetesBackend
) -> None:
    await put_function(fake_kube, k8s_backend, "a")
    await fake_kube.put(PODS, warm_pod("vf-a-1", "a", state="waiting"))
    await fake_kube.put(PODS, warm_pod("vf-a-2", "a", state="terminated"))
    fake_kube.write_log(NS, "vf-a-2", line("last", "a"))

    assert ids(await logs(k8s_client, "a")) == ["last"]
    assert read_logs(fake_kube) == ["vf-a-2"]


async def test_no_pods_no_records(
    fake_kube: FakeKube, k8s_client: httpx.AsyncClient, k8s_backend: KubernetesBackend
) -> None:
    await put_function(fake_kube, k8s_backend, "a")

    assert ids(await logs(k8s_client, "a")) == []


async def test_a_pod_that_fails_or_does_not_answer_is_left_out_with_a_warning(
    cluster: FakeKube,
    k8s_client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(pod_records, "READ_TIMEOUT_S", 0.3)
    cluster.log_failures["vf-a-1"] = 500
    cluster.log_hangs.add("vortex-pool-1")
    # A pod deleted between the list and the read (a one-shot pod) took its records along.
    del cluster.objects[PODS]["vf-a-2"]

    with caplog.at_level(logging.WARNING, logger="vortex_api.kubernetes"):
        response = await logs(k8s_client, "a")

    assert ids(response) == []
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "vf-a-1" in warned
    assert "vortex-pool-1" in warned
    assert "vf-a-2" not in warned


async def test_a_pod_that_fails_does_not_hide_the_others(
    cluster: FakeKube, k8s_client: httpx.AsyncClient
) -> None:
    cluster.log_failures["vf-a-1"] = 503

    assert ids(await logs(k8s_client, "a")) == ["a2", "a0"]


@pytest.mark.parametrize(
    ("status", "error_type"), [(503, "KubernetesUnavailable"), (403, "KubernetesForbidden")]
)
async def test_every_pod_failing_is_a_502(
    cluster: FakeKube, k8s_client: httpx.AsyncClient, status: int, error_type: str
) -> None:
    for name in ("vf-a-1", "vf-a-2", "vortex-pool-1", "vortex-pool-2"):
        cluster.log_failures[name] = status

    response = await logs(k8s_client, "a")

    assert response.status_code == 502
    assert response.json()["error"]["type"] == error_type


async def test_listing_the_pods_failing_is_a_502(
    cluster: FakeKube, k8s_client: httpx.AsyncClient
) -> None:
    cluster.fail[("GET", "pods")] = 500

    response = await logs(k8s_client, "a")

    assert response.status_code == 502
    assert response.json()["error"]["type"] == "KubernetesUnavailable"


# follow


@pytest.fixture
def fast_relist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pod_records, "RELIST_S", 0.05)


async def take(stream: AsyncIterator[Record], count: int, timeout_s: float = 3.0) -> list[str]:
    async with asyncio.timeout(timeout_s):
        return [str((await anext(stream))["invocation_id"]) for _ in range(count)]


async def test_follow_merges_the_pods_picks_up_new_ones_and_closes_every_stream(
    cluster: FakeKube,
    k8s_client: httpx.AsyncClient,
    k8s_backend: KubernetesBackend,
    fast_relist: None,
) -> None:
    function = await k8s_backend.resolve("a")
    stream = k8s_backend.follow_records(function, LogQuery(follow=True))
    try:
        now = time.time()
        first = asyncio.ensure_future(take(stream, 3))
        await eventually(lambda: cluster.log_streams == 4)
        # Records written before the follow began are the route's to send, not the follow's.
        cluster.write_log(NS, "vf-a-1", line("n1", "a", now))
        cluster.write_log(NS, "vortex-pool-2", line("n2", "a", now), line("nb", "b", now))
        cluster.write_log(NS, "vf-a-2", line("n3", "a", now, error="Error"))
        assert sorted(await first) == ["n1", "n2", "n3"]

        # A rollout: a new pod is followed from its start, a gone one dropped.
        await cluster.put(PODS, warm_pod("vf-a-3", "a"))
        cluster.write_log(NS, "vf-a-3", line("n4", "a", time.time()))
        await cluster.remove(PODS, "vf-a-1")
        assert await take(stream, 1) == ["n4"]
        await eventually(lambda: cluster.log_streams == 4)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    await eventually(lambda: cluster.log_streams == 0)


async def test_follow_yields_each_record_once(
    cluster: FakeKube,
    k8s_client: httpx.AsyncClient,
    k8s_backend: KubernetesBackend,
    fast_relist: None,
) -> None:
    function = await k8s_backend.resolve("a")
    stream = k8s_backend.follow_records(function, LogQuery(follow=True, status="ok"))
    try:
        now = time.time()
        pending = asyncio.ensure_future(take(stream, 2))
        await eventually(lambda: cluster.log_streams == 4)
        cluster.write_log(NS, "vf-a-1", line("once", "a", now), line("bad", "a", now, error="E"))
        # The stream breaks and is opened again from a moment before: the line comes twice.
        cluster.end_logs(NS, "vf-a-1")
        await eventually(lambda: cluster.log_streams == 3)
        cluster.ended_logs.clear()
        await eventually(lambda: cluster.log_streams == 4)
        cluster.write_log(NS, "vf-a-2", line("next", "a", time.time()))
        assert await pending == ["once", "next"]
        reopened = [p for _, p in cluster.requests if "/vf-a-1/log" in p and "follow" in p]
        assert len(reopened) == 2
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


async def test_follow_of_a_restarted_container_streams_its_new_log(
    fake_kube: FakeKube,
    k8s_client: httpx.AsyncClient,
    k8s_backend: KubernetesBackend,
    fast_relist: None,
) -> None:
    await put_function(fake_kube, k8s_backend, "a")
    await fake_kube.put(PODS, warm_pod("vf-a-1", "a"))
    function = await k8s_backend.resolve("a")
    stream = k8s_backend.follow_records(function, LogQuery(follow=True))
    try:
        pending = asyncio.ensure_future(take(stream, 1))
        await eventually(lambda: fake_kube.log_streams == 1)
        fake_kube.end_logs(NS, "vf-a-1")
        await fake_kube.put(
            PODS, warm_pod("vf-a-1", "a", restarts=1, container_id="containerd://2")
        )
        fake_kube.ended_logs.clear()
        await eventually(lambda: fake_kube.log_streams == 1)
        fake_kube.write_log(NS, "vf-a-1", line("again", "a", time.time()))
        assert await pending == ["again"]
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    await eventually(lambda: fake_kube.log_streams == 0)


async def test_the_route_follows_before_it_reads_the_past(
    cluster: FakeKube, k8s_backend: KubernetesBackend, fast_relist: None
) -> None:
    """What the route sends: the past oldest first, then new records (tested through the
    route's own generator; httpx's ASGI transport would wait for the stream to end)."""
    from vortex_api.routes.logs import _stream

    function = await k8s_backend.resolve("a")
    body = _stream(k8s_backend, function, LogQuery(limit=2, follow=True))
    try:
        async with asyncio.timeout(3):
            assert b'"invocation_id":"a2"' in await anext(body)
            assert b'"invocation_id":"a3"' in await anext(body)
            live = asyncio.ensure_future(anext(body))
            await eventually(lambda: cluster.log_streams == 4)
            cluster.write_log(NS, "vf-a-2", line("live", "a", time.time()))
            assert b'"invocation_id":"live"' in await live
    finally:
        await body.aclose()
    await eventually(lambda: cluster.log_streams == 0)
